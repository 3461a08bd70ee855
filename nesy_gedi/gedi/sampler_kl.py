"""The sampler's KL term of improved contrastive divergence (Du, Li, Tenenbaum and Mordatch, "Improved Contrastive
Divergence Training of Energy-Based Models", ICML 2021), truncated to one step.

Contrastive divergence leaves out the gradient of the loss through the sampler: the chains' ends depend on the
network's weights ``theta``, and that dependence is what makes a landscape easy or hard to descend.  This term puts
it back for the last step: from the chain's end ``x`` (detached), one SGLD step
``x' = clamp(x - s dE_theta/dx + noise eps)`` is taken with its graph kept, and the loss is the mean energy of ``x'``
under the *same* network with its weights frozen, ``E_stop(theta)(x')``.  Its gradient reaches ``theta`` only
through the step, so it shapes the energy so that Langevin steps lower it, and, unlike the contrastive loss, it has
no floor.  Du et al.'s entropy term (nearest neighbours in a buffer) is left out.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call

from .. import draws
from .sgld import SGLDConfig


def sampler_kl_loss(network: nn.Module, negatives: torch.Tensor, sgld: SGLDConfig,
                    energy: Callable[[torch.Tensor], torch.Tensor],
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """``mean E_frozen(x')`` with ``x'`` one differentiable SGLD step from ``negatives`` on ``energy(network(x))``
    (second-order: the step's gradient is kept, so the loss's gradient reaches the weights through it)."""
    if not isinstance(network, nn.Module):
        raise TypeError(f"the sampler's KL term needs the network as a torch.nn.Module, got {type(network).__name__}")
    x = negatives.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(network(x)).sum(), x, create_graph=True)
    eps = draws.randn(x.shape, generator, x.device, x.dtype)
    stepped = (x - sgld.step_size * grad + sgld.noise * eps).clamp(sgld.low, sgld.high)
    frozen = {name: p.detach() for name, p in network.named_parameters()}
    frozen.update(dict(network.named_buffers()))
    return energy(functional_call(network, frozen, (stepped,))).mean()
