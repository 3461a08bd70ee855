"""MNIST tensor sources and query datasets shaped like DeepProbLog's example data.

``MNIST_train[(Constant(i),)]`` is image ``i`` as a ``[1, 28, 28]`` tensor in
``[-1, 1]``; ``addition(n, "train")`` pairs consecutive images (shuffled by
``seed``) into ``addition(p0_0, p1_0, Sum)`` queries for ``n == 1`` and
``multi_addition([p0_0, ...], [p1_0, ...], Sum)`` for ``n > 1``, with the
substitution ``{p0_0: tensor(train(i)), ...}``.  Images come from
:func:`nesy_gedi.data.mnist.load_mnist` (``$NESY_GEDI_DATA`` or a download).
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Callable, Iterable

import torch
from problog.logic import Constant, Term, list2term

from ....data.mnist import load_mnist
from ...dataset import Dataset
from ...query import Query


@lru_cache(maxsize=2)
def _split(name: str):
    split = load_mnist(name)
    return split.normalized(), split.labels


class MNIST_Images:  # noqa: N801 - DeepProbLog's name
    """Tensor source over one MNIST split, indexed by a tuple of terms ``(Constant(i),)``."""

    def __init__(self, subset: str) -> None:
        self.subset = subset

    def __getitem__(self, item) -> torch.Tensor:
        return _split(self.subset)[0][int(item[0])]


MNIST_train = MNIST_Images("train")
MNIST_test = MNIST_Images("test")


class _Split:
    """One MNIST split as DeepProbLog's ``datasets[name]`` (a torchvision MNIST): ``[i] -> (image, label)``,
    ``len``, ``.targets``; loaded on first use."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __len__(self) -> int:
        return len(_split(self.name)[1])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        images, labels = _split(self.name)
        return images[i], int(labels[i])

    @property
    def targets(self) -> torch.Tensor:
        return _split(self.name)[1]


datasets = {"train": _Split("train"), "test": _Split("test")}


def digits_to_number(digits: Iterable[int]) -> int:
    number = 0
    for d in digits:
        number = number * 10 + int(d)
    return number


class MNIST(Dataset):
    """Single-digit queries ``digit(tensor(split(i)), label)``."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(_split(self.dataset)[1])

    def to_query(self, i: int) -> Query:
        label = Constant(int(_split(self.dataset)[1][i]))
        return Query(Term("digit", Term("tensor", Term(self.dataset, Term("a"))), label),
                     substitution={Term("a"): Constant(i)})


class MNISTOperator(Dataset):
    """``arity`` numbers of ``size`` digits each, combined by ``operator`` (e.g. ``sum``)."""

    def __init__(self, dataset_name: str, function_name: str, operator: Callable[[list[int]], int], size: int = 1,
                 arity: int = 2, seed: int | None = None) -> None:
        if size < 1 or arity < 1:
            raise ValueError(f"size and arity must be at least 1, got {size} and {arity}")
        self.dataset_name, self.function_name, self.operator = dataset_name, function_name, operator
        self.size, self.arity, self.seed = size, arity, seed
        indices = list(range(len(_split(dataset_name)[1])))
        if seed is not None:
            random.Random(seed).shuffle(indices)
        per_example = size * arity
        self.data = [[indices[k + a * size: k + (a + 1) * size] for a in range(arity)]
                     for k in range(0, len(indices) - per_example + 1, per_example)]

    def __len__(self) -> int:
        return len(self.data)

    def _get_label(self, i: int) -> int:
        labels = _split(self.dataset_name)[1]
        return self.operator([digits_to_number(int(labels[j]) for j in number) for number in self.data[i]])

    def to_query(self, i: int) -> Query:
        substitution, names = {}, []
        for a, number in enumerate(self.data[i]):
            inner = []
            for j, index in enumerate(number):
                name = Term(f"p{a}_{j}")
                substitution[name] = Term("tensor", Term(self.dataset_name, Constant(index)))
                inner.append(name)
            names.append(inner)
        arguments = [n[0] for n in names] if self.size == 1 else [list2term(n) for n in names]
        return Query(Term(self.function_name, *arguments, Constant(self._get_label(i))), substitution)


def addition(n: int, dataset: str, seed: int | None = None) -> MNISTOperator:
    """Two ``n``-digit numbers and their sum."""
    return MNISTOperator(dataset, "addition" if n == 1 else "multi_addition", sum, size=n, arity=2, seed=seed)


class MNISTListSum(Dataset):
    """``sum_list([p0, ..., pk], Sum)`` over lists of 1 to ``max_length`` images: each length is its own template."""

    def __init__(self, dataset_name: str, max_length: int = 5, seed: int = 0) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        self.dataset_name = dataset_name
        rng = random.Random(seed)
        indices = list(range(len(_split(dataset_name)[1])))
        rng.shuffle(indices)
        self.data: list[list[int]] = []
        position = 0
        while True:
            length = rng.randint(1, max_length)
            if position + length > len(indices):
                break
            self.data.append(indices[position:position + length])
            position += length

    def __len__(self) -> int:
        return len(self.data)

    def to_query(self, i: int) -> Query:
        labels = _split(self.dataset_name)[1]
        names = [Term(f"p{j}") for j in range(len(self.data[i]))]
        substitution = {n: Term("tensor", Term(self.dataset_name, Constant(k))) for n, k in zip(names, self.data[i])}
        total = sum(int(labels[k]) for k in self.data[i])
        return Query(Term("sum_list", list2term(names), Constant(total)), substitution)
