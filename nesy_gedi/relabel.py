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

import itertools
from typing import Callable

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


def search_relabelling(objective: Callable[[torch.Tensor], torch.Tensor], k: int, size: int = 4,
                       max_rounds: int = 20, min_gain: float = 1e-4) -> tuple[torch.Tensor, float, float]:
    """Best-improvement local search for the order maximising ``objective``, from the identity.

    ``objective`` scores a batch of orders ``[M, k]`` at once (``[M]``).  Each round tries
    every permutation of the current order that moves at most ``size`` concepts (two wrong
    names on MNIST-EvenOdd's 4-cycle need a 4-move: no transposition or 3-cycle of it
    explains more training sums) and takes the best, if it gains more than ``min_gain``.
    Returns ``(order, objective at the identity, objective at order)``.
    """
    order = torch.arange(k)
    start = best = float(objective(order.unsqueeze(0))[0])
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
