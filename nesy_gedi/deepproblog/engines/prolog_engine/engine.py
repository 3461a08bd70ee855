"""DeepProbLog's SWI-Prolog proof search (``PrologEngine``): not supported; nesy_gedi evaluates queries exactly."""

from __future__ import annotations

from pathlib import Path

from ..._unsupported import refuse
from ..approximate_engine import APPROXIMATE

root = Path(__file__).parent


def escape_strings_in_term(term):
    refuse(*APPROXIMATE)


class PrologEvaluationException(Exception):
    """Raised by DeepProbLog's Prolog engine; kept for ``except`` clauses."""


class PrologEngine:
    def __init__(self, k, heuristic, exploration, timeout=None, ignore_timeout=False) -> None:
        refuse(*APPROXIMATE)
