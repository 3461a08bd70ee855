"""DeepProbLog's ``deepproblog.engines.exact_engine``: :class:`ExactEngine` selects exact inference (every query
ground once per template and compiled to a batched tensor circuit); its formula-building helpers are internal to
DeepProbLog and not supported."""

from __future__ import annotations

from .._unsupported import refuse
from .engine import Engine

EXTERN = "{}_extern_nocache_"


def wrap_tensor(x, store, name=None):
    refuse("exact_engine.wrap_tensor (DeepProbLog's tensor store in formulas)",
           "pass tensors as query inputs (Query substitutions, Model.add_tensor_source)")


def create_with_substitution(formula, second, translation, key):
    refuse("exact_engine.create_with_substitution (DeepProbLog's formula copies)")


def get_predicate(net):
    refuse("exact_engine.get_predicate (DeepProbLog's neural predicate hooks)")


def get_det_predicate(net, engine):
    refuse("exact_engine.get_det_predicate (DeepProbLog's deterministic neural predicates)")


class ExactEngine(Engine):
    """Exact inference: every query is ground once per template and compiled to a batched tensor circuit."""

    def prepare(self, db) -> None:
        refuse("ExactEngine.prepare (DeepProbLog's program transformation)")

    def ground(self, query, label=None, repeat=1, **kwargs) -> None:
        refuse("ExactEngine.ground (DeepProbLog's grounding)")

    def create_nn_predicate_ad(self, e) -> None:
        refuse("ExactEngine.create_nn_predicate_ad (neural annotated disjunctions are compiled by nesy_gedi)")

    def create_nn_predicate_fact(self, e) -> None:
        refuse("ExactEngine.create_nn_predicate_fact (neural facts are compiled by nesy_gedi)")

    def create_nn_predicate_det(self, e) -> None:
        refuse("ExactEngine.create_nn_predicate_det (deterministic neural predicates)")

    def get_hyperparameters(self) -> dict:
        return {"type": "ExactEngine"}

    @staticmethod
    def can_cache() -> bool:
        return True
