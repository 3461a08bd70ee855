"""DeepProbLog's search heuristics for ``ApproximateEngine``.  They can be built (they only hold settings); the
engine that would use them is not supported."""

from __future__ import annotations

from ..._unsupported import refuse
from ..approximate_engine import APPROXIMATE


class Heuristic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_hyperparameters(self) -> dict:
        return {"type": self.name}


class PartialProbability(Heuristic):
    def __init__(self) -> None:
        super().__init__("partial_probability")


class GeometricMean(Heuristic):
    def __init__(self) -> None:
        super().__init__("geometric_mean")


class LearnedHeuristic(Heuristic):
    def __init__(self, name: str, predicates) -> None:
        super().__init__(name)
        self.predicates = predicates

    def count(self, batch, acs) -> None:
        refuse(*APPROXIMATE)

    def get_value(self, node) -> float:
        refuse(*APPROXIMATE)

    def get_hyperparameters(self) -> dict:
        return {"type": self.name, "predicates": list(self.predicates)}


class NeuralHeuristic(LearnedHeuristic):
    def __init__(self, heuristic_functions, model) -> None:
        super().__init__("neural", list(heuristic_functions))
        self.heuristic_functions, self.model = heuristic_functions, model

    def arg_to_tensor(self, arg):
        refuse(*APPROXIMATE)
