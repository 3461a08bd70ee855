"""How the facade refuses what nesy_gedi does not implement: a :class:`~nesy_gedi.errors.NotSupportedError` when
called (never on import), naming the feature and what to use instead."""

from __future__ import annotations

from typing import NoReturn

from ..errors import NotSupportedError

EXACT = "nesy_gedi grounds each query with ProbLog and evaluates it exactly on batched circuits; use Model.solve"


def refuse(feature: str, alternative: str = EXACT) -> NoReturn:
    raise NotSupportedError(f"not supported: {feature}; {alternative}")
