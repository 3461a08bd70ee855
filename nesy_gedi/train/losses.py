"""Loss terms next to the NeSy likelihood (the GEDI terms live in :mod:`nesy_gedi.gedi`)."""

from __future__ import annotations

import math

import torch


def nesy_nll(log_prob: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the observed answers, ``-mean log P(query)``."""
    return -log_prob.mean()


def entropy_regulariser(logits: torch.Tensor) -> torch.Tensor:
    """KL(batch-mean p(c|x) || uniform) = log K - H(mean p): Marconato et al.'s concept entropy term."""
    mean = logits.softmax(1).mean(0)
    return math.log(logits.shape[1]) + (mean * mean.clamp_min(1e-12).log()).sum()
