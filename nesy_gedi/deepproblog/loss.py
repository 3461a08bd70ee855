"""DeepProbLog's ``deepproblog.loss``: regularisers on a batch of probability vectors ``x`` ``[batch, K]``, each
normalised by ``log batch`` as DeepProbLog does, and ``MSE`` with its derivative.

``train_model(..., loss_function_name="mse")`` trains on the squared error of the query probabilities
(:meth:`~nesy_gedi.deepproblog.train.TrainObject.get_loss`).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _plogp(x: torch.Tensor, eps: float) -> torch.Tensor:
    return x * (x + eps).log() / math.log(float(x.shape[0]))


class JSD(nn.Module):
    """``1 - mean_b sum_k x log x + sum_k xbar log xbar`` (normalised): low when each row is confident and the rows
    differ."""

    def __init__(self) -> None:
        super().__init__()


    def forward(self, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        return 1.0 - _plogp(x, eps).sum(1).mean() + _plogp(x.mean(0), eps).sum()


class InfoLoss(nn.Module):
    """``1 + sum_k xbar log xbar`` over the rows' mean ``xbar`` (normalised): low when the rows use every class."""

    def __init__(self) -> None:
        super().__init__()


    def forward(self, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        mean = x.mean(0)
        return 1.0 + (mean * (mean + eps).log() / math.log(float(mean.shape[0]))).sum()


class EntropyLoss(nn.Module):
    """The rows' mean entropy (normalised)."""

    def __init__(self) -> None:
        super().__init__()


    def forward(self, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        return -_plogp(x, eps).sum(1).mean()


infoLoss = InfoLoss()
entropyLoss = EntropyLoss()
jsd = JSD()


def MSE(p, target):  # noqa: N802 (DeepProbLog's name)
    """``((p - target)^2, 2 (p - target))``: the squared error and its derivative in ``p``."""
    return (p - target) ** 2, 2 * (p - target)
