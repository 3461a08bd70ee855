"""GEDI's term weights over training, as a function of the update: the recipes pass the weights of each step to
the objective instead of changing its weights in place.

* the generative term is off before ``gen_after`` updates, then ramps linearly to its weight over ``gen_warmup``;
* the prior has weight ``early_prior`` (if set) before ``early_until`` updates, then its own;
* the clustering temperature is the weights' own before ``late_after`` updates, then ``late_temperature`` (if set).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..train.warmup import linear_warmup
from .objective import GEDIWeights


@dataclass(frozen=True)
class WeightSchedule:
    weights: GEDIWeights
    gen_after: int = 0
    gen_warmup: int = 0
    early_prior: float | None = None
    early_until: int = 0
    late_temperature: float | None = None
    late_after: int = 0

    def __post_init__(self) -> None:
        if self.late_temperature is not None and self.late_temperature <= 0:
            raise ValueError(f"the late clustering temperature must be positive, got {self.late_temperature}")

    def at(self, step: int) -> GEDIWeights:
        """The weights at update ``step`` (0-based)."""
        w = self.weights
        gen = 0.0 if step < self.gen_after else w.gen * linear_warmup(step - self.gen_after, self.gen_warmup)
        prior = self.early_prior if self.early_prior is not None and step < self.early_until else w.prior
        late = self.late_temperature is not None and step >= self.late_after
        return replace(w, gen=gen, prior=prior, temperature=self.late_temperature if late else w.temperature)
