/* Sum-of-products circuits in the log semiring: forward and backward for one batch, on the CPU.
 *
 * Rows of a [rows, batch] buffer (row-major, batch contiguous): the leaves come
 * first, then one row per node, children before parents.  Node i (row
 * n_leaves + i) has terms node_terms[i] .. node_terms[i + 1] - 1; term t is the
 * sum of rows factors[term_factors[t] .. term_factors[t + 1] - 1]; the node is
 * log sum_t exp(term t), or the term itself where the node has one term.
 *
 * The forward pass keeps each term's weight exp(term - node) in `weights`
 * ([terms, batch]; with keep = 0 only [widest node's terms, batch] of scratch,
 * reused node after node); the backward pass sends grad(node) * weight to every factor.
 * -inf is a value like any other: a node whose terms are all -inf is -inf and its
 * weights are 0.  Compiled at first use by nesy_gedi.kernels (plain C, no torch headers).
 */
#include <math.h>
#include <stdint.h>

#define DEFINE_KERNELS(T, SUFFIX, EXP, LOG)                                                            \
    static void term_##SUFFIX(const T *values, int64_t batch, const int64_t *factors, int64_t f0,      \
                              int64_t f1, T *out) {                                                    \
        const T *row = values + factors[f0] * batch;                                                   \
        for (int64_t b = 0; b < batch; ++b) out[b] = row[b];                                           \
        for (int64_t f = f0 + 1; f < f1; ++f) {                                                        \
            row = values + factors[f] * batch;                                                         \
            for (int64_t b = 0; b < batch; ++b) out[b] += row[b];                                      \
        }                                                                                              \
    }                                                                                                  \
                                                                                                       \
    void circuit_forward_##SUFFIX(T *values, T *weights, int64_t batch, int64_t n_leaves,              \
                                  int64_t n_nodes, const int64_t *node_terms,                          \
                                  const int64_t *term_factors, const int64_t *factors, T *scratch,     \
                                  int64_t keep) {                                                      \
        for (int64_t i = 0; i < n_nodes; ++i) {                                                        \
            T *out = values + (n_leaves + i) * batch;                                                  \
            int64_t t0 = node_terms[i], t1 = node_terms[i + 1];                                        \
            int64_t base = keep ? 0 : t0; /* term t's weight row: t - base */                          \
            if (t1 - t0 == 1) {                                                                        \
                term_##SUFFIX(values, batch, factors, term_factors[t0], term_factors[t0 + 1], out);    \
                continue;                                                                              \
            }                                                                                          \
            /* terms into their weight rows, the running maximum into out */                           \
            for (int64_t b = 0; b < batch; ++b) out[b] = -INFINITY;                                    \
            for (int64_t t = t0; t < t1; ++t) {                                                        \
                T *w = weights + (t - base) * batch;                                                   \
                term_##SUFFIX(values, batch, factors, term_factors[t], term_factors[t + 1], w);        \
                for (int64_t b = 0; b < batch; ++b) out[b] = w[b] > out[b] ? w[b] : out[b];            \
            }                                                                                          \
            for (int64_t b = 0; b < batch; ++b) scratch[b] = 0;                                        \
            for (int64_t t = t0; t < t1; ++t) {                                                        \
                T *w = weights + (t - base) * batch;                                                   \
                for (int64_t b = 0; b < batch; ++b) {                                                  \
                    w[b] = out[b] == -INFINITY ? (T)0 : EXP(w[b] - out[b]);                            \
                    scratch[b] += w[b];                                                                \
                }                                                                                      \
            }                                                                                          \
            for (int64_t b = 0; b < batch; ++b) {                                                      \
                T total = scratch[b];                                                                  \
                if (out[b] != -INFINITY) out[b] += LOG(total);                                         \
                scratch[b] = total > 0 ? (T)1 / total : (T)0;                                          \
            }                                                                                          \
            for (int64_t t = t0; keep && t < t1; ++t) {                                                \
                T *w = weights + (t - base) * batch;                                                   \
                for (int64_t b = 0; b < batch; ++b) w[b] *= scratch[b];                                \
            }                                                                                          \
        }                                                                                              \
    }                                                                                                  \
                                                                                                       \
    void circuit_backward_##SUFFIX(T *grads, const T *weights, int64_t batch, int64_t n_leaves,        \
                                   int64_t n_nodes, const int64_t *node_terms,                         \
                                   const int64_t *term_factors, const int64_t *factors, T *scratch) {  \
        for (int64_t i = n_nodes - 1; i >= 0; --i) {                                                   \
            const T *g = grads + (n_leaves + i) * batch;                                               \
            int nonzero = 0;                                                                           \
            for (int64_t b = 0; b < batch; ++b) nonzero |= g[b] != 0;                                  \
            if (!nonzero) continue;                                                                    \
            int64_t t0 = node_terms[i], t1 = node_terms[i + 1];                                        \
            for (int64_t t = t0; t < t1; ++t) {                                                        \
                const T *gt = g;                                                                       \
                if (t1 - t0 > 1) {                                                                     \
                    const T *w = weights + t * batch;                                                  \
                    for (int64_t b = 0; b < batch; ++b) scratch[b] = g[b] * w[b];                      \
                    gt = scratch;                                                                      \
                }                                                                                      \
                for (int64_t f = term_factors[t]; f < term_factors[t + 1]; ++f) {                      \
                    T *row = grads + factors[f] * batch;                                               \
                    for (int64_t b = 0; b < batch; ++b) row[b] += gt[b];                               \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    }

DEFINE_KERNELS(float, f32, expf, logf)
DEFINE_KERNELS(double, f64, exp, log)
