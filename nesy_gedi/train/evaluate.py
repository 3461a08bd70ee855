"""Task and concept metrics over a whole dataset (no gradients, eval mode)."""

from __future__ import annotations

import torch
from sklearn.metrics import f1_score
from torch import nn

from ..data.addition import AdditionDataset, add_digit_lists
from ..data.mnist import MnistSplit
from ..metrics import cluster_matching, concept_report


@torch.no_grad()
def predict_split(net: nn.Module, split: MnistSplit, device, batch_size: int = 2000) -> torch.Tensor:
    """Softmax outputs ``[n, K]`` for every image of a split."""
    was_training = net.training
    net.eval()
    out = [net(split.normalized(torch.arange(i, min(i + batch_size, len(split))), device)).softmax(1).cpu()
           for i in range(0, len(split), batch_size)]
    net.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def predict_digits(net: nn.Module, data: AdditionDataset, device, batch_size: int = 1000) -> torch.Tensor:
    """Concept probabilities ``[E, 2, N, 10]`` for every digit image of an addition dataset."""
    was_training = net.training
    net.eval()
    out = []
    for examples in data.batches(batch_size, shuffle=False):
        images = data.images(examples, device)
        out.append(net(images.view(-1, 1, 28, 28)).softmax(1).view(len(examples), 2, data.n_digits, -1).cpu())
    net.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 2, data.n_digits, 10)


def evaluate_addition(net: nn.Module, data: AdditionDataset, device, batch_size: int = 1000,
                      concepts: bool = False, ece_bins: int = 15) -> dict:
    """Sum accuracy (sum of the predicted digits) and digit (concept) accuracy; all concept metrics if asked.

    For N=1, ``sum_macro_f1`` is the macro F1 of the predicted sums over the sums
    that occur in the data or the predictions (rsbench's label F1).
    """
    probs = predict_digits(net, data, device, batch_size)
    pred = probs.argmax(-1)
    result = {
        "sum_accuracy": float((add_digit_lists(pred[:, 0], pred[:, 1]) == data.sum_digits).all(1).float().mean()),
        "digit_accuracy": float((pred == data.digits).float().mean()),
    }
    if data.n_digits == 1 and len(data):
        true_sum, pred_sum = data.digits.sum(dim=(1, 2)), pred.sum(dim=(1, 2))
        result["sum_macro_f1"] = float(f1_score(true_sum.numpy(), pred_sum.numpy(), average="macro", zero_division=0))
    if concepts:
        k = probs.shape[-1]
        result["concepts"] = concept_report(probs.reshape(-1, k), data.digits.reshape(-1), k, ece_bins)
    return result


def evaluate_clusters(net: nn.Module, split: MnistSplit, device) -> dict:
    """NMI, Hungarian-matched accuracy, collapse and the cluster -> label map on a labelled split."""
    probs = predict_split(net, split, device)
    report = concept_report(probs, split.labels)
    mapping = cluster_matching(probs.argmax(1), split.labels, probs.shape[1])
    return {"nmi": report["nmi"], "matched_accuracy": report["matched_accuracy"], "collapse": report["collapse"],
            "cluster_to_label": mapping.tolist(), "confusion_matrix": report["confusion_matrix"]}
