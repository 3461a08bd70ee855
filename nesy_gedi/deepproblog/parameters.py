"""DeepProbLog's ``model.parameters``: a list view of the learnable probabilities, and reading the pickled list
of a saved model without running code from the file."""

from __future__ import annotations

import io
import pickle
from typing import Iterator

import torch

from ..errors import NesyError
from ..learnable import LearnableProbabilities


class ProbabilityList:
    """``model.parameters``: ``len``, iteration, ``[k]`` reads and ``[k] = p`` writes the model's values."""

    def __init__(self, learnable: LearnableProbabilities | None) -> None:
        self._learnable = learnable

    def __len__(self) -> int:
        return 0 if self._learnable is None else len(self._learnable.labels)

    def __getitem__(self, k: int) -> float:
        self._check(k)
        return self._learnable.values()[k]

    def __setitem__(self, k: int, value: float) -> None:
        self._check(k)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
            raise NesyError(f"learnable probability {k} must be a number in [0, 1], got {value!r}")
        values = torch.tensor(self._learnable.values(), dtype=torch.float64)
        values[k] = float(value)
        self._learnable.set_(values)

    def __iter__(self) -> Iterator[float]:
        return iter(self._learnable.values() if self._learnable is not None else [])

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (list, tuple, ProbabilityList)) else NotImplemented

    def __repr__(self) -> str:
        return repr(list(self))

    def _check(self, k: int) -> None:
        if not isinstance(k, int) or not -len(self) <= k < len(self):
            raise IndexError(f"learnable probability {k} does not exist: the program has {len(self)}")


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"it names {module}.{name}")


def load_parameters(data: bytes, where: str) -> list[float]:
    """The pickled list of probabilities of a saved model; anything but plain numbers, strings and containers is
    refused before it is built (a pickle that names a class or function could run code)."""
    try:
        values = _PlainUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise NesyError(f"{where}: refused: only numbers, strings and containers are loaded; {exc}") from None
    except Exception as exc:
        raise NesyError(f"{where}: not a pickled list of probabilities ({type(exc).__name__}: {exc})") from None
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in values):
        raise NesyError(f"{where}: expected a list of probabilities, got {type(values).__name__}")
    return [float(v) for v in values]
