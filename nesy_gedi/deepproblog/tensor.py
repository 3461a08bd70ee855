"""DeepProbLog's ``deepproblog.tensor``: a store of tensors named by integers or terms."""

from __future__ import annotations

from typing import Union

from problog.logic import Term
from torch import Tensor

TensorStoreIndex = Union[int, Term]


class TensorStore:
    def __init__(self) -> None:
        self.tensors: dict[TensorStoreIndex, Tensor] = {}
        self.i = 0

    def store(self, tensor: Tensor, i: TensorStoreIndex | None = None) -> TensorStoreIndex:
        """Keep ``tensor`` under ``i`` (default: the next free integer); returns its index."""
        if i is None:
            i = self.i
            self.i += 1
        self.tensors[i] = tensor
        return i

    def __getitem__(self, item: TensorStoreIndex) -> Tensor:
        return self.tensors[item]

    def clear(self) -> None:
        self.tensors.clear()
        self.i = 0
