"""DeepProbLog's Forth examples' network: ``EncodeModule`` one-hot encodes its digit arguments (10 slots each) and
applies an :class:`~nesy_gedi.deepproblog.utils.standard_networks.MLP` (softmax output)."""

from __future__ import annotations

import torch
from torch import nn

from ...utils.standard_networks import MLP


class EncodeModule(nn.Module):
    """``EncodeModule(in_size, mid_size, out_size, activation=None)``: called on one example's digits (numbers,
    number terms or 0-d tensors), e.g. ``module(4, 2)`` for ``swap(4, 2, Z)``; ``activation="tanh"`` uses tanh."""

    def __init__(self, in_size: int, mid_size: int, out_size: int, activation: str | None = None) -> None:
        super().__init__()
        self.mlp = MLP(in_size, mid_size, out_size, activation=nn.Tanh if activation == "tanh" else nn.ReLU)
        self.in_size = in_size

    def forward(self, *digits) -> torch.Tensor:
        encoded = torch.zeros(self.in_size)
        for position, digit in enumerate(digits):
            encoded[position * 10 + int(digit)] = 1.0
        return self.mlp(encoded)
