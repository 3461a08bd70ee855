"""Out-of-distribution detection with the energy of a GEDI network.

A network trained as an energy model gives low energy ``E(x) = -logsumexp f(x)``
to data; the score ``-E(x)`` (higher: more in-distribution) separates data from
inputs unlike it.  :func:`gradient_norm_scores` scores by the energy's input
gradient instead, :func:`max_softmax_scores` by the classifier's confidence.
:func:`auroc` and :func:`fpr_at_tpr` summarise how well a score separates an
in-distribution set from an out-of-distribution one.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from ..metrics import as_numpy


def _batched(net: nn.Module, images: torch.Tensor, batch_size: int, score) -> torch.Tensor:
    """``score(x)`` of each batch ``x`` of ``images`` (moved to the network's device), with the network in eval
    mode meanwhile; ``[n]`` on the CPU."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    out = [score(images[i:i + batch_size].to(device)).detach().cpu() for i in range(0, len(images), batch_size)]
    net.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


@torch.no_grad()
def _scores(net: nn.Module, images: torch.Tensor, batch_size: int, score) -> torch.Tensor:
    """``score(logits)`` per image, without gradients."""
    return _batched(net, images, batch_size, lambda x: score(net(x)))


def energy_scores(net: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``-E(x) = logsumexp_y f(x)_y`` per image ``[n]``: higher means more like the training data."""
    return _scores(net, images, batch_size, lambda logits: torch.logsumexp(logits, dim=1))


def max_softmax_scores(net: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``max_y p(y|x)`` per image (the baseline of Hendrycks & Gimpel)."""
    return _scores(net, images, batch_size, lambda logits: logits.softmax(1).max(1).values)


def gradient_norm_scores(net: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``-||d E(x) / d x||`` per image ``[n]`` (the "approximate mass" score of JEM, Grathwohl et al. 2020):
    data sits near the energy's local minima, where the input gradient is small."""
    def score(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.logsumexp(net(x), dim=1).sum(), x)
        return -grad.flatten(1).norm(dim=1)

    return _batched(net, images, batch_size, score)


def auroc(in_scores, out_scores) -> float:
    """Area under the ROC curve of in-distribution (positive) vs out-of-distribution scores (ties count half)."""
    pos, neg = as_numpy(in_scores, np.float64).ravel(), as_numpy(out_scores, np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("auroc needs at least one in- and one out-of-distribution score")
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def fpr_at_tpr(in_scores, out_scores, tpr: float = 0.95) -> float:
    """Fraction of OOD inputs accepted at the highest threshold that accepts ``tpr`` of the in-distribution ones."""
    pos, neg = np.sort(as_numpy(in_scores, np.float64).ravel())[::-1], as_numpy(out_scores, np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("fpr_at_tpr needs at least one in- and one out-of-distribution score")
    threshold = pos[int(np.ceil(tpr * len(pos))) - 1]
    return float((neg >= threshold).mean())


SCORES = {"energy": energy_scores, "max_softmax": max_softmax_scores, "gradient_norm": gradient_norm_scores}


def ood_report(net: nn.Module, in_images: torch.Tensor, out_sets: dict[str, torch.Tensor],
               scores: tuple[str, ...] = ("energy", "max_softmax")) -> dict[str, dict[str, dict[str, float]]]:
    """``report[score][ood_set] = {"auroc": ..., "fpr95": ...}`` for each score of :data:`SCORES`."""
    report: dict[str, dict[str, dict[str, float]]] = {}
    for name in scores:
        inside = SCORES[name](net, in_images)
        for ood_name, images in out_sets.items():
            outside = SCORES[name](net, images)
            report.setdefault(name, {})[ood_name] = {"auroc": auroc(inside, outside),
                                                     "fpr95": fpr_at_tpr(inside, outside)}
    return report
