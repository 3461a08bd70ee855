"""DeepProbLog's ``deepproblog.arithmetic_circuit`` (one circuit per ground query): replaced here by circuits compiled
once per query template and evaluated in batches (:mod:`nesy_gedi.compiled`)."""

from __future__ import annotations

from ._unsupported import refuse


class ArithmeticCircuit:
    def __init__(self, formula, semiring, ground_time=None, sdd_auto_gc: bool = False) -> None:
        refuse("ArithmeticCircuit (DeepProbLog's per-query circuits)")

    def evaluate(self, model, substitution=None, re_evaluate=True):
        refuse("ArithmeticCircuit.evaluate (DeepProbLog's per-query circuits)", "use Model.solve")

    def extract_neural(self):
        refuse("ArithmeticCircuit.extract_neural (DeepProbLog's per-query circuits)")

    def get_named(self):
        refuse("ArithmeticCircuit.get_named (DeepProbLog's per-query circuits)")

    def save(self, filename):
        refuse("ArithmeticCircuit.save (DeepProbLog's per-query circuits)")
