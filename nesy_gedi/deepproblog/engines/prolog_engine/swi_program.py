"""DeepProbLog's SWI-Prolog program store for ``ApproximateEngine``: not supported."""

from __future__ import annotations

from ..._unsupported import refuse
from ..approximate_engine import APPROXIMATE

ALL_FACTS = "fa(_,_,_,_)"
ALL_CLAUSES = "cl(_,_,_)"
ids = 0
current_program = None


def get_heuristic_func(heuristic_obj):
    refuse(*APPROXIMATE)


class SWIProgramException(Exception):
    """Raised by DeepProbLog's SWI-Prolog store; kept for ``except`` clauses."""


class SWIProgram:
    def __init__(self, db=None, heuristic=None, parent=None) -> None:
        refuse(*APPROXIMATE)
