"""DeepProbLog's ``deepproblog.utils.standard_networks``: small networks its examples build.

Networks return probabilities (a softmax, or a sigmoid for one output), as DeepProbLog's do.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import NotSupportedError

model_urls: dict[str, str] = {}  # pretrained weights are not downloaded here


class MLP(nn.Module):
    """Linear layers of ``sizes`` with ``activation`` between them, and a softmax at the end if ``softmax``;
    ``batch=False`` takes one unbatched input."""

    def __init__(self, *sizes: int, activation: type[nn.Module] = nn.ReLU, softmax: bool = True,
                 batch: bool = True) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError("MLP needs at least an input and an output size")
        layers: list[nn.Module] = []
        for width_in, width_out in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(width_in, width_out), activation()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        if softmax:
            layers.append(nn.Softmax(-1))
        self.nn = nn.Sequential(*layers)
        self.batch = batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nn(x if self.batch else x.unsqueeze(0))


class SmallNet(nn.Module):
    """An AlexNet-style convolutional net on RGB images (the Coins and Poker examples), ``num_classes`` outputs;
    ``size=(height, width)`` sizes its first linear layer for that input size (default: 2304 features)."""

    def __init__(self, num_classes: int = 1000, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.N = 2304 if size is None else self.features(torch.zeros(1, 3, *size)).numel()
        self.classifier = nn.Sequential(nn.Linear(self.N, 100), nn.ReLU(inplace=True), nn.Linear(100, num_classes),
                                        nn.Sigmoid() if num_classes == 1 else nn.Softmax(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).view(-1, self.N))


def smallnet(pretrained: bool = False, model=None, **kwargs) -> SmallNet:
    """A :class:`SmallNet`; ``pretrained=True`` (ImageNet weights from the web) and ``model`` (a torchvision model to
    take weights from) are not supported here."""
    if model is not None:
        raise NotSupportedError("not supported: smallnet(model=...); load your own weights with load_state_dict")
    if pretrained:
        raise NotSupportedError("not supported: smallnet(pretrained=True) (downloads weights); load your own with "
                                "load_state_dict")
    return SmallNet(**kwargs)


class DummyNet(nn.Module):
    """A lookup table: input term(s) -> fixed output probabilities (for tests)."""

    def __init__(self, values: dict) -> None:
        super().__init__()
        self.values = values

    def forward(self, *x):
        return torch.tensor(self.values[x[0] if len(x) == 1 else x], requires_grad=True)


class DummyTensorNet(nn.Module):
    """Returns its inputs as the output tensor (stacked with ``batching``; for tests)."""

    def __init__(self, batching: bool = False) -> None:
        super().__init__()
        self.batching = batching

    def forward(self, *x):
        if self.batching:
            return torch.stack([torch.tensor(y, requires_grad=True) for y in x], 0)
        return torch.tensor(x, requires_grad=True)
