"""Label-free repair of a concept map: rename concepts where that raises the training likelihood.

A network whose outputs are clean clusters can still name them wrongly.  Gradient
descent on the NeSy loss moves the names one small step at a time, and can stop at a
permutation that satisfies only part of the training labels (on MNIST-EvenOdd, e.g.
the 4-cycle 0 -> 1 -> 6 -> 5 -> 0 with 71% of the training sums right): every
gradient step away from it first lowers the likelihood, although swapping two names
outright would raise it.  :func:`search_relabelling` makes such jumps: a local
search over renamings (permutations of up to 4 concepts), scored by the training
likelihood alone, no concept labels.  Renamings that satisfy the training data
equally well (EvenOdd's identity and d -> d+5) score the same: the search cannot,
and should not, choose between them.

A renaming is an ``order``: the renamed network's concept ``j`` is the old concept
``order[j]`` (``new_logits = logits[:, order]``).
"""

from __future__ import annotations

import functools
import itertools
from typing import Callable

import numpy as np
import torch
from torch import nn

from .cluster_head import ClusterPermutation
from .errors import NesyError


def renaming_moves(k: int, size: int = 4) -> torch.Tensor:
    """``[M, k]``: every permutation of ``range(k)`` that moves 2 to ``size`` elements, as orders
    (for k=10 and size 4: 45 transpositions, 240 3-cycles, 1,890 double transpositions and 4-cycles)."""
    moves = []
    for moved in range(2, size + 1):
        for chosen in itertools.combinations(range(k), moved):
            for image in itertools.permutations(chosen):
                if any(a == b for a, b in zip(chosen, image)):
                    continue  # fixes one of the chosen: counted with fewer moved elements
                order = torch.arange(k)
                order[list(chosen)] = torch.tensor(image)
                moves.append(order)
    return torch.stack(moves) if moves else torch.empty(0, k, dtype=torch.long)


def sum_counts(first: torch.Tensor, second: torch.Tensor, sums: torch.Tensor, k: int) -> np.ndarray:
    """``counts[a, b, s]``: how many examples put their digits in concepts ``a`` and ``b`` (hard
    predictions) and were labelled with the sum ``s`` (single-digit addition, sums 0 to 2k-2)."""
    if not ((sums >= 0) & (sums <= 2 * k - 2)).all():
        raise ValueError(f"sums must lie in 0..{2 * k - 2} for {k} concepts")
    counts = np.zeros((k, k, 2 * k - 1), dtype=np.int64)
    np.add.at(counts, (first.cpu().numpy(), second.cpu().numpy(), sums.cpu().numpy()), 1)
    return counts


@functools.lru_cache(maxsize=2)
def all_permutations(k: int) -> np.ndarray:
    """``[k!, k]`` int8: every permutation of ``range(k)`` (built by inserting k-1 into those of k-1)."""
    if k > 10:
        raise ValueError(f"refusing to enumerate {k}! permutations (at most 10 concepts)")
    perms = np.zeros((1, 0), dtype=np.int8)
    for n in range(k):
        grown = np.empty((len(perms) * (n + 1), n + 1), dtype=np.int8)
        for pos in range(n + 1):  # put the new element n at position pos
            block = grown[pos * len(perms):(pos + 1) * len(perms)]
            block[:, :pos], block[:, pos], block[:, pos + 1:] = perms[:, :pos], n, perms[:, pos:]
        perms = grown
    return perms


def best_renamings_by_counts(counts: np.ndarray, top: int = 32, max_pairs: int = 32,
                             chunk: int = 1 << 19) -> torch.Tensor:
    """The ``top`` orders whose renaming explains the most examples of ``counts`` (see :func:`sum_counts`):
    an exhaustive search over all k! renamings (3.6 million for k=10), so no local optimum traps it.

    A renaming names old concept ``c`` as ``name[c]``; it explains an example (a, b, s) when
    ``name[a] + name[b] == s``.  Only the ``max_pairs`` most frequent concept pairs are counted
    (the rest are mostly misclustered images); callers rescore the candidates exactly.
    Returned as orders (``order = argsort(name)``), best first.
    """
    k = counts.shape[0]
    totals = counts.sum(2)
    pairs = np.argwhere(totals > 0)
    pairs = pairs[np.argsort(-totals[pairs[:, 0], pairs[:, 1]], kind="stable")[:max_pairs]]
    table = counts[pairs[:, 0], pairs[:, 1]].astype(np.int32)  # [P, 2k-1]
    rows = np.arange(len(pairs))[None, :]
    names_all = all_permutations(k)
    scores = np.empty(len(names_all), dtype=np.int32)
    for i in range(0, len(names_all), chunk):
        names = names_all[i:i + chunk]
        scores[i:i + chunk] = table[rows, names[:, pairs[:, 0]] + names[:, pairs[:, 1]]].sum(1)
    best = np.argsort(-scores, kind="stable")[:top]
    return torch.from_numpy(np.argsort(names_all[best].astype(np.int64), axis=1))


def search_relabelling(objective: Callable[[torch.Tensor], torch.Tensor], k: int, size: int = 4,
                       max_rounds: int = 20, min_gain: float = 1e-4,
                       starts: torch.Tensor | None = None) -> tuple[torch.Tensor, float, float]:
    """Best-improvement local search for the order maximising ``objective``.

    ``objective`` scores a batch of orders ``[M, k]`` at once (``[M]``).  The search starts
    from the identity or, if one scores higher, the best of ``starts`` (e.g. the global
    candidates of :func:`best_renamings_by_counts`).  Each round tries every permutation of
    the current order that moves at most ``size`` concepts (two wrong names on MNIST-EvenOdd's
    4-cycle need a 4-move: no transposition or 3-cycle of it explains more training sums) and
    takes the best, if it gains more than ``min_gain``.
    Returns ``(order, objective at the identity, objective at order)``.
    """
    order = torch.arange(k)
    start = best = float(objective(order.unsqueeze(0))[0])
    if starts is not None and len(starts):
        values = objective(starts)
        i = int(values.argmax())
        if float(values[i]) > best + min_gain:
            order, best = starts[i].clone(), float(values[i])
    moves = renaming_moves(k, size)
    for _ in range(max_rounds):
        candidates = order[moves]
        values = objective(candidates)
        i = int(values.argmax())
        if float(values[i]) <= best + min_gain:
            break
        order, best = candidates[i], float(values[i])
    return order, start, best


def _output_parameters(net: nn.Module) -> list[tuple[nn.Parameter, int]]:
    """The parameters that hold the concepts' order, each with the dimension that indexes concepts."""
    if isinstance(net, ClusterPermutation):
        return [(net.scores, 1)]
    head = getattr(net, "classifier", None)
    last = head[-1] if isinstance(head, nn.Sequential) and len(head) else None
    if not isinstance(last, nn.Linear):
        raise NesyError(f"cannot rename the outputs of {type(net).__name__}: relabelling needs a ClusterPermutation "
                        "or a network whose .classifier ends in a Linear layer")
    return [(last.weight, 0)] + ([(last.bias, 0)] if last.bias is not None else [])


@torch.no_grad()
def relabel_outputs(net: nn.Module, order: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Rename ``net``'s concepts in place (``net(x)`` becomes ``net(x)[:, order]``), with the
    optimizer's per-parameter state (e.g. Adam's moments) renamed alike."""
    for param, dim in _output_parameters(net):
        index = order.to(param.device)
        param.copy_(param.index_select(dim, index))
        state = optimizer.state.get(param, {}) if optimizer is not None else {}
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                state[key] = value.index_select(dim, index)


@torch.no_grad()
def set_cluster_permutation(head: ClusterPermutation, order: torch.Tensor,
                            optimizer: torch.optim.Optimizer | None = None, logit: float = 10.0) -> None:
    """Set ``head``'s map to the permutation that names cluster ``order[j]`` as concept ``j``
    (``P[order[j], j]`` close to 1: its Sinkhorn scores are ``logit`` there and 0 elsewhere);
    the optimizer's state of the scores is reset."""
    k = head.scores.shape[0]
    if sorted(order.tolist()) != list(range(k)):
        raise ValueError(f"not a permutation of {k} clusters: {order.tolist()}")
    scores = torch.zeros_like(head.scores)
    scores[order.to(scores.device), torch.arange(k, device=scores.device)] = logit / head.scale
    head.scores.copy_(scores)
    state = optimizer.state.get(head.scores, {}) if optimizer is not None else {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.shape == head.scores.shape:
            value.zero_()
