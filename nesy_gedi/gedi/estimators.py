"""How GEDI's generative term is trained: estimators of the likelihood gradient of ``p(x) ∝ exp(-E(x))`` with
``E(x) = -logsumexp f(x)``, the same network's energy whatever the estimator.

* ``sgld`` (the default, as in the GEDI paper and JEM): contrastive divergence,
  ``mean E(data) - mean E(x')`` with ``x'`` from SGLD chains (:mod:`.sgld`, :class:`~.objective.GEDIObjective`).
* ``dsm``: denoising score matching at several noise levels, with no chain.  For ``x~ = x + sigma * eps``,
  ``eps ~ N(0, I)`` and ``sigma`` log-uniform in ``[sigma_min, sigma_max]``, the model's score at noise level
  ``sigma`` is ``-grad E(x~) / sigma`` (the noise-conditional energy ``E / sigma``, as NCSNv2 scales its score), and
  the ``sigma^2``-weighted DSM loss is ``mean || grad_x~ E(x~) - eps ||^2 / D`` (``D`` pixels; 1 at ``grad E = 0``).
  Its minimiser gives ``-E(x) / sigma_min`` as the log-density of the data smoothed at ``sigma_min``; the energy
  ranks inputs as ``E`` does (OOD scores unchanged) and the classifier ``softmax f(x)`` does not see the scale.
  Samples come from annealed Langevin dynamics over the same levels (:func:`annealed_langevin`).
* ``recovery``: diffusion recovery likelihood (Gao et al., 2021) with the one network's energy.  Each image is
  noised at one of ``recovery_levels`` levels ``sigma`` (geometric in ``[sigma_min, sigma_max]``) and a short chain
  of ``recovery_steps`` SGLD steps on ``E`` (the SGLD step size and noise) starts from the noised image; its end is
  the negative of the contrastive loss ``mean E(data) - mean E(negatives)``, with SGLD's energy L2 terms.  No
  replay buffer and no chain from noise.  Gao et al. condition the energy on the noise level and tether each chain
  to its noised image with ``||y - x~||^2 / (2 sigma^2)``; in their parametrisation (energy scaled by the squared
  step) the tether's pull and the chain's noise vanish as the step factor ``b`` goes to 0, and here, with one
  unconditioned energy, both are left out.  Fresh samples come from SGLD chains from noise, as for ``sgld``.
* ``amortised``: cooperative learning (:mod:`.proposal`): a small generator proposes the negatives, ``--sgld-steps``
  SGLD steps on ``E`` revise them, and the generator learns to propose the revised images.  No replay buffer and
  no chain from noise; fresh samples are the generator's proposals revised by the same short chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import draws
from .proposal import Proposal, proposal_samples
from .sgld import SGLDConfig, langevin, network_energy, sample_from_noise

ESTIMATORS = ("sgld", "dsm", "recovery", "amortised")


@dataclass
class EstimatorConfig:
    """Which estimator trains the generative term, and the noise levels of ``dsm`` and ``recovery``.

    Each field's metadata names its command-line flag (:mod:`nesy_gedi.recipes.flags`)."""

    name: str = field(default="sgld", metadata={"flag": "--gen-estimator", "choices": ESTIMATORS,
                                                "help": "how the generative term is trained: sgld (contrastive "
                                                        "divergence with SGLD chains), dsm (denoising score "
                                                        "matching at several noise levels, no chain), recovery "
                                                        "(short chains from noised data) or amortised (a "
                                                        "generator's proposals revised by short chains)"})
    sigma_min: float = field(default=0.02, metadata={"flag": "--dsm-sigma-min", "kind": "positive",
                                                     "help": "smallest noise level of dsm (images in [-1, 1])"})
    sigma_max: float = field(default=1.0, metadata={"flag": "--dsm-sigma-max", "kind": "positive",
                                                    "help": "largest noise level of dsm"})
    recovery_levels: int = field(default=6, metadata={"flag": "--recovery-levels",
                                                      "help": "noise levels of recovery (between --dsm-sigma-min "
                                                              "and --dsm-sigma-max)"})
    recovery_steps: int = field(default=10, metadata={"flag": "--recovery-steps",
                                                      "help": "SGLD steps of each recovery chain"})
    proposal_latent: int = field(default=64, metadata={"flag": "--proposal-latent",
                                                       "help": "latent dimensions of amortised's generator"})

    def __post_init__(self) -> None:
        if self.name not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.name!r}; choose from {', '.join(ESTIMATORS)}")
        if not 0 < self.sigma_min <= self.sigma_max:
            raise ValueError(f"dsm needs 0 < sigma_min <= sigma_max, got {self.sigma_min} and {self.sigma_max}")
        if self.recovery_levels < 1 or self.recovery_steps < 1:
            raise ValueError(f"recovery needs at least one level and one step, got {self.recovery_levels} and "
                             f"{self.recovery_steps}")
        if self.proposal_latent < 1:
            raise ValueError(f"amortised needs a latent of at least 1 dimension, got {self.proposal_latent}")

    def sigmas(self, levels: int, device: str | torch.device | None = None) -> torch.Tensor:
        """``levels`` noise levels from ``sigma_max`` down to ``sigma_min``, geometrically spaced: level ``l`` is
        ``sigma_max (sigma_min / sigma_max)^(l / (levels - 1))``; one level is ``sigma_min``."""
        if levels == 1:
            return torch.tensor([self.sigma_min], device=device)
        fraction = torch.arange(levels, device=device, dtype=torch.float32) / (levels - 1)
        return self.sigma_max * (self.sigma_min / self.sigma_max) ** fraction


def dsm_loss(network: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, config: EstimatorConfig,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss, {"noisy_energy": mean E(x~)})`` of multi-level denoising score matching on ``images`` ``[B, ...]``
    (see the module's docstring); the loss has gradients for the network's parameters (double backprop)."""
    n, device = images.shape[0], images.device
    u = draws.rand(n, generator, device)
    sigma = (config.sigma_min * (config.sigma_max / config.sigma_min) ** u).view(n, *[1] * (images.dim() - 1))
    eps = draws.randn(images.shape, generator, device)
    noisy = (images.detach() + sigma * eps).requires_grad_(True)
    e = network_energy(network, noisy)
    (grad,) = torch.autograd.grad(e.sum(), noisy, create_graph=True)
    loss = (grad - eps).pow(2).flatten(1).mean(1).mean()
    return loss, {"noisy_energy": e.detach().mean()}


def recovery_negatives(network: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                       config: EstimatorConfig, sgld: SGLDConfig,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """The negatives of ``recovery`` for ``images`` ``[B, ...]``: each image noised at one of the levels, then
    ``recovery_steps`` SGLD steps on ``E`` (detached; see the module's docstring)."""
    n, device, levels = images.shape[0], images.device, config.recovery_levels
    level = (draws.rand(n, generator, device) * levels).floor().clamp_max(levels - 1).long()
    sigma = config.sigmas(levels, device)[level]
    eps = draws.randn(images.shape, generator, device, images.dtype)
    start = (images.detach() + sigma.view(n, *[1] * (images.dim() - 1)).to(images.dtype) * eps).clamp(sgld.low,
                                                                                                       sgld.high)
    return langevin(lambda x: network_energy(network, x), start, sgld, config.recovery_steps, generator)


def annealed_langevin(network: Callable[[torch.Tensor], torch.Tensor], n: int, shape: tuple[int, ...],
                      config: EstimatorConfig, generator: torch.Generator | None = None,
                      device: str | torch.device = "cpu", cluster: int | None = None, levels: int = 10,
                      steps: int = 10, step: float = 1e-4, low: float = -1.0, high: float = 1.0,
                      batch_size: int = 500) -> torch.Tensor:
    """``n`` samples of a ``dsm``-trained energy from uniform noise: at each of ``levels`` noise levels ``sigma``
    (largest first), ``steps`` Langevin steps on ``E / sigma`` with step ``step * (sigma / sigma_min)^2``, then one
    denoising step at ``sigma_min``. ``cluster=y`` samples the cluster-conditional ``E(x, y) = -f(x)[y]``."""
    sigmas = config.sigmas(levels).tolist()
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        x = (low + (high - low) * draws.rand((m, *shape), generator)).to(device)
        for sigma in sigmas:
            alpha = step * (sigma / config.sigma_min) ** 2
            for _ in range(steps):
                x = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(network_energy(network, x, cluster).sum(), x)
                noise = draws.randn(x.shape, generator, device)
                x = (x - 0.5 * alpha * grad / sigma + math.sqrt(alpha) * noise).clamp(low, high)
        x = x.detach().requires_grad_(True)  # denoise: the expected clean image at the smallest level
        (grad,) = torch.autograd.grad(network_energy(network, x, cluster).sum(), x)
        out.append((x - config.sigma_min * grad).clamp(low, high).detach())
    return torch.cat(out) if out else torch.zeros((0, *shape), device=device)


def fresh_samples(network: Callable[[torch.Tensor], torch.Tensor], n: int, shape: tuple[int, ...],
                  estimator: EstimatorConfig, sgld: SGLDConfig, steps: int, generator: torch.Generator | None = None,
                  device: str | torch.device = "cpu", cluster: int | None = None,
                  proposal: Proposal | None = None) -> torch.Tensor:
    """``n`` fresh samples with the sampler that matches how the model was trained: ``steps`` SGLD steps from
    uniform noise (``sgld``, ``recovery``), :func:`annealed_langevin` (``dsm``), or ``steps`` SGLD steps from the
    ``proposal``'s images (``amortised``); ``cluster=y``: of ``E(x, y) = -f(x)[y]``."""
    if estimator.name == "amortised":
        if proposal is None:
            raise ValueError("samples of an amortised model need its proposal network (proposal.pt of the run)")
        return proposal_samples(network, proposal, n, sgld, steps, generator, cluster)
    if estimator.name == "dsm":
        return annealed_langevin(network, n, shape, estimator, generator, device, cluster)
    return sample_from_noise(network, n, shape, sgld, steps, generator, device, cluster=cluster)


def fresh_conditional_samples(network: Callable[[torch.Tensor], torch.Tensor], per_cluster: int, n_clusters: int,
                              shape: tuple[int, ...], estimator: EstimatorConfig, sgld: SGLDConfig, steps: int,
                              generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                              proposal: Proposal | None = None) -> torch.Tensor:
    """``[n_clusters * per_cluster, *shape]`` fresh samples, cluster by cluster (rows of a grid)."""
    return torch.cat([fresh_samples(network, per_cluster, shape, estimator, sgld, steps, generator, device, k, proposal)
                      for k in range(n_clusters)])
