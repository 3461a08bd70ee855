"""DeepProbLog's ``deepproblog.semiring``: ``Result`` (the answers of one query, as :meth:`Model.solve` returns
them) and ``Semiring``, whose formula evaluation nesy_gedi replaces by log-semiring tensor circuits."""

from __future__ import annotations

from problog.evaluator import Semiring as ProbLogSemiring

from .._unsupported import refuse
from ..model import Result

__all__ = ["Result", "Semiring"]


class Semiring(ProbLogSemiring):  # ProbLog's semiring interface, as DeepProbLog's; it cannot be built here
    def __init__(self, model, substitution, values) -> None:
        refuse("Semiring (DeepProbLog's formula evaluation)",
               "nesy_gedi evaluates log-semiring tensor circuits; use Model.solve")

    @staticmethod
    def cross_entropy(result, target: float, weight: float, q=None, eps: float = 1e-6) -> float:
        refuse("Semiring.cross_entropy", "train_model(..., loss_function_name='cross_entropy')")
