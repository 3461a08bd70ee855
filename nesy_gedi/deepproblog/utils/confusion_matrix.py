"""``ConfusionMatrix``: predicted x actual counts over labels that grow as they are seen (DeepProbLog's API)."""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """``matrix[predicted, actual]`` counts; ``classes`` in order of first appearance (or as given)."""

    def __init__(self, classes: int | list = 0) -> None:
        self.classes: list = list(range(classes)) if isinstance(classes, int) else list(classes)
        self.n = len(self.classes)
        self.matrix = np.zeros((self.n, self.n), dtype=np.int64)

    def get_index(self, c) -> int:
        if c not in self.classes:
            self.grow(c)
        return self.classes.index(c)

    def grow(self, c) -> None:
        self.classes.append(c)
        self.n = len(self.classes)
        grown = np.zeros((self.n, self.n), dtype=np.int64)
        grown[: self.n - 1, : self.n - 1] = self.matrix
        self.matrix = grown

    def add_item(self, predicted, actual) -> None:
        actual_i = self.get_index(actual)
        predicted_i = self.get_index(predicted)  # may grow the matrix: index it afterwards
        self.matrix[predicted_i, actual_i] += 1

    def accuracy(self) -> float:
        total = self.matrix.sum()
        accuracy = float(np.trace(self.matrix) / total) if total else 0.0
        print("Accuracy: ", accuracy)
        return accuracy

    def __str__(self) -> str:
        width = max([len(str(c)) for c in self.classes] + [len(str(self.matrix.max() if self.n else 0)), 1])
        header = " " * (width + 1) + " ".join(f"{str(c):>{width}}" for c in self.classes) + "   <- actual"
        rows = [f"{str(c):>{width}} " + " ".join(f"{v:>{width}}" for v in self.matrix[i]) for i, c in enumerate(self.classes)]
        return "\n".join([header, *rows, "^ predicted"])
