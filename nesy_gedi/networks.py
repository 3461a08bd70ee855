"""Perception networks."""

from __future__ import annotations

import torch
from torch import nn


def _mnist_images(x: torch.Tensor, network: str) -> torch.Tensor:
    """``x`` as ``[batch, 1, 28, 28]`` (``[batch, 28, 28]`` gains the channel), or a ValueError naming ``network``."""
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"{network} expects images [batch, 1, 28, 28], got {tuple(x.shape)}")
    return x


class MnistCNN(nn.Module):
    """The MNIST network of DeepProbLog: 2 conv + 3 fully connected layers.

    Maps ``[batch, 1, 28, 28]`` images to ``[batch, n_classes]`` logits
    (DeepProbLog puts a softmax at the end; here the engine applies it, and
    GEDI reads the same logits as an energy).
    """

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 6, 5),
            nn.MaxPool2d(2, 2),
            nn.ReLU(True),
            nn.Conv2d(6, 16, 5),
            nn.MaxPool2d(2, 2),
            nn.ReLU(True),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 4 * 4, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(_mnist_images(x, "MnistCNN")).flatten(1))


class EnergyCNN(nn.Module):
    """A small conv net built for energy-based training (IGEBM/JEM style).

    Strided 3x3 convolutions instead of max-pooling, SiLU (smooth, no dead
    units), no batch norm, so that ``-logsumexp f(x)`` is a smooth energy with
    useful input gradients for SGLD.  About the cost of :class:`MnistCNN`.
    ``[batch, 1, 28, 28]`` -> ``[batch, n_classes]`` logits.
    """

    def __init__(self, n_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        act = nn.SiLU
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=1, padding=1), act(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), act(),  # 14x14
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), act(),  # 7x7
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), act(),  # 4x4
        )
        self.classifier = nn.Sequential(
            nn.Linear(2 * width * 16, 128), act(),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(_mnist_images(x, "EnergyCNN")).flatten(1))


ARCHITECTURES = {"mnist_cnn": MnistCNN, "ebm": EnergyCNN}


def build_network(arch: str, n_classes: int = 10) -> nn.Module:
    """A fresh network by architecture name (``mnist_cnn``: DeepProbLog's LeNet; ``ebm``: :class:`EnergyCNN`)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](n_classes)


class OneHot(nn.Module):
    """A fixed "network" for observed discrete values: integer labels -> logits.

    Lets a program read per-example labels (e.g. the digits of a sum) through a
    neural predicate, so one compiled circuit serves every label value.
    """

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.reshape(-1).long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes}), got {labels.min()}..{labels.max()}")
        logits = torch.full((labels.shape[0], self.n_classes), float("-inf"), device=labels.device)
        return logits.scatter(1, labels.view(-1, 1), 0.0)
