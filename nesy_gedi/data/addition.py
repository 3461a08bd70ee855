"""Multi-digit MNIST addition: two N-digit numbers written with MNIST images.

As in DeepProbLog, every example uses 2N distinct images (a random permutation
of the split cut into chunks), so one epoch sees each image at most once.
"""

from __future__ import annotations

import torch

from .mnist import MnistSplit, settle
from .shortcuts import accepted


class AdditionDataset:
    """Examples ``(a, b, a + b)``; digits are stored most significant first.

    ``indices[e, k, i]`` is the image of digit ``i`` of number ``k`` (0 or 1) of
    example ``e``; ``digits`` are their labels and ``sum_digits[e]`` the N+1
    digits of the sum.  ``size`` keeps only the first examples; ``pair_filter``
    (N=1 only) keeps examples whose digit pair ``(a, b)`` it accepts.
    """

    def __init__(
        self,
        split: MnistSplit,
        n_digits: int = 1,
        seed: int = 0,
        size: int | None = None,
        pair_filter=None,
    ) -> None:
        if n_digits < 1:
            raise ValueError(f"n_digits must be >= 1, got {n_digits}")
        self.split, self.n_digits = split, n_digits
        generator = torch.Generator().manual_seed(seed)
        per_example = 2 * n_digits
        n = len(split) // per_example
        if n == 0:
            raise ValueError(f"{split.name} has {len(split)} images, too few for {n_digits}-digit addition")
        perm = torch.randperm(len(split), generator=generator)[: n * per_example]
        indices = perm.view(n, 2, n_digits)
        if pair_filter is not None:
            if n_digits != 1:
                raise ValueError("pair_filter needs n_digits == 1")
            indices = indices[accepted(split.labels[indices[:, :, 0]], pair_filter)]
        if size is not None:
            indices = indices[:size]
        self._set_indices(indices)

    @classmethod
    def from_indices(cls, split: MnistSplit, indices: torch.Tensor) -> "AdditionDataset":
        """Examples given by image indices ``[E, 2, N]`` into ``split`` (images may repeat)."""
        if indices.dim() != 3 or indices.shape[1] != 2 or indices.shape[2] < 1:
            raise ValueError(f"indices must be [examples, 2, n_digits], got {tuple(indices.shape)}")
        data = cls.__new__(cls)
        data.split, data.n_digits = split, int(indices.shape[2])
        data._set_indices(indices.long())
        return data

    def _set_indices(self, indices: torch.Tensor) -> None:
        n_digits, split = self.n_digits, self.split
        self.indices = indices
        self._on_device: dict = {}
        self.digits = split.labels[indices]
        powers = torch.tensor([10 ** (n_digits - 1 - i) for i in range(n_digits)], dtype=torch.float64)
        # float64 holds sums exactly up to N=15; sum_digits below is exact for any N.
        self.sums = (self.digits.double() * powers).sum(-1).sum(-1)
        self.sum_digits = add_digit_lists(self.digits[:, 0], self.digits[:, 1])

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def subset(self, size: int | None) -> "AdditionDataset":
        """The first ``size`` examples (all for ``None``)."""
        return self if size is None else AdditionDataset.from_indices(self.split, self.indices[:size])

    def on(self, name: str, device: str | torch.device) -> torch.Tensor:
        """The per-example tensor ``name`` (``indices``, ``sum_digits``, ...) on ``device``, copied there once."""
        device = torch.device(device)
        tensor = getattr(self, name)
        if device.type == "cpu":
            return tensor
        if (name, device) not in self._on_device:
            self._on_device[(name, device)] = tensor.to(device)
            settle(device)
        return self._on_device[(name, device)]

    def images(self, examples: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
        """Normalised images ``[len(examples), 2, N, 1, 28, 28]`` (``examples`` on ``device``: no host copy)."""
        flat = self.on("indices", examples.device)[examples].reshape(-1)
        images = self.split.normalized(flat, device)
        return images.view(len(examples), 2, self.n_digits, 1, 28, 28)

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None = None):
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            yield order[start : start + batch_size]


def add_digit_lists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Digits ``[E, N+1]`` of the sums of digit lists ``a, b`` ``[E, N]`` (most significant first)."""
    n = a.shape[1]
    out = torch.zeros(a.shape[0], n + 1, dtype=torch.long)
    carry = torch.zeros(a.shape[0], dtype=torch.long)
    for i in range(n - 1, -1, -1):
        s = a[:, i] + b[:, i] + carry
        out[:, i + 1] = s % 10
        carry = s // 10
    out[:, 0] = carry
    return out


def addition_query(n_digits: int) -> tuple[str, list[str], list[str], list[str]]:
    """The ``programs/multi_add.pl`` query for N digits, and its input variable names.

    Returns ``(query, xs, ys, zs)``: the digit images of both numbers (``X0..``,
    ``Y0..``, most significant first) and the N+1 observed sum digits (``Z0..``).
    """
    xs = [f"X{i}" for i in range(n_digits)]
    ys = [f"Y{i}" for i in range(n_digits)]
    zs = [f"Z{i}" for i in range(n_digits + 1)]
    return f"addition([{','.join(xs)}],[{','.join(ys)}],[{','.join(zs)}])", xs, ys, zs
