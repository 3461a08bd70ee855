"""Digit-pair restrictions under which addition admits reasoning shortcuts.

* ``evenodd``: MNIST-EvenOdd (Marconato et al.): training pairs (0,6), (2,8),
  (4,6), (4,8), (1,5), (3,7), (1,9), (3,9) and their swaps.  The sums {6, 10, 12}
  are also satisfied by 36 maps digit -> value, two of them permutations
  (the identity and evens {0,2,4,6,8} -> {5,7,9,1,3}, odds {1,3,5,7,9} -> {6,8,0,2,4}).
* ``restricted``: pairs (2k, 2k+1) and swaps: every sum 4k+1 fixes the pair
  but not which digit is which, so 2^5 concept maps solve the task.
* ``half``: MNAdd-Half of rsbench: digits 0-4 only (5 concepts), training pairs
  (0,0), (0,1), (2,3), (2,4) and swaps.

The complement of a restriction (among pairs of its concepts) is its
out-of-distribution test set.
"""

from __future__ import annotations

from typing import Callable

import torch

EVEN_ODD = [(0, 6), (2, 8), (4, 6), (4, 8), (1, 5), (3, 7), (1, 9), (3, 9)]
RESTRICTED = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
HALF = [(0, 0), (0, 1), (2, 3), (2, 4)]
PAIR_SETS = {"evenodd": EVEN_ODD, "restricted": RESTRICTED, "half": HALF}
N_CONCEPTS = {"evenodd": 10, "restricted": 10, "half": 5}


def n_concepts(name: str) -> int:
    """How many digit values a restriction's concepts take (``all``: 10)."""
    return 10 if name == "all" else N_CONCEPTS[name]


def allowed_pairs(name: str) -> set[tuple[int, int]]:
    """The pairs of a restriction, with their swaps."""
    if name not in PAIR_SETS:
        raise ValueError(f"unknown pair restriction {name!r}; choose from {', '.join(PAIR_SETS)}")
    pairs = PAIR_SETS[name]
    return set(pairs) | {(b, a) for a, b in pairs}


def pair_filter(name: str, in_distribution: bool = True) -> Callable[[int, int], bool]:
    """``f(a, b)`` accepting the restriction's pairs (or, with ``in_distribution=False``, all other pairs of
    its concepts)."""
    pairs, k = allowed_pairs(name), N_CONCEPTS[name]
    return lambda a, b: a < k and b < k and ((a, b) in pairs) == in_distribution


def accepted(pairs: torch.Tensor, accept: Callable[[int, int], bool]) -> torch.Tensor:
    """``[E]`` mask of the digit pairs ``[E, 2]`` that ``accept(a, b)`` (e.g. a :func:`pair_filter`) keeps."""
    return torch.tensor([bool(accept(int(a), int(b))) for a, b in pairs.tolist()], dtype=torch.bool)
