"""Stochastic gradient Langevin dynamics with a replay buffer (persistent chains).

One SGLD step on the energy ``E``::

    x <- clamp(x - step_size * dE/dx + noise * eps, low, high),   eps ~ N(0, I)

Chains start from the replay buffer; a fraction ``restart`` of them restarts
from uniform noise, as in JEM (Grathwohl et al.) and GEDI.  With ``until_data = M > 0`` (experimental), a chain
still above the data batch's mean energy after ``steps`` steps goes on until it is not, for at most ``M`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import draws


@dataclass
class SGLDConfig:
    """SGLD settings; step size 10 and noise 0.005 suit images in [-1, 1] (as in IGEBM).

    Each field's metadata names its command-line flag (:mod:`nesy_gedi.recipes.flags`)."""

    steps: int = field(default=10, metadata={"flag": "--sgld-steps", "help": "SGLD steps per training chain"})
    step_size: float = field(default=10.0, metadata={"flag": "--sgld-step-size", "help": "SGLD step size"})
    noise: float = field(default=0.005, metadata={"flag": "--sgld-noise", "help": "SGLD noise scale",
                                                  "kind": "nonnegative"})
    buffer_size: int = field(default=10000, metadata={"flag": "--sgld-buffer-size",
                                                      "help": "replay buffer of persistent chains"})
    restart: float = field(default=0.05, metadata={"flag": "--sgld-restart", "kind": "probability",
                                                   "help": "fraction of chains restarted from noise (1: short-run)"})
    until_data: int = field(default=0, metadata={
        "flag": "--sgld-until-data", "kind": "count", "experimental": True, "metavar": "M",
        "help": "> 0: past --sgld-steps, each training chain goes on until its energy is at most the data batch's "
                "mean energy, for at most M steps in all (reads energies back every step: eager only)"})
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
        u = draws.rand((n, *self.shape), self.generator)
        return (self.config.low + (self.config.high - self.config.low) * u).to(self.device)

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` chain states (some restarted from noise) and their distinct buffer slots.

        Distinct slots keep :meth:`store` deterministic (a scatter to repeated indices is not).  With a generator
        on the device every draw is made there and no value is read back (a captured step can contain it).
        """
        if n > len(self.samples):
            raise ValueError(f"cannot draw {n} chains from a replay buffer of {len(self.samples)}; "
                             "use a buffer at least as large as the batch")
        slots = draws.randperm(len(self.samples), self.generator)[:n].to(self.device)
        x = self.samples[slots].clone()
        restart = (draws.rand(n, self.generator) < self.config.restart).to(self.device)
        if draws.on_device(self.generator):  # fixed shapes, no sync: noise for every chain, kept where restarted
            return torch.where(restart.view(-1, *[1] * len(self.shape)), self.noise(n), x), slots
        if restart.any():
            x[restart] = self.noise(int(restart.sum()))
        return x, slots

    def store(self, x: torch.Tensor, slots: torch.Tensor) -> None:
        self.samples[slots] = x.detach()

    def state_dict(self) -> dict:
        return {"samples": self.samples}

    def load_state_dict(self, state: dict) -> None:
        samples = state["samples"]
        if tuple(samples.shape[1:]) != self.shape:
            raise ValueError(f"replay buffer holds samples of shape {tuple(samples.shape[1:])}, expected {self.shape}")
        self.samples = samples.to(self.device)


class SGLDSampler:
    """Draws approximate samples of ``p(x) ∝ exp(-E(x))`` from persistent chains."""

    def __init__(self, energy: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...],
                 config: SGLDConfig | None = None, device: str | torch.device = "cpu",
                 generator: torch.Generator | None = None) -> None:
        self.energy, self.config = energy, config or SGLDConfig()
        self.buffer = ReplayBuffer(shape, self.config, device, generator)
        self.last_steps = torch.zeros((), device=device)

    def sample(self, n: int, target: torch.Tensor | None = None) -> torch.Tensor:
        """Run ``steps`` SGLD steps from the buffer; returns detached samples ``[n, *shape]``.  With
        ``config.until_data > 0`` and a ``target`` energy (the data's), chains above it go on
        (:func:`langevin_until`), and :attr:`last_steps` is their mean number of steps."""
        x, slots = self.buffer.draw(n)
        # a device generator drives the chains' noise too (runs side by side in one process stay independent)
        noise = self.buffer.generator if draws.on_device(self.buffer.generator) else None
        if self.config.until_data > 0 and target is not None:
            x, taken = langevin_until(self.energy, x, self.config, target, self.config.until_data, generator=noise)
            self.last_steps = taken.float().mean()
        else:
            x = langevin(self.energy, x, self.config, generator=noise)
        self.buffer.store(x, slots)
        return x


def langevin(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, config: SGLDConfig,
             steps: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Run SGLD from ``x`` (no buffer): ``steps`` (default ``config.steps``) steps on ``energy``; the noise comes
    from ``generator`` if given, else from torch's global generator of ``x``'s device."""
    for _ in range(config.steps if steps is None else steps):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
        eps = torch.randn_like(x) if generator is None else draws.randn(x.shape, generator, x.device, x.dtype)
        x = (x - config.step_size * grad + config.noise * eps).clamp(config.low, config.high)
    return x.detach()


def langevin_until(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, config: SGLDConfig,
                   target: torch.Tensor | float, max_steps: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """SGLD from ``x`` for ``config.steps`` steps, then on for each chain whose energy is above ``target`` until it
    is not, for at most ``max_steps`` steps in all (at least ``config.steps``); returns the chains' ends and the
    steps each took.  A chain's energy is read before each step past ``config.steps``, so this syncs with the host
    and cannot be captured."""
    if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
        raise RuntimeError("--sgld-until-data reads the chains' energies back every step and cannot run in a "
                           "captured update; use --no-compile")
    x = x.detach().clone()
    taken = torch.zeros(len(x), dtype=torch.long, device=x.device)
    active = torch.arange(len(x), device=x.device)
    target = torch.as_tensor(target, dtype=x.dtype, device=x.device).detach()
    for step in range(max(max_steps, config.steps)):
        chains = x[active].requires_grad_(True)
        e = energy(chains)
        (grad,) = torch.autograd.grad(e.sum(), chains)
        if step >= config.steps:  # past the fixed steps, only chains still above the target move
            above = e.detach() > target
            if not bool(above.any()):
                break
            active, chains, grad = active[above], chains[above], grad[above]
        eps = (torch.randn_like(chains) if generator is None
               else draws.randn(chains.shape, generator, chains.device, chains.dtype))
        x[active] = (chains.detach() - config.step_size * grad + config.noise * eps).clamp(config.low, config.high)
        taken[active] += 1
    return x.detach(), taken


def network_energy(network: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                   cluster: int | None = None) -> torch.Tensor:
    """``E(x) = -logsumexp f(x)`` of the network's logits, or the cluster-conditional ``E(x, y) = -f(x)[y]`` with
    ``cluster=y``."""
    logits = network(x)
    return -torch.logsumexp(logits, 1) if cluster is None else -logits[:, cluster]


def sample_from_noise(network: Callable[[torch.Tensor], torch.Tensor], n: int, shape: tuple[int, ...],
                      config: SGLDConfig, steps: int, generator: torch.Generator | None = None,
                      device: str | torch.device = "cpu", cluster: int | None = None,
                      batch_size: int = 500) -> torch.Tensor:
    """``n`` fresh samples: SGLD chains started from uniform noise, not from a replay buffer.

    ``cluster=None`` samples ``E(x) = -logsumexp f(x)``; ``cluster=y`` samples the
    cluster-conditional ``E(x, y) = -f(x)[y]``.  The starts and the chains' noise both come from ``generator``
    (torch's global one if None), so a seeded generator gives the same samples whatever else has drawn.
    """
    def energy(x: torch.Tensor) -> torch.Tensor:
        return network_energy(network, x, cluster)

    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        u = draws.rand((m, *shape), generator, device)
        out.append(langevin(energy, config.low + (config.high - config.low) * u, config, steps, generator))
    return torch.cat(out) if out else torch.zeros((0, *shape), device=device)


def fresh_chain_steps(sgld_steps: int, restart: float, estimator: str = "sgld", default: int = 200) -> int:
    """The length of a fresh chain for a model: its training ``sgld_steps`` when every training chain started
    afresh (short-run training, ``restart >= 1``, or the ``amortised`` estimator's chains from its proposals), else
    ``default``."""
    return int(sgld_steps) if restart >= 1 or estimator == "amortised" else default
