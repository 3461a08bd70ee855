"""A few labelled concepts: K images per class, the supervision that breaks reasoning shortcuts."""

from __future__ import annotations

import torch

from .mnist import MnistSplit


def labelled_concepts(split: MnistSplit, per_class: int, seed: int = 0,
                      n_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices, labels)`` of ``per_class`` images of each class, drawn with ``seed``, class-major order."""
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    indices = []
    for label in range(n_classes):
        of_class = order[split.labels[order] == label][:per_class]
        if len(of_class) < per_class:
            raise ValueError(f"{split.name} has only {len(of_class)} images of class {label}, fewer than {per_class}")
        indices.append(of_class)
    indices = torch.cat(indices)
    return indices, split.labels[indices]
