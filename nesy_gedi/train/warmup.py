"""A linear warm-up factor, shared by every ramp of the training recipes (augmentation, generative weight)."""

from __future__ import annotations


def linear_warmup(step: int, warmup: int) -> float:
    """``(step + 1) / warmup`` during the first ``warmup`` updates (``step`` 0-based), then 1; 1 if ``warmup <= 0``."""
    return 1.0 if warmup <= 0 or step >= warmup else (step + 1) / warmup
