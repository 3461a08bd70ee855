"""Concept metrics against hand-computed cases and scikit-learn."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, normalized_mutual_info_score

from nesy_gedi import metrics


def test_hand_computed_case():
    labels = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 1, 0, 0, 0])  # value 2 never predicted
    assert metrics.concept_accuracy(pred, labels) == pytest.approx(3 / 6)
    assert metrics.collapse(pred, 3) == pytest.approx(1 / 3)
    cm = metrics.confusion_matrix(pred, labels, 3)
    assert cm.tolist() == [[2, 0, 0], [1, 1, 0], [2, 0, 0]]
    # F1 per class: 0: p=2/5 r=1 -> 4/7; 1: p=1 r=1/2 -> 2/3; 2: 0
    assert metrics.macro_f1(pred, labels, 3) == pytest.approx((4 / 7 + 2 / 3 + 0) / 3)


def test_permuted_clusters_have_perfect_matching_and_nmi():
    labels = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(0))
    permutation = torch.tensor([3, 7, 1, 0, 9, 2, 8, 5, 4, 6])
    clusters = permutation[labels]
    assert metrics.nmi(clusters, labels) == pytest.approx(1.0)
    assert metrics.matched_accuracy(clusters, labels, 10) == pytest.approx(1.0)
    assert metrics.concept_accuracy(clusters, labels) < 0.5
    mapping = metrics.cluster_matching(clusters, labels, 10)
    assert (mapping[permutation.numpy()] == np.arange(10)).all()


def test_agrees_with_sklearn_on_random_predictions():
    rng = np.random.default_rng(1)
    labels, pred = rng.integers(0, 10, 300), rng.integers(0, 10, 300)
    assert metrics.macro_f1(pred, labels, 10) == pytest.approx(f1_score(labels, pred, average="macro"))
    assert metrics.weighted_f1(pred, labels, 10) == pytest.approx(f1_score(labels, pred, average="weighted"))
    assert metrics.nmi(pred, labels) == pytest.approx(normalized_mutual_info_score(labels, pred))


def test_calibration_error():
    labels = np.array([0, 1, 0, 1])
    confident_right = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert metrics.expected_calibration_error(confident_right, labels) == pytest.approx(0.0)
    # all confidence 0.8, accuracy 0.5 -> ECE 0.3
    probs = np.array([[0.8, 0.2], [0.8, 0.2], [0.2, 0.8], [0.2, 0.8]])
    assert metrics.expected_calibration_error(probs, np.array([0, 1, 0, 1])) == pytest.approx(0.3)
    report = metrics.concept_report(torch.tensor(probs), torch.tensor([0, 1, 0, 1]))
    assert report["concept_accuracy"] == 0.5 and report["ece"] == pytest.approx(0.3)


def test_digit_maps_and_cycle_notation():
    eye = np.eye(10, dtype=int) * 9 + 1
    assert metrics.digit_map(eye.tolist()) == "identity" and metrics.cycle_notation(list(range(10))) == "()"
    shifted = eye[:, [(d - 5) % 10 for d in range(10)]]  # digit d predicted as d+5
    assert metrics.predicted_map(shifted.tolist()) == [(d + 5) % 10 for d in range(10)]
    assert metrics.digit_map(shifted.tolist()) == "d+5"
    assert metrics.cycle_notation([(d + 5) % 10 for d in range(10)]) == "(0 5)(1 6)(2 7)(3 8)(4 9)"
    cycle = [1, 6, 2, 3, 4, 0, 5, 7, 8, 9]  # 0 -> 1 -> 6 -> 5 -> 0
    assert metrics.cycle_notation(cycle) == "(0 1 6 5)"
    assert metrics.digit_map(eye[:, np.argsort(cycle)].tolist()) == "other permutation"
    collapsed = eye.copy()
    collapsed[3] = collapsed[2]
    assert metrics.digit_map(collapsed.tolist()) == "not a permutation"
