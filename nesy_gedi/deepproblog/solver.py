"""DeepProbLog's ``deepproblog.solver``: ground, compile and evaluate queries.  :meth:`Model.solve` does this here,
on batched circuits; building a ``Solver`` yourself is not supported."""

from __future__ import annotations

from ._unsupported import refuse


class SolverException(Exception):
    """Raised by DeepProbLog's solver; kept for ``except`` clauses."""


class Solver:
    def __init__(self, model, engine, semiring=None, cache: bool = False, cache_root=None,
                 sdd_auto_gc: bool = False) -> None:
        refuse("Solver (DeepProbLog's per-query solver)")
