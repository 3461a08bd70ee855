"""The sum-of-products circuit equals a plain AND/OR evaluation, values and gradients."""

from __future__ import annotations

import random

import pytest
import torch

import nesy_gedi.circuit as circuit_module
from nesy_gedi import kernels
from nesy_gedi.circuit import AND, OR, TensorCircuit
from nesy_gedi.leaves import NEG_INF_ROW, ZERO_ROW


def reference(n_leaves: int, nodes, roots, leaves: torch.Tensor) -> torch.Tensor:
    """Node by node with autograd: AND = sum of log-values, OR = logsumexp."""
    values = list(leaves.unbind(0))
    for kind, children in nodes:
        stacked = torch.stack([values[c] for c in children])
        values.append(stacked.sum(0) if kind == AND else torch.logsumexp(stacked, 0))
    return torch.stack([values[r] for r in roots], 1)


def random_circuit(rng: random.Random, n_leaves: int, n_nodes: int):
    """AND/OR nodes over earlier rows: shared children, ANDs of ANDs, constant rows, roots of every kind."""
    nodes = []
    for i in range(n_nodes):
        rows = n_leaves + i
        fan_in = rng.choice([2, 2, 3, 5])  # as from_sdd makes them: one-child nodes are collapsed
        children = tuple(rng.randrange(rows) for _ in range(fan_in))
        nodes.append((rng.choice([AND, OR]), children))
    roots = [n_leaves + n_nodes - 1, n_leaves + rng.randrange(n_nodes), rng.randrange(2, n_leaves), NEG_INF_ROW]
    return nodes, roots


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(20))
def test_matches_the_and_or_evaluation(seed: int, dtype: torch.dtype, evaluator: str) -> None:
    rng = random.Random(seed)
    n_leaves = 8
    nodes, roots = random_circuit(rng, n_leaves, rng.randrange(5, 40))
    circuit = TensorCircuit(n_leaves, nodes, roots)
    torch.manual_seed(seed)
    leaves = torch.randn(n_leaves, 6, dtype=dtype)
    leaves[ZERO_ROW], leaves[NEG_INF_ROW] = 0.0, float("-inf")
    leaves[4, :3] = float("-inf")  # a probability-zero leaf in half of the batch
    a = leaves.clone().requires_grad_()
    b = leaves.clone().requires_grad_()
    got, want = circuit(a), reference(n_leaves, nodes, roots, b)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(circuit(leaves), want.detach())  # no gradient asked: no weights kept
    weights = torch.randn_like(want)
    (got.nan_to_num(neginf=0) * weights).sum().backward()
    (want.nan_to_num(neginf=0) * weights).sum().backward()
    # the constant rows are not parameters; every real leaf gets the reference gradient, zeros where P = 0
    torch.testing.assert_close(a.grad[2:], b.grad[2:].nan_to_num(0.0))


def test_all_zero_probability_node_has_zero_gradient(evaluator: str) -> None:
    # OR(a, b) with both leaves -inf in the batch: value -inf, no NaN sent down
    circuit = TensorCircuit(4, [(OR, (2, 3))], [4])
    leaves = torch.tensor([[0.0], [float("-inf")], [float("-inf")], [float("-inf")]], requires_grad=True)
    out = circuit(leaves)
    assert out.item() == float("-inf")
    out.sum().backward()
    assert torch.equal(leaves.grad[2:], torch.zeros(2, 1))


def test_decisions_fuse_with_their_conjunctions() -> None:
    # OR over ANDs of leaf pairs: one layer, one group
    nodes = [(AND, (2, 3)), (AND, (4, 5)), (OR, (6, 7))]
    circuit = TensorCircuit(6, nodes, [8])
    assert (circuit.n_nodes, circuit.n_edges, circuit.n_layers, circuit.n_groups) == (3, 6, 1, 1)


def test_native_and_torch_paths_agree_on_a_compiled_program(monkeypatch) -> None:
    """Two-digit addition: the C kernels and the torch ops give the same values and gradients."""
    if kernels.circuit_kernels() is None:
        pytest.skip("no C compiler: the native kernels are unavailable")
    from nesy_gedi.data.addition import addition_query
    from nesy_gedi.recipes.addition_model import build_model

    query, xs, ys, zs = addition_query(2)
    model = build_model(2, torch.nn.Flatten())
    circuit = model.compile(query, tuple(xs + ys + zs)).circuit
    torch.manual_seed(0)
    leaves = torch.randn(circuit.n_leaves, 33).log_softmax(0)
    leaves[ZERO_ROW], leaves[NEG_INF_ROW] = 0.0, float("-inf")
    results = []
    for native in (True, False):
        if not native:
            monkeypatch.setattr(circuit_module, "circuit_kernels", lambda: None)
        x = leaves.clone().requires_grad_()
        out = circuit(x)
        out.sum().backward()
        results.append((out.detach(), x.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    # rows 0 and 1 are the constants 0 and -inf (the torch path pads terms with them)
    torch.testing.assert_close(results[0][1][2:], results[1][1][2:])


def test_native_kernels_can_be_turned_off(monkeypatch) -> None:
    monkeypatch.setenv("NESY_GEDI_NATIVE", "0")
    assert kernels.circuit_kernels() is None


def test_native_kernels_build_where_a_compiler_exists(tmp_path, monkeypatch) -> None:
    if kernels._compiler() is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("NESY_GEDI_CACHE", str(tmp_path))
    monkeypatch.setattr(kernels, "_library", kernels._NOT_LOADED)
    assert kernels.circuit_kernels() is not None
    assert list((tmp_path / "kernels").glob("circuit-*.so"))
