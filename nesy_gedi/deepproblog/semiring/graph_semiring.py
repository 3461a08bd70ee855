"""DeepProbLog's ``GraphSemiring`` (evaluation through torch graphs per formula): replaced here by batched
log-semiring tensor circuits."""

from __future__ import annotations

import torch

from .._unsupported import refuse
from . import Semiring


def is_exact_zero(a) -> bool:
    """``a`` is exactly 0 (a number or a one-element tensor)."""
    return bool(a == 0) if not isinstance(a, torch.Tensor) else a.numel() == 1 and float(a) == 0.0


def is_exact_one(a) -> bool:
    """``a`` is exactly 1 (a number or a one-element tensor)."""
    return bool(a == 1) if not isinstance(a, torch.Tensor) else a.numel() == 1 and float(a) == 1.0


def get_hook(optimizer, i):
    """A tensor hook that hands its gradient to ``optimizer.add_parameter_gradient(i, grad)``, as DeepProbLog's."""

    def hook(grad):
        optimizer.add_parameter_gradient(i, grad)

    return hook


class GraphSemiring(Semiring):
    def value(self, a, key=None):
        refuse("GraphSemiring.value (DeepProbLog's formula evaluation)", "use Model.solve")

    def is_one(self, a):
        refuse("GraphSemiring.is_one (DeepProbLog's formula evaluation)", "use graph_semiring.is_exact_one")

    def is_zero(self, a):
        refuse("GraphSemiring.is_zero (DeepProbLog's formula evaluation)", "use graph_semiring.is_exact_zero")

    @staticmethod
    def cross_entropy(result, target: float, weight: float, q=None, eps: float = 1e-12) -> float:
        refuse("GraphSemiring.cross_entropy", "train_model(..., loss_function_name='cross_entropy')")

    @staticmethod
    def mse(result, target: float, weight: float, q=None) -> float:
        refuse("GraphSemiring.mse", "train_model(..., loss_function_name='mse')")
