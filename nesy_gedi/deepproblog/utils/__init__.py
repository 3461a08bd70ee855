"""DeepProbLog's ``deepproblog.utils``: confusion matrices, loggers, stop conditions, standard networks (submodules),
and the helpers its example scripts call."""

from __future__ import annotations

from itertools import islice
from typing import Any, Iterable


def count_parameters(model) -> int:
    """The number of trainable parameters of a torch module (or anything with ``parameters()``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def nth(iterable: Iterable, n: int, default: Any = None) -> Any:
    """The ``n``-th item of ``iterable``, or ``default``."""
    return next(islice(iterable, n, None), default)
