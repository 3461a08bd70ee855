"""MNIST-addition shortcut splits built the way rsbench builds them (Bortolotti et al., 2024).

rsbench first draws a pool that is uniform over the 100 ordered digit pairs
``(a, b)``: 42,000 training and 12,000 validation examples from MNIST train
(420 and 120 per pair) and 6,000 test examples from MNIST test (60 per pair);
each example's two images are drawn at random, with replacement, from the
images of its digits.  A setting then keeps the pairs it trains on:

* ``evenodd`` (MNAdd-EvenOdd): 16 ordered pairs, 6,720 train / 1,920 validation /
  960 test examples; out of distribution: the other 84 pairs of the test pool (5,040);
* ``half`` (MNAdd-Half): 7 ordered pairs of digits 0-4, 2,940 / 840 / 420;
  out of distribution: the other 18 pairs of digits 0-4 (1,080).

The pool is drawn once with a fixed seed (``POOL_SEED``), as rsbench's is, so
every run of every configuration sees the same examples; a run's own seed
changes only the network and the data order.
"""

from __future__ import annotations

import torch

from .addition import AdditionDataset
from .mnist import MnistSplit
from .shortcuts import accepted, pair_filter

PER_PAIR = {"train": 420, "val": 120, "test": 60}
POOL_SEED = 0
SETTINGS = ("evenodd", "half")


def pair_pool(split: MnistSplit, per_pair: int, seed: int = POOL_SEED) -> torch.Tensor:
    """Image indices ``[100 * per_pair, 2, 1]``: ``per_pair`` examples of every ordered pair, pair-major."""
    generator = torch.Generator().manual_seed(seed)
    by_digit = [torch.nonzero(split.labels == d).flatten() for d in range(10)]
    missing = [d for d, idx in enumerate(by_digit) if len(idx) == 0]
    if missing:
        raise ValueError(f"{split.name} has no images of digit(s) {missing}")
    pairs = []
    for a in range(10):
        for b in range(10):
            first = by_digit[a][torch.randint(len(by_digit[a]), (per_pair,), generator=generator)]
            second = by_digit[b][torch.randint(len(by_digit[b]), (per_pair,), generator=generator)]
            pairs.append(torch.stack([first, second], dim=1))
    return torch.cat(pairs).unsqueeze(2)


def rsbench_split(setting: str, part: str, split: MnistSplit, in_distribution: bool = True) -> AdditionDataset:
    """The ``part`` (``train``, ``val`` or ``test``) of an rsbench setting, drawn from ``split``
    (MNIST train for ``train``/``val``, MNIST test for ``test``); ``in_distribution=False`` gives the
    out-of-distribution pairs (for ``test``)."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown rsbench setting {setting!r}; choose from {', '.join(SETTINGS)}")
    if part not in PER_PAIR:
        raise ValueError(f"unknown part {part!r}; choose from {', '.join(PER_PAIR)}")
    # train and validation are two independent pools from MNIST train, as in rsbench
    pool = pair_pool(split, PER_PAIR[part], POOL_SEED + (1 if part == "val" else 0))
    kept = pool[accepted(split.labels[pool[:, :, 0]], pair_filter(setting, in_distribution))]
    # a fixed shuffle, so that a prefix (--train-size) is a random subset, not the first pairs
    order = torch.randperm(len(kept), generator=torch.Generator().manual_seed(POOL_SEED))
    return AdditionDataset.from_indices(split, kept[order])
