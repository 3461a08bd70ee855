"""The sampler's KL term of improved contrastive divergence (Du, Li, Tenenbaum and Mordatch, "Improved Contrastive
Divergence Training of Energy-Based Models", ICML 2021), truncated to one step.

Contrastive divergence leaves out the gradient of the loss through the sampler: the chains' ends depend on the
network's weights ``theta``, and that dependence is what makes a landscape easy or hard to descend.  This term puts
it back for the last step: from the chain's end ``x`` (detached), one SGLD step
``x' = clamp(x - s dE_theta/dx + noise eps)`` is taken with its graph kept (:func:`sampler_step`), and the loss is
the mean energy of ``x'`` under the *same* network with its weights frozen, ``E_stop(theta)(x')``
(:func:`frozen_energy`).  Its gradient reaches ``theta`` only through the step, so it shapes the energy so that
Langevin steps lower it, and, unlike the contrastive loss, it has no floor.

The KL's other half is the samples' entropy, ``-E_q[log q(x')]``.  :func:`nearest_neighbour_entropy` estimates it,
up to constants, from the distance of each stepped sample to its nearest other one in the batch (Du et al. measure
it against a buffer of past samples); maximising it through the step spreads the samples out.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call

from .. import draws
from .sgld import SGLDConfig


def sampler_step(network: nn.Module, negatives: torch.Tensor, sgld: SGLDConfig,
                 energy: Callable[[torch.Tensor], torch.Tensor],
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """One SGLD step on ``energy(network(x))`` from the detached ``negatives``, with its graph kept (second order:
    the step's gradient in the weights is part of the result's graph)."""
    if not isinstance(network, nn.Module):
        raise TypeError(f"the sampler's KL term needs the network as a torch.nn.Module, got {type(network).__name__}")
    x = negatives.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(network(x)).sum(), x, create_graph=True)
    eps = draws.randn(x.shape, generator, x.device, x.dtype)
    return (x - sgld.step_size * grad + sgld.noise * eps).clamp(sgld.low, sgld.high)


def frozen_energy(network: nn.Module, x: torch.Tensor,
                  energy: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``energy`` of ``x`` under ``network`` with its weights detached: gradients reach ``x`` only."""
    frozen = {name: p.detach() for name, p in network.named_parameters()}
    frozen.update(dict(network.named_buffers()))
    return energy(functional_call(network, frozen, (x,)))


def nearest_neighbour_entropy(samples: torch.Tensor) -> torch.Tensor:
    """The samples' entropy up to constants (Kozachenko-Leonenko, one neighbour): the mean log distance of each
    sample to its nearest other one, the others detached.  Needs at least two samples."""
    if samples.shape[0] < 2:
        raise ValueError(f"the samples' entropy needs at least two samples, got {samples.shape[0]}")
    flat = samples.flatten(1)
    squared = (flat.unsqueeze(1) - flat.detach().unsqueeze(0)).pow(2).sum(-1)
    self_pairs = torch.eye(flat.shape[0], dtype=torch.bool, device=flat.device)
    nearest = torch.where(self_pairs, torch.full_like(squared, float("inf")), squared).min(1).values
    return 0.5 * nearest.clamp_min(1e-12).log().mean()
