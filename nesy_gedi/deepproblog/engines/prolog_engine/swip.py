"""DeepProbLog's conversions between ProbLog terms and PySwip objects: not supported (no SWI-Prolog engine here)."""

from __future__ import annotations

from typing import Any

from ..._unsupported import refuse
from ..approximate_engine import APPROXIMATE

PySwipObject = Any
ProblogObject = Any


def pyswip_to_term(pyswip_obj, with_variables=False):
    refuse(*APPROXIMATE)


def term_to_pyswip(term):
    refuse(*APPROXIMATE)


def parse(to_parse):
    refuse(*APPROXIMATE)


def bindings_to_dict(bindings: list):
    refuse(*APPROXIMATE)


def unify(variable, value):
    refuse(*APPROXIMATE)
