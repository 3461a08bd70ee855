"""``MNIST_Net``: DeepProbLog's MNIST network (LeNet-style), returning probabilities as DeepProbLog's does."""

from __future__ import annotations

import torch
from torch import nn

from ....networks import MnistCNN


class MNIST_Net(nn.Module):  # noqa: N801 - DeepProbLog's name
    """:class:`~nesy_gedi.networks.MnistCNN` followed by a softmax (a sigmoid for ``n == 1``)."""

    def __init__(self, n: int = 10, with_softmax: bool = True) -> None:
        super().__init__()
        self.net = MnistCNN(n)
        self.with_softmax = with_softmax
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.net(x)
        if self.with_softmax:
            x = torch.sigmoid(x) if self.n == 1 else torch.softmax(x, dim=1)
        return x
