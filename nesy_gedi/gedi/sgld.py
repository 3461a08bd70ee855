"""Stochastic gradient Langevin dynamics with a replay buffer (persistent chains).

One SGLD step on the energy ``E``::

    x <- clamp(x - step_size * dE/dx + noise * eps, low, high),   eps ~ N(0, I)

Chains start from the replay buffer; a fraction ``restart`` of them restarts
from uniform noise, as in JEM (Grathwohl et al.) and GEDI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class SGLDConfig:
    """SGLD settings; step size 10 and noise 0.005 suit images in [-1, 1] (as in IGEBM)."""

    steps: int = 20
    step_size: float = 10.0
    noise: float = 0.005
    buffer_size: int = 10000
    restart: float = 0.05
    low: float = -1.0
    high: float = 1.0


class ReplayBuffer:
    """A fixed-size store of past SGLD samples, initialised with uniform noise."""

    def __init__(self, shape: tuple[int, ...], config: SGLDConfig, device: str | torch.device = "cpu",
                 generator: torch.Generator | None = None) -> None:
        self.config, self.shape, self.device = config, tuple(shape), torch.device(device)
        self.generator = generator
        self.samples = self.noise(config.buffer_size)

    def noise(self, n: int) -> torch.Tensor:
        u = torch.rand((n, *self.shape), generator=self.generator)
        return (self.config.low + (self.config.high - self.config.low) * u).to(self.device)

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` chain states (some restarted from noise) and their buffer slots."""
        slots = torch.randint(len(self.samples), (n,), generator=self.generator).to(self.device)
        x = self.samples[slots].clone()
        restart = (torch.rand(n, generator=self.generator) < self.config.restart).to(self.device)
        if restart.any():
            x[restart] = self.noise(int(restart.sum()))
        return x, slots

    def store(self, x: torch.Tensor, slots: torch.Tensor) -> None:
        self.samples[slots] = x.detach()


class SGLDSampler:
    """Draws approximate samples of ``p(x) ∝ exp(-E(x))`` from persistent chains."""

    def __init__(self, energy: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...],
                 config: SGLDConfig | None = None, device: str | torch.device = "cpu",
                 generator: torch.Generator | None = None) -> None:
        self.energy, self.config = energy, config or SGLDConfig()
        self.buffer = ReplayBuffer(shape, self.config, device, generator)

    def sample(self, n: int) -> torch.Tensor:
        """Run ``steps`` SGLD steps from the buffer; returns detached samples ``[n, *shape]``."""
        c = self.config
        x, slots = self.buffer.draw(n)
        for _ in range(c.steps):
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.energy(x).sum(), x)
            x = (x - c.step_size * grad + c.noise * torch.randn_like(x)).clamp(c.low, c.high)
        x = x.detach()
        self.buffer.store(x, slots)
        return x
