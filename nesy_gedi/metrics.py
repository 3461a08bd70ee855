"""Concept-quality metrics: how good are the learned concepts (e.g. digits)?

All functions take integer labels ``[n]`` and either predicted labels ``[n]`` or
predicted probabilities ``[n, K]`` (torch tensors or numpy arrays).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import confusion_matrix as _confusion_matrix
from sklearn.metrics import f1_score, normalized_mutual_info_score


def as_numpy(x, dtype=None) -> np.ndarray:
    """A torch tensor (any device) or array-like as a numpy array, cast to ``dtype`` if given."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def concept_accuracy(pred, labels) -> float:
    pred, labels = as_numpy(pred), as_numpy(labels)
    return float((pred == labels).mean())


def macro_f1(pred, labels, n_classes: int) -> float:
    return float(f1_score(as_numpy(labels), as_numpy(pred), labels=list(range(n_classes)), average="macro", zero_division=0))


def weighted_f1(pred, labels, n_classes: int) -> float:
    return float(f1_score(as_numpy(labels), as_numpy(pred), labels=list(range(n_classes)), average="weighted", zero_division=0))


def confusion_matrix(pred, labels, n_classes: int) -> np.ndarray:
    """``[true, predicted]`` counts."""
    return _confusion_matrix(as_numpy(labels), as_numpy(pred), labels=list(range(n_classes)))


def collapse(pred, n_classes: int) -> float:
    """Fraction of concept values that are never predicted (0: all used, (K-1)/K: one value)."""
    used = np.unique(as_numpy(pred))
    return float(1.0 - len(used) / n_classes)


def expected_calibration_error(probs, labels, n_bins: int = 15) -> float:
    """ECE with equal-width confidence bins: sum_b |B|/n * |accuracy(B) - confidence(B)|."""
    probs, labels = as_numpy(probs), as_numpy(labels)
    confidence, pred = probs.max(1), probs.argmax(1)
    correct = (pred == labels).astype(float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def nmi(pred, labels) -> float:
    return float(normalized_mutual_info_score(as_numpy(labels), as_numpy(pred)))


def cluster_matching(pred, labels, n_classes: int) -> np.ndarray:
    """Hungarian matching of clusters to labels: ``mapping[cluster] = label``."""
    counts = confusion_matrix(pred, labels, n_classes).T  # [cluster, label]
    rows, cols = linear_sum_assignment(-counts)
    mapping = np.arange(n_classes)
    mapping[rows] = cols
    return mapping


def matched_accuracy(pred, labels, n_classes: int) -> float:
    """Accuracy after mapping each cluster to a label one-to-one (Hungarian)."""
    mapping = cluster_matching(pred, labels, n_classes)
    return concept_accuracy(mapping[as_numpy(pred)], labels)


def concept_report(probs, labels, n_classes: int | None = None, ece_bins: int = 15) -> dict:
    """All metrics for predicted concept probabilities ``[n, K]`` against true concepts ``[n]``."""
    probs, labels = as_numpy(probs), as_numpy(labels)
    k = n_classes or probs.shape[1]
    pred = probs.argmax(1)
    return {
        "concept_accuracy": concept_accuracy(pred, labels),
        "macro_f1": macro_f1(pred, labels, k),
        "weighted_f1": weighted_f1(pred, labels, k),
        "collapse": collapse(pred, k),
        "ece": expected_calibration_error(probs, labels, ece_bins),
        "nmi": nmi(pred, labels),
        "matched_accuracy": matched_accuracy(pred, labels, k),
        "confusion_matrix": confusion_matrix(pred, labels, k).tolist(),
    }


def predicted_map(confusion: list[list[int]]) -> list[int]:
    """The most frequent prediction for each true digit (row of the confusion matrix)."""
    return [max(range(len(row)), key=row.__getitem__) for row in confusion]


def cycle_notation(permutation: list[int]) -> str:
    """A permutation ``d -> permutation[d]`` in cycle notation, e.g. ``(0 1 6 5)``; ``()`` for the identity."""
    seen, cycles = set(), []
    for start in range(len(permutation)):
        if start in seen or permutation[start] == start:
            continue
        cycle, d = [], start
        while d not in seen:
            seen.add(d)
            cycle.append(d)
            d = permutation[d]
        cycles.append("(" + " ".join(map(str, cycle)) + ")")
    return "".join(cycles) or "()"


def digit_map(confusion: list[list[int]]) -> str:
    """How the learned digits relate to the true ones: ``identity``, ``d+5`` (EvenOdd's other
    permutation), ``other permutation`` or ``not a permutation`` (most frequent prediction per digit)."""
    predicted = predicted_map(confusion)
    if sorted(predicted) != list(range(len(predicted))):
        return "not a permutation"
    if predicted == list(range(len(predicted))):
        return "identity"
    if predicted == [(d + 5) % 10 for d in range(len(predicted))]:
        return "d+5"
    return "other permutation"
