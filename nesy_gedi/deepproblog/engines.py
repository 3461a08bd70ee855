"""Engines: nesy_gedi is exact; ``ExactEngine`` selects it, ``ApproximateEngine`` says it is not supported."""

from __future__ import annotations

from ..errors import NotSupportedError


class Engine:
    def __init__(self, model) -> None:
        self.model = model


class ExactEngine(Engine):
    """Exact inference: every query is ground once per template and compiled to a batched tensor circuit."""


class ApproximateEngine(Engine):
    """DeepProbLog's approximate (k-best proof) engine: not supported."""

    geometric_mean = "geometric_mean"
    ucs = "ucs"

    def __init__(self, model, k=None, heuristic=None, exploration: bool = False, **kwargs) -> None:  # noqa: ARG002
        raise NotSupportedError(
            "not supported: ApproximateEngine (nesy_gedi evaluates queries exactly on batched circuits); "
            "use ExactEngine(model)"
        )
