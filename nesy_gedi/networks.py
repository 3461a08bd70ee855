"""Perception networks."""

from __future__ import annotations

import torch
from torch import nn


def capturing(tensor: torch.Tensor) -> bool:
    """Whether ``tensor``'s CUDA stream is being captured into a graph (no value may be read back then)."""
    return tensor.is_cuda and torch.cuda.is_current_stream_capturing()


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


class LargeCNN(nn.Module):
    """A wider VGG-style net for high digit accuracy (about 16x the cost of :class:`MnistCNN`).

    Two blocks of two 3x3 convolutions with batch norm and max-pooling, then a
    dropout-regularised hidden layer.  Supervised with augmentation, nets of this
    shape reach about 99.6% on MNIST; ``tasks/mnist_add.py --arch cnn_large
    --augment 0.5`` uses it where long sums need every digit right (N = 100).
    ``[batch, 1, 28, 28]`` -> ``[batch, n_classes]`` logits.
    """

    def __init__(self, n_classes: int = 10, width: int = 32) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]

        self.encoder = nn.Sequential(
            *conv(1, width), *conv(width, width), nn.MaxPool2d(2),  # 14x14
            *conv(width, 2 * width), *conv(2 * width, 2 * width), nn.MaxPool2d(2),  # 7x7
        )
        self.classifier = nn.Sequential(
            nn.Linear(2 * width * 49, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(True), nn.Dropout(0.3),
            nn.Linear(256, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(_mnist_images(x, "LargeCNN")).flatten(1))


ARCHITECTURES = {"mnist_cnn": MnistCNN, "ebm": EnergyCNN, "cnn_large": LargeCNN}


def build_network(arch: str, n_classes: int = 10) -> nn.Module:
    """A fresh network by architecture name (``mnist_cnn``: DeepProbLog's LeNet; ``ebm``: :class:`EnergyCNN`;
    ``cnn_large``: :class:`LargeCNN`)."""
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
        if labels.numel() and not capturing(labels):  # the check reads values back: not inside a captured step
            low, high = torch.aminmax(labels)
            if low < 0 or high >= self.n_classes:
                raise ValueError(f"labels must lie in [0, {self.n_classes}), got {int(low)}..{int(high)}")
        logits = torch.full((labels.shape[0], self.n_classes), float("-inf"), device=labels.device)
        return logits.scatter(1, labels.view(-1, 1), 0.0)
