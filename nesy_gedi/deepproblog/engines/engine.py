"""DeepProbLog's ``Engine`` base class: how queries are ground.  Here every query is ground with ProbLog and
compiled once per template by :class:`~nesy_gedi.NeSyModel`; the engine's grounding hooks are not supported."""

from __future__ import annotations

from typing import Callable, Sequence

from problog.logic import Term

from .._unsupported import refuse


class Engine:
    def __init__(self, model) -> None:
        self.model = model

    def perform_count(self, queries: Sequence, acs) -> None:
        refuse("Engine.perform_count (proof counting for heuristics)")

    def prepare(self, program) -> None:
        refuse("Engine.prepare (the engine's own program transformation)")

    def ground(self, query, **kwargs) -> None:
        refuse("Engine.ground (the engine's own grounding)")

    def register_foreign(self, func: Callable, function_name: str, arity_in: int, arity_out: int) -> None:
        refuse(f"foreign predicate {function_name}/{arity_in + arity_out} (Python functions called from the program)",
               "compute the value in a network or write the predicate in ProbLog")

    def register_foreign_nondet(self, func: Callable, function_name: str, arity_in: int, arity_out: int) -> None:
        refuse(f"non-deterministic foreign predicate {function_name}/{arity_in + arity_out}",
               "write the predicate in ProbLog")

    def get_tensor(self, tensor_term: Term):
        """The tensor a ``tensor(...)`` term names, from the model's tensor sources."""
        return self.model.get_tensor(tensor_term)

    def get_hyperparameters(self) -> dict:
        return {"type": type(self).__name__}

    def eval(self) -> None:
        """Evaluation mode: nothing to change for exact inference."""

    def train(self) -> None:
        """Training mode: nothing to change for exact inference."""

    @staticmethod
    def can_cache() -> bool:
        return False
