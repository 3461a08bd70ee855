"""``Dataset`` and ``DataLoader`` with DeepProbLog's signatures and batching order."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from math import ceil

import torch

from .query import Query


class Dataset(ABC):
    """A sequence of examples, each turned into a :class:`Query` by :meth:`to_query`."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def to_query(self, i: int) -> Query: ...

    def to_queries(self) -> list[Query]:
        return [self.to_query(i) for i in range(len(self))]

    def subset(self, i: int, j: int | None = None) -> "Dataset":
        """Examples ``[0, i)``, or ``[i, j)`` when ``j`` is given."""
        return _Slice(self, 0, i) if j is None else _Slice(self, i, j)

    def __add__(self, other: "Dataset") -> "Dataset":
        return _Concatenation(self, other)

    def __str__(self) -> str:
        return "\n".join(str(self.to_query(i)) for i in range(min(len(self), 5)))


class _Slice(Dataset):
    def __init__(self, parent: Dataset, start: int, stop: int) -> None:
        self.parent, self.start, self.stop = parent, start, min(stop, len(parent))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def to_query(self, i: int) -> Query:
        return self.parent.to_query(self.start + i)


class _Concatenation(Dataset):
    def __init__(self, first: Dataset, second: Dataset) -> None:
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    def to_query(self, i: int) -> Query:
        return self.first.to_query(i) if i < len(self.first) else self.second.to_query(i - len(self.first))


class DataLoader:
    """Batches of queries; shuffled each epoch with ``random.Random(seed)`` when ``shuffle`` is true.

    Iterating gives lists of :class:`Query` as DeepProbLog's loader does;
    :func:`~nesy_gedi.deepproblog.train.train_model` asks :meth:`epoch_order`
    for each epoch's order instead, so that it can checkpoint the loader's state.
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset.to_queries()
        self.batch_size = batch_size
        self.length = len(self.dataset)
        self.shuffle = shuffle
        self.epoch = 0
        self.rng = random.Random(seed)
        self._iterator = None

    def _shuffling(self) -> bool:
        return bool(self.shuffle(self.epoch)) if callable(self.shuffle) else bool(self.shuffle)

    def epoch_order(self) -> torch.Tensor:
        """Example indices of the next epoch."""
        indices = list(range(self.length))
        if self._shuffling():
            self.rng.shuffle(indices)
        self.epoch += 1
        return torch.tensor(indices, dtype=torch.long)

    def __iter__(self):
        order = self.epoch_order().tolist()
        for start in range(0, self.length, self.batch_size):
            yield [self.dataset[i] for i in order[start:start + self.batch_size]]

    def __len__(self) -> int:
        return int(ceil(self.length / self.batch_size))

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.rng.setstate(state["rng"])
