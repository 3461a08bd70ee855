"""DeepProbLog's ``deepproblog.engines``: ``ExactEngine`` selects nesy_gedi's exact inference; ``ApproximateEngine``
says it is not supported."""

from .approximate_engine import ApproximateEngine
from .engine import Engine
from .exact_engine import ExactEngine

__all__ = ["ApproximateEngine", "Engine", "ExactEngine"]
