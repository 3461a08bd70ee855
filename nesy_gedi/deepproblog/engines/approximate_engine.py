"""DeepProbLog's ``deepproblog.engines.approximate_engine``: its k-best proof search (SWI-Prolog) is not supported;
nesy_gedi evaluates queries exactly."""

from __future__ import annotations

from .._unsupported import refuse
from .engine import Engine

APPROXIMATE = ("ApproximateEngine (nesy_gedi evaluates queries exactly on batched circuits)",
               "use ExactEngine(model), with Network(..., k=K) for top-k grounding where exact inference is too big")


def wrap_tensor(x, store):
    refuse(*APPROXIMATE)


def unwrap_tensor(x, model):
    refuse(*APPROXIMATE)


class ApproximateEngine(Engine):
    """DeepProbLog's approximate (k-best proof) engine: not supported."""

    geometric_mean = "geometric_mean"
    ucs = "ucs"

    def __init__(self, model, k, heuristic=None, exploration=False, timeout=None, ignore_timeout=False) -> None:
        refuse(*APPROXIMATE)
