"""The amortised sampler of GEDI's ``amortised`` estimator: cooperative learning (Xie et al., "Cooperative Learning
of Energy-Based Model and Latent Variable Model via MCMC Teaching", AAAI 2018).

A small generator ``g(z)``, ``z ~ N(0, I)``, proposes images; a short SGLD chain on the network's energy ``E``
revises each proposal, and the revised images are the negatives of the contrastive loss.  The generator learns
to propose where the chains end: its loss is ``mean ||g(z) - x'||^2`` over pixels, with ``x'`` the revised image
(detached), so its gradient reaches only the generator and the energy's only the network.  No replay buffer and
no long chain from noise: fresh samples are ``g(z)`` revised by the same short chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import draws
from ..errors import DataError
from ..train.checkpoint import network_state, save_network
from .sgld import SGLDConfig, langevin, network_energy

PROPOSAL_ARCH = "gedi_proposal"  # the architecture name in a saved proposal's file


class Proposal(nn.Module):
    """``z [n, latent] -> images [n, C, H, W]`` in ``[low, high]``: a linear layer to ``128 x H/4 x W/4``, then two
    stride-2 transposed convolutions (``H`` and ``W`` divisible by 4)."""

    def __init__(self, latent: int = 64, shape: tuple[int, ...] = (1, 28, 28), low: float = -1.0,
                 high: float = 1.0) -> None:
        super().__init__()
        if len(shape) != 3 or shape[1] % 4 or shape[2] % 4:
            raise ValueError(f"the amortised sampler makes images [C, H, W] with H and W divisible by 4, got {shape}")
        if latent < 1:
            raise ValueError(f"the amortised sampler needs a latent of at least 1 dimension, got {latent}")
        channels, height, width = shape
        self.latent, self.shape, self.low, self.high = latent, tuple(shape), low, high
        self.grid = (128, height // 4, width // 4)
        self.project = nn.Sequential(nn.Linear(latent, 128 * self.grid[1] * self.grid[2]), nn.ReLU())
        self.decode = nn.Sequential(nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),
                                    nn.ConvTranspose2d(64, channels, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        unit = self.decode(self.project(z).view(-1, *self.grid))  # in [-1, 1]
        return self.low + (self.high - self.low) * (unit + 1) / 2

    def propose(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` proposals ``g(z)`` (with gradients for the generator)."""
        device = next(self.parameters()).device
        return self(draws.randn((n, self.latent), generator, device))


def cooperative_negatives(energy: Callable[[torch.Tensor], torch.Tensor], proposal: Proposal, n: int,
                          sgld: SGLDConfig, steps: int, generator: torch.Generator | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(negatives, teaching loss)``: ``n`` proposals revised by ``steps`` SGLD steps on ``energy`` (detached), and
    the generator's loss ``mean ||g(z) - negatives||^2``."""
    proposed = proposal.propose(n, generator)
    revised = langevin(energy, proposed.detach(), sgld, steps, generator)
    return revised, (proposed - revised).pow(2).mean()


def proposal_samples(network: Callable[[torch.Tensor], torch.Tensor], proposal: Proposal, n: int, sgld: SGLDConfig,
                     steps: int, generator: torch.Generator | None = None, cluster: int | None = None,
                     batch_size: int = 500) -> torch.Tensor:
    """``n`` fresh samples: proposals revised by ``steps`` SGLD steps on ``E(x) = -logsumexp f(x)``, or on the
    cluster-conditional ``E(x, y) = -f(x)[y]`` with ``cluster=y``."""
    def energy(x: torch.Tensor) -> torch.Tensor:
        return network_energy(network, x, cluster)

    out = []
    for start in range(0, n, batch_size):
        with torch.no_grad():
            proposed = proposal.propose(min(batch_size, n - start), generator)
        out.append(langevin(energy, proposed, sgld, steps, generator))
    return torch.cat(out) if out else torch.zeros((0, *proposal.shape), device=next(proposal.parameters()).device)


def save_proposal(path: str | Path, proposal: Proposal, kind: str | None = None) -> None:
    """The generator's weights with its latent size, image shape and range (a network file, atomic)."""
    save_network(path, proposal, PROPOSAL_ARCH, kind, latent=proposal.latent, shape=list(proposal.shape),
                 low=proposal.low, high=proposal.high)


def load_proposal(path: str | Path, device: str | torch.device = "cpu") -> Proposal:
    """The generator saved by :func:`save_proposal`; :class:`~nesy_gedi.errors.DataError` for any other file."""
    weights, meta = network_state(Path(path), PROPOSAL_ARCH, device)
    if meta.get("arch") != PROPOSAL_ARCH:
        raise DataError(f"{path} holds no amortised sampler (a proposal.pt written by nesy-gedi pretrain)")
    proposal = Proposal(int(meta["latent"]), tuple(meta["shape"]), float(meta["low"]), float(meta["high"]))
    try:
        proposal.load_state_dict(weights)
    except RuntimeError as exc:
        raise DataError(f"{path}: the amortised sampler's weights do not fit ({str(exc).splitlines()[0]})") from None
    return proposal.to(device).eval()
