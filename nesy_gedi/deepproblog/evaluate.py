"""``get_confusion_matrix`` and ``get_fact_accuracy``: DeepProbLog's evaluation, batched by template."""

from __future__ import annotations

import torch

from .dataset import Dataset
from .model import Model
from .utils.confusion_matrix import ConfusionMatrix

BATCH = 256  # queries evaluated together


def _chunks(model: Model, dataset: Dataset):
    """``(offset, queries)`` of ``dataset`` in chunks of :data:`BATCH`, with the model in eval mode, no gradients."""
    model.eval()
    queries = dataset.to_queries()
    with torch.no_grad():
        for start in range(0, len(queries), BATCH):
            yield start, queries[start:start + BATCH]


def _report(matrix: ConfusionMatrix, verbose: int) -> ConfusionMatrix:
    if verbose > 0:
        print(matrix)
        print("Accuracy", matrix.accuracy())
    return matrix


def get_confusion_matrix(model: Model, dataset: Dataset, verbose: int = 0, eps: float | None = None) -> ConfusionMatrix:
    """Predicted (most probable answer) vs actual value of each query's first output argument."""
    matrix = ConfusionMatrix()
    for start, chunk in _chunks(model, dataset):
        for i, (query, prediction) in enumerate(zip(chunk, model.predict(chunk))):
            actual = str(query.output_values()[0])
            if prediction is None:
                predicted = "no_answer"
                if verbose > 1:
                    print(f"no answer for query {query}")
            else:
                predicted, p = prediction
                if eps is not None:
                    predicted_value, actual_value = float(predicted), float(actual)
                    actual = actual_value
                    predicted = actual_value if abs(actual_value - predicted_value) < eps else predicted_value
                if verbose > 1 and actual != predicted:
                    print(f"{start + i} {actual} vs {p}::{predicted} for query {query}")
            matrix.add_item(predicted, actual)
    return _report(matrix, verbose)


def get_fact_accuracy(model: Model, dataset: Dataset, verbose: int = 0, threshold: float = 0.5,
                      empty_answer: str = "false") -> ConfusionMatrix:
    """``true``/``false`` by thresholding each ground query's probability, against ``query.p``."""
    matrix = ConfusionMatrix()
    for _, chunk in _chunks(model, dataset):
        for query, result in zip(chunk, model.solve(chunk)):
            if len(result) == 0:
                predicted = empty_answer
            else:
                predicted = "true" if float(next(iter(result.result.values()))) >= threshold else "false"
            matrix.add_item(predicted, "true" if query.p >= threshold else "false")
    return _report(matrix, verbose)
