"""Concepts as a learned permutation of a clusterer's clusters.

A GEDI-trained network sorts digit images into clusters, but does not know
which cluster is which digit.  :class:`ClusterPermutation` wraps such a network
``f`` and maps its K clusters onto K concepts through a doubly-stochastic matrix
``P = sinkhorn(scale * S)`` (learned scores ``S``):

    p(concept | x) = softmax(f(x)) @ P,  i.e.  logits_j = logsumexp_k (f(x)_k + log P_kj).

Because every row of ``P`` sums to one, ``logsumexp_j logits_j = logsumexp_k f(x)_k``:
the energy ``E(x) = -logsumexp f(x)`` of GEDI is unchanged.  Because the columns
sum to one too, two clusters cannot both become the same concept while another
concept is left without a cluster, the non-injective "digit maps" that satisfy a
program's training labels just as well as the true one (e.g. on MNIST-EvenOdd).
At a vertex of the Birkhoff polytope ``P`` is a permutation matrix; a blend of two permutations makes each example's answer a blend of two
answers, so the NeSy likelihood pushes ``P`` towards a vertex.
"""

from __future__ import annotations

import torch
from torch import nn


def sinkhorn(log_scores: torch.Tensor, iterations: int) -> torch.Tensor:
    """``log P`` of the doubly-stochastic matrix nearest ``exp(log_scores)`` (alternating normalisation).

    The last step normalises rows, so rows sum to one exactly and columns approximately.
    """
    if log_scores.dim() != 2 or log_scores.shape[0] != log_scores.shape[1]:
        raise ValueError(f"sinkhorn needs a square matrix, got {tuple(log_scores.shape)}")
    log_p = log_scores
    for _ in range(iterations):
        log_p = log_p - log_p.logsumexp(dim=0, keepdim=True)
        log_p = log_p - log_p.logsumexp(dim=1, keepdim=True)
    return log_p


def mix_logits(cluster_logits: torch.Tensor, log_mixing: torch.Tensor) -> torch.Tensor:
    """``[batch, K]`` concept logits ``logsumexp_k (cluster_logits_k + log_mixing_kj)``."""
    return torch.logsumexp(cluster_logits.unsqueeze(2) + log_mixing.unsqueeze(0), dim=1)


class ClusterPermutation(nn.Module):
    """``clusterer``'s logits mapped onto concepts through a learned doubly-stochastic matrix.

    ``scale`` multiplies the scores (a larger step for them under the network's
    learning rate); ``iterations`` are Sinkhorn's.  Scores start near zero
    (``P`` near uniform) with a little seeded noise to break the symmetry.
    """

    def __init__(self, clusterer: nn.Module, n_classes: int = 10, scale: float = 10.0, iterations: int = 20,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.clusterer = clusterer
        self.scale = scale
        self.iterations = iterations
        self.scores = nn.Parameter(1e-3 * torch.randn(n_classes, n_classes, generator=generator))

    def log_mixing(self) -> torch.Tensor:
        """``log P``, ``[clusters, concepts]``."""
        return sinkhorn(self.scale * self.scores, self.iterations)

    def assignment(self) -> list[int]:
        """The concept each cluster is mapped to most (a permutation once ``P`` is one)."""
        return self.log_mixing().argmax(dim=1).tolist()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mix_logits(self.clusterer(x), self.log_mixing())
