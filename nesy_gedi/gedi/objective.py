"""The GEDI objective on a network's logits f(x).

With ``p(y|x) = softmax f(x)`` and ``E(x) = -logsumexp_y f(x)_y``:

* generative (contrastive divergence):
  ``L_gen = mean_{x ~ data} E(x) - mean_{x' ~ SGLD} E(x')``
  (+ ``energy_l2 * mean(E(x)^2 + E(x')^2)`` to keep energies bounded; a strong
  penalty pins E near 0, and then the cheapest way to lower E(data) is a
  *uniform* p(y|x), since logsumexp of equal logits exceeds their max by log K); ``sample_l2``, if set,
  replaces ``energy_l2`` on the samples' ``E(x')^2``: with 0 the pull on the samples' energy is
  ``-1`` everywhere and never vanishes, while the data's energy stays anchored at ``-1/(2 energy_l2)``
  (with the same penalty on both, chains that stall at ``E = +1/(2 energy_l2)`` get no gradient);
  with the ``dsm`` estimator, ``L_gen`` is denoising score matching instead; with ``recovery``, ``x'`` are short
  chains from the noised data instead of SGLD from the replay buffer; with ``amortised``, short chains from a
  generator's proposals, and the total gains the generator's own loss (:mod:`.estimators`, :mod:`.proposal`);
* invariance between two augmented views ``x1, x2`` of the same images, with
  gradients through both (no stop-gradient, no momentum encoder):
  ``L_inv = -1/2 mean_b sum_y [p(y|x1) log p(y|x2) + p(y|x2) log p(y|x1)]``;
* uniformity prior on the batch-mean assignment ``pbar = mean_b p(y|x_b)`` of each view
  (so that neither view can balance the other):
  ``L_prior = 1/2 sum_views KL(U || pbar) = sum_y 1/K log((1/K) / pbar_y)``.

With ``prior_floor = f > 0`` the prior becomes a floor on every cluster's size instead:
``L_prior = 1/K sum_y max(0, log((f/K) / pbar_y))`` is zero while every cluster holds at
least a fraction ``f/K`` of the batch, so clusters of unequal sizes (a dataset whose classes
are not balanced) cost nothing, while emptying a cluster still costs without bound.

With ``sizes`` (a :class:`~.cluster_sizes.ClusterSizes`), the prior is ``KL(pi || pbar)`` to estimated,
unequal cluster sizes ``pi`` instead of ``U`` (see :mod:`.cluster_sizes`).

With ``temperature = T``, invariance and prior see ``p(y|x) = softmax(f(x) / T)`` (the authors'
losses divide projector outputs by 0.1), while the energy stays ``-logsumexp f(x)``.

With ``sampler_kl > 0``, the total gains the sampler's KL term of improved contrastive divergence
(:mod:`.sampler_kl`), computed on the same negatives; with ``sampler_entropy > 0`` as well, minus that weight
times the stepped negatives' nearest-neighbour entropy (the KL's other half).

With ``sample_prior > 0``, the total gains that weight times the uniformity prior on the negatives' batch-mean
assignment, ``KL(U || mean_b softmax(f(x'_b) / T))``: the chains' clusters are balanced as the data's are.  Its
gradient reaches the weights through the negatives' logits only (not through the chains).

The total is ``gen * L_gen + invariance * L_inv + prior * L_prior`` (+ the terms above).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..train.distributed import Distributed
from .cluster_sizes import ClusterSizes
from .estimators import EstimatorConfig, dsm_loss, recovery_negatives
from .proposal import Proposal, cooperative_negatives
from .sampler_kl import frozen_energy, nearest_neighbour_entropy, sampler_step
from .sgld import SGLDConfig, SGLDSampler


def energy(logits: torch.Tensor) -> torch.Tensor:
    """``E(x) = -logsumexp_y f(x)_y`` for logits ``[batch, K]``."""
    return -torch.logsumexp(logits, dim=1)


def invariance_loss(logits1: torch.Tensor, logits2: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy between the assignments of two views (both get gradients)."""
    log_p1, log_p2 = logits1.log_softmax(1), logits2.log_softmax(1)
    return -0.5 * ((log_p1.exp() * log_p2).sum(1) + (log_p2.exp() * log_p1).sum(1)).mean()


def log_batch_mean(logits: torch.Tensor, ranks: Distributed | None = None) -> torch.Tensor:
    """``log pbar``, the log of the batch-mean assignment ``pbar = mean_b p(y|x_b)``, for logits ``[batch, K]``;
    with ``ranks`` (several processes), the mean over the global batch, differentiable through every rank's part."""
    log_p = logits.log_softmax(1)
    if ranks is None or not ranks.active:
        return torch.logsumexp(log_p, dim=0) - math.log(logits.shape[0])
    count = log_p.new_tensor([float(logits.shape[0])])
    parts = ranks.gather(torch.cat([torch.logsumexp(log_p, dim=0), count]))  # [ranks, K + 1]
    return torch.logsumexp(parts[:, :-1], dim=0) - parts[:, -1].detach().sum().log()  # no host sync


def uniformity_loss(logits: torch.Tensor, ranks: Distributed | None = None) -> torch.Tensor:
    """``KL(uniform || batch-mean p(y|x))``: zero iff every cluster is used equally often."""
    return -math.log(logits.shape[1]) - log_batch_mean(logits, ranks).mean()


def floor_loss(logits: torch.Tensor, floor: float, ranks: Distributed | None = None) -> torch.Tensor:
    """``1/K sum_y max(0, log((floor/K) / pbar_y))``: zero iff every cluster's batch-mean mass is at least ``floor/K``."""
    if not 0 < floor <= 1:
        raise ValueError(f"the prior floor must be in (0, 1] (a fraction of the uniform cluster size), got {floor}")
    return (math.log(floor / logits.shape[1]) - log_batch_mean(logits, ranks)).clamp(min=0).mean()


def size_prior_loss(logits: torch.Tensor, log_sizes: torch.Tensor, ranks: Distributed | None = None) -> torch.Tensor:
    """``KL(pi || pbar)`` for target sizes ``pi = exp(log_sizes)`` and the batch-mean assignment ``pbar``
    of ``logits [batch, K]``; with ``pi`` uniform it equals :func:`uniformity_loss`."""
    log_sizes = log_sizes.to(logits)
    return (log_sizes.exp() * (log_sizes - log_batch_mean(logits, ranks))).sum()


def prior_loss(logits: torch.Tensor, floor: float = 0.0, log_sizes: torch.Tensor | None = None,
               ranks: Distributed | None = None) -> torch.Tensor:
    """The prior on the batch-mean assignment: :func:`size_prior_loss` to ``log_sizes`` if given, else
    :func:`floor_loss` if ``floor > 0``, else :func:`uniformity_loss` (over the global batch with ``ranks``)."""
    if log_sizes is not None:
        return size_prior_loss(logits, log_sizes, ranks)
    return floor_loss(logits, floor, ranks) if floor > 0 else uniformity_loss(logits, ranks)


def _flag(name: str, help: str, experimental: bool = False, **extra) -> dict:
    """Field metadata: the command-line flag of a setting (see :mod:`nesy_gedi.recipes.flags`)."""
    return {"flag": name, "help": help, "experimental": experimental, **extra}


@dataclass
class GEDIWeights:
    """Term weights; the defaults are those tuned for MNIST (``nesy-gedi pretrain``)."""

    gen: float = field(default=0.1, metadata=_flag("--gen-weight", "weight of the generative term"))
    invariance: float = field(default=1.0, metadata=_flag("--invariance-weight", "weight of the invariance term"))
    prior: float = field(default=5.0, metadata=_flag("--prior-weight", "weight of the uniformity prior"))
    energy_l2: float = field(default=0.1, metadata=_flag(
        "--energy-l2", "penalty on the squared energies of data and samples"))
    prior_floor: float = field(default=0.0, metadata=_flag(
        "--prior-floor", "> 0: the prior only keeps each cluster above F/K of a batch (see floor_loss); 0: uniform",
        experimental=True, metavar="F", kind="probability"))
    sample_l2: float | None = field(default=None, metadata=_flag(
        "--sample-energy-l2", "a different penalty on the samples' squared energy (default: --energy-l2)",
        experimental=True, metavar="W"))
    temperature: float = field(default=1.0, metadata=_flag(
        "--cluster-temperature", "invariance and prior see softmax(f(x) / T); the energy does not",
        experimental=True, metavar="T", kind="positive"))
    sampler_kl: float = field(default=0.0, metadata=_flag(
        "--sampler-kl-weight", "weight of the sampler's KL term (improved contrastive divergence: one SGLD step "
        "from the negatives, kept differentiable, scored with frozen weights); on with the generative term",
        experimental=True, metavar="W", kind="nonnegative"))
    sampler_entropy: float = field(default=0.0, metadata=_flag(
        "--sampler-entropy-weight", "weight of the sampler's entropy (the KL term's other half: the log distance of "
        "each stepped negative to its nearest other one); needs --sampler-kl-weight",
        experimental=True, metavar="W", kind="nonnegative"))
    sample_prior: float = field(default=0.0, metadata=_flag(
        "--sample-prior-weight", "weight of the uniformity prior on the negatives' clusters (the chains' ends "
        "assigned evenly, as the data are); on with the generative term",
        experimental=True, metavar="W", kind="nonnegative"))


@dataclass
class GEDITerms:
    total: torch.Tensor
    gen: torch.Tensor
    invariance: torch.Tensor
    prior: torch.Tensor
    energies: dict[str, torch.Tensor] = field(default_factory=dict)  # mean data and sample energy, when gen > 0

    def tensors(self) -> dict[str, torch.Tensor]:
        """The terms as detached tensors (nothing read back to the host)."""
        tensors = {**{k: getattr(self, k) for k in ("total", "gen", "invariance", "prior")}, **self.energies}
        return {k: v.detach() for k, v in tensors.items()}

    def items(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.tensors().items()}


class GEDIObjective:
    """GEDI loss for ``network`` (images -> logits); with the ``sgld`` estimator, SGLD chains are kept between calls
    (:attr:`sampler`'s replay buffer); with ``amortised``, :attr:`proposal` is a network that trains with ``network``
    (:meth:`trained_modules`)."""

    def __init__(self, network: Callable[[torch.Tensor], torch.Tensor], image_shape: tuple[int, ...],
                 weights: GEDIWeights | None = None, sgld: SGLDConfig | None = None,
                 device: str | torch.device = "cpu", generator: torch.Generator | None = None,
                 negatives: int | None = None, sizes: ClusterSizes | None = None,
                 estimator: EstimatorConfig | None = None, ranks: Distributed | None = None) -> None:
        """``negatives``: SGLD samples per step (default: as many as images in the batch); ``sizes``:
        estimated cluster sizes for the prior (default: the uniformity prior); ``estimator``: how the generative
        term is trained (default: SGLD contrastive divergence, :mod:`.estimators`)."""
        self.network = network
        self.estimator = estimator or EstimatorConfig()
        self.generator = generator
        self.negatives = negatives
        self.sizes = sizes
        self.weights = weights or GEDIWeights()
        if self.weights.temperature <= 0:
            raise ValueError(f"the clustering temperature must be positive, got {self.weights.temperature}")
        if sizes is not None and self.weights.prior_floor > 0:
            raise ValueError("the prior is either a floor (prior_floor) or estimated sizes, not both")
        for weight, value in (("sampler's KL", self.weights.sampler_kl),
                              ("sampler's entropy", self.weights.sampler_entropy),
                              ("negatives' prior", self.weights.sample_prior)):
            if value < 0:
                raise ValueError(f"the {weight} weight must be non-negative, got {value}")
        if self.weights.sampler_entropy > 0 and self.weights.sampler_kl <= 0:
            raise ValueError("the sampler's entropy is the other half of its KL term: it needs --sampler-kl-weight > 0")
        for term, value in (("the sampler's KL term", self.weights.sampler_kl),
                            ("the negatives' prior", self.weights.sample_prior)):
            if value > 0 and self.estimator.name == "dsm":
                raise ValueError(f"{term} needs chains' negatives; the dsm estimator has none "
                                 "(use --gen-estimator sgld, recovery or amortised)")
        if self.weights.sampler_kl > 0 and not isinstance(network, torch.nn.Module):
            raise ValueError("the sampler's KL term needs the network as a torch.nn.Module")
        self.sgld = sgld or SGLDConfig()
        # the replay buffer only where its chains are used
        self.sampler = (SGLDSampler(lambda x: energy(network(x)), image_shape, self.sgld, device, generator)
                        if self.estimator.name == "sgld" else None)
        self.proposal = (Proposal(self.estimator.proposal_latent, image_shape, self.sgld.low, self.sgld.high).to(device)
                         if self.estimator.name == "amortised" else None)
        # several processes (torchrun): the prior sees the batch-mean assignment of the global batch
        self.ranks = ranks if ranks is not None and ranks.active else None

    def __call__(self, view1: torch.Tensor, view2: torch.Tensor, data_logits: torch.Tensor | None = None,
                 view1_logits: torch.Tensor | None = None, weights: GEDIWeights | None = None,
                 data: torch.Tensor | None = None) -> GEDITerms:
        """GEDI terms for two views ``[B, ...]`` of a batch of images.

        ``data_logits`` (the logits of the clean images, if already computed, e.g. by the
        NeSy forward) are used for the data energy; otherwise view 1 serves as data.
        ``view1_logits`` skips the forward of view 1 (e.g. when view 1 is the clean
        image, as in the combined NeSy loss).  ``weights`` replaces :attr:`weights` for this call (e.g. a
        :class:`~.schedule.WeightSchedule`'s weights at the current update).  ``data``: the clean images, which
        the ``dsm`` estimator noises (default: view 1).
        """
        w = weights if weights is not None else self.weights
        logits1 = view1_logits if view1_logits is not None else self.network(view1)
        logits2 = self.network(view2)
        zero = logits1.new_zeros(())
        gen, energies, extra = zero, {}, zero
        if w.gen > 0 and self.estimator.name == "dsm":
            gen, energies = dsm_loss(self.network, data if data is not None else view1, self.estimator,
                                     self.generator)
            energies["data_energy"] = energy(data_logits if data_logits is not None else logits1).detach().mean()
        elif w.gen > 0:
            data_energy = energy(data_logits if data_logits is not None else logits1)
            teaching = None
            if self.estimator.name == "recovery":  # short chains from the noised data, no buffer
                negatives = recovery_negatives(self.network, data if data is not None else view1, self.estimator,
                                               self.sgld, self.generator)
            elif self.proposal is not None:  # short chains from the generator's proposals, no buffer
                negatives, teaching = cooperative_negatives(lambda x: energy(self.network(x)), self.proposal,
                                                            self.negatives or view1.shape[0], self.sgld,
                                                            self.sgld.steps, self.generator)
            else:
                negatives = self.sampler.sample(self.negatives or view1.shape[0], data_energy.detach().mean())
            negative_logits = self.network(negatives)
            samples = energy(negative_logits)
            sample_l2 = w.energy_l2 if w.sample_l2 is None else w.sample_l2
            gen = (data_energy.mean() - samples.mean() + w.energy_l2 * data_energy.pow(2).mean()
                   + sample_l2 * samples.pow(2).mean())
            energies = {"data_energy": data_energy.detach().mean(), "sample_energy": samples.detach().mean()}
            if self.sampler is not None and self.sgld.until_data > 0:
                energies["chain_steps"] = self.sampler.last_steps
            if teaching is not None:  # the generator's loss: its gradient reaches the generator only
                energies["proposal_gap"] = teaching.detach()
                extra = teaching
            if w.sampler_kl > 0:  # improved CD: the weights learn to make the sampler's last step descend
                stepped = sampler_step(self.network, negatives, self.sgld, energy, self.generator)
                kl = frozen_energy(self.network, stepped, energy).mean()
                energies["sampler_kl"] = kl.detach()
                extra = extra + w.sampler_kl * kl
                if w.sampler_entropy > 0:  # ... and spread its samples out
                    entropy = nearest_neighbour_entropy(stepped)
                    energies["sampler_entropy"] = entropy.detach()
                    extra = extra - w.sampler_entropy * entropy
            if w.sample_prior > 0:  # the chains' ends spread over the clusters as the data do
                balance = uniformity_loss(negative_logits / w.temperature)
                energies["sample_prior"] = balance.detach()
                extra = extra + w.sample_prior * balance
        cluster1, cluster2 = logits1 / w.temperature, logits2 / w.temperature
        invariance = invariance_loss(cluster1, cluster2) if w.invariance > 0 else zero
        prior = zero
        if w.prior > 0:
            log_sizes = self.sizes.log_sizes if self.sizes is not None else None
            prior = 0.5 * (prior_loss(cluster1, w.prior_floor, log_sizes, self.ranks)
                           + prior_loss(cluster2, w.prior_floor, log_sizes, self.ranks))
        if self.sizes is not None:
            self.sizes.observe(cluster1)
        total = (w.gen * gen + w.invariance * invariance + w.prior * prior * self._global_scale(logits1.shape[0])
                 + extra)
        return GEDITerms(total, gen, invariance, prior, energies)

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """Networks besides ``network`` that the loss trains (``amortised``: ``{"proposal": ...}``); a recipe adds
        their parameters to its optimizer and checkpoints them."""
        return {"proposal": self.proposal} if self.proposal is not None else {}

    def checkpointed_state(self) -> dict:
        """State to keep in a checkpoint (``sgld``: ``{"replay_buffer": ...}``)."""
        return {"replay_buffer": self.sampler.buffer} if self.sampler is not None else {}

    def _global_scale(self, local: int) -> float:
        """The weight of a term computed on the global batch, on this rank: the trainer weighs each rank's loss by
        its share ``local / global`` of the batch, and this rank's copy of the term sends its gradient to this
        rank's rows only (:meth:`~nesy_gedi.train.distributed.Distributed.gather`), so the prior is scaled by
        ``global / local`` to count once (1 in one process)."""
        if self.ranks is None:
            return 1.0
        total = float(self.ranks.gather(torch.tensor([float(local)], device=self.ranks.device)).sum())
        return total / local
