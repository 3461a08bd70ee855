"""DeepProbLog's ``deepproblog.solver``: ground, compile and evaluate queries.  :meth:`Model.solve` does this here,
on batched circuits; building a ``Solver`` yourself is not supported."""

from __future__ import annotations

from ._unsupported import refuse
from .semiring.graph_semiring import GraphSemiring


class SolverException(Exception):
    """Raised by DeepProbLog's solver; kept for ``except`` clauses."""

    def __init__(self, *args) -> None:
        super().__init__(*args)


class Solver:
    def __init__(self, model, engine, semiring=GraphSemiring, cache: bool = False, cache_root=None,
                 sdd_auto_gc: bool = False) -> None:
        refuse("Solver (DeepProbLog's per-query solver)", "use Model.set_engine and Model.solve")

    def build_ac(self, q):
        refuse("Solver.build_ac (DeepProbLog's per-query solver)", "use Model.solve")

    def solve(self, batch):
        refuse("Solver.solve (DeepProbLog's per-query solver)", "use Model.solve")

    def get_tensor(self, term):
        refuse("Solver.get_tensor (DeepProbLog's per-query solver)", "use Model.get_tensor")

    def get_hyperparameters(self):
        refuse("Solver.get_hyperparameters (DeepProbLog's per-query solver)", "use Model.get_hyperparameters")
