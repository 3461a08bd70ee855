"""Estimated cluster sizes for GEDI's prior, where the classes are not balanced.

GEDI's uniformity prior ``KL(U || pbar)`` asks every cluster to hold 1/K of a batch.  On data whose
classes are not balanced (rsbench's EvenOdd training digits are 1:2) it splits large classes and
merges small ones.  :class:`ClusterSizes` replaces ``U`` by an estimate ``pi`` of the sizes, made
the way EM estimates a mixture's weights: ``pi`` is the fraction of images whose hard assignment
(argmax) is each cluster, counted over the last ``period`` updates.  Two guards:

* it starts uniform and is first estimated only ``after`` updates, once clusters have formed under the
  uniform prior (before that there is nothing to estimate);
* every size is kept between ``floor / K`` and ``ceiling / K``, so a cluster that shrinks is pulled
  back before it empties, and one that has swallowed another class is pushed to give it back.

The prior itself is :func:`~.objective.size_prior_loss`.  Unlike a floor on the sizes (``floor_loss``),
``KL(pi || pbar)`` still has no cheap constant solution: a constant assignment ``p(y|x) = pi`` meets
the prior but costs the invariance term the entropy of ``pi``, close to ``log K`` for sizes within the bounds (at least 2.17 against log 10 = 2.30 for K = 10
with the default bounds 0.5 and 1.5; the floor prior's constant solution costs 1.68).
"""

from __future__ import annotations

import torch


class ClusterSizes:
    """A running estimate of the cluster sizes from the hard assignments seen in training."""

    def __init__(self, k: int, after: int, period: int = 100, floor: float = 0.5, ceiling: float = 1.5) -> None:
        if k < 2:
            raise ValueError(f"cluster sizes need at least 2 clusters, got {k}")
        if period < 1:
            raise ValueError(f"the estimation period must be at least 1 update, got {period}")
        if not 0 < floor <= 1:
            raise ValueError(f"the size floor must be in (0, 1] (a fraction of 1/K), got {floor}")
        if not 1 <= ceiling <= k:
            raise ValueError(f"the size ceiling must be in [1, K] (a multiple of 1/K), got {ceiling}")
        self.k, self.after, self.period, self.floor, self.ceiling = k, after, period, floor, ceiling
        self.sizes = torch.full((k,), 1.0 / k, dtype=torch.float64)
        self.counts = torch.zeros(k, dtype=torch.float64)
        self.updates = 0  # updates observed
        self.history: list[list[float]] = []  # every estimate made, in order

    @property
    def log_sizes(self) -> torch.Tensor:
        return self.sizes.log().float()

    def observe(self, logits: torch.Tensor) -> None:
        """Count one update's hard assignments; re-estimate every ``period`` updates once past ``after``."""
        self.updates += 1
        if self.updates <= self.after - self.period:
            return  # the first estimate counts only the ``period`` updates just before ``after``
        self.counts += torch.bincount(logits.detach().argmax(1).cpu(), minlength=self.k).double()
        if self.updates >= self.after and (self.updates - self.after) % self.period == 0:
            self.sizes = bounded_sizes(self.counts, self.floor, self.ceiling)
            self.history.append([round(float(s), 4) for s in self.sizes])
            self.counts.zero_()

    def state_dict(self) -> dict:
        return {"sizes": self.sizes.clone(), "counts": self.counts.clone(), "updates": self.updates,
                "history": [list(h) for h in self.history]}

    def load_state_dict(self, state: dict) -> None:
        self.sizes, self.counts = state["sizes"].clone(), state["counts"].clone()
        self.updates, self.history = int(state["updates"]), [list(h) for h in state["history"]]


def bounded_sizes(counts: torch.Tensor, floor: float, ceiling: float) -> torch.Tensor:
    """``counts`` as fractions, each moved into ``[floor / K, ceiling / K]`` (uniform if no counts).

    Clipping and renormalising alternate until both hold (a few rounds; ``floor <= 1 <= ceiling``
    makes the uniform sizes feasible, so they always can)."""
    k = counts.numel()
    total = float(counts.sum())
    if total <= 0:
        return torch.full((k,), 1.0 / k, dtype=torch.float64)
    sizes = counts.double() / total
    low, high = floor / k, ceiling / k
    for _ in range(100):
        sizes = sizes.clamp(low, high)
        sizes = sizes / sizes.sum()
        if bool((sizes >= low - 1e-9).all() and (sizes <= high + 1e-9).all()):
            break
    return sizes
