"""The loss of one training step of the addition recipe, as a function of the batch and the update number:

``[step >= nesy_after] * NeSy NLL + gedi_weight * GEDI(weights at step) + concept_weight * CE(labelled digits)
+ entropy_weight * entropy regulariser``.

GEDI's first view is the clean images (their NeSy logits, no second forward) or, with ``gedi_views="augmented"``, a
second augmented copy; the other view is always an augmented copy of the same images, in the logits' row order.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import torch
import torch.nn.functional as F

from ..augment import DigitAugment
from ..data import AdditionDataset
from ..gedi import GEDIObjective
from ..gedi.schedule import WeightSchedule
from ..model import NeSyModel
from ..train.losses import entropy_regulariser, nesy_nll
from ..train.distributed import Distributed
from ..train.warmup import linear_warmup
from .addition_model import batch_forward, observed_sum_indices


@dataclass
class AdditionLoss:
    model: NeSyModel
    data: AdditionDataset
    net: torch.nn.Module  # images -> digit logits (the neural predicate)
    base: torch.nn.Module  # the network GEDI trains (``net`` itself, or a cluster head's clusterer)
    device: torch.device
    generator: torch.Generator
    nesy_after: int = 0
    train_augment: DigitAugment | None = None
    gedi: GEDIObjective | None = None
    schedule: WeightSchedule | None = None
    gedi_weight: float = 0.0
    gedi_views: str = "clean"
    aug_warmup: int = 0
    labelled: tuple[torch.Tensor, torch.Tensor] | None = None  # (images, digits) learned by cross-entropy
    concept_weight: float = 1.0
    entropy_weight: float = 0.0
    capture: bool = False  # capturable updates (see capture_key); the generator then draws on the device
    ranks: Distributed | None = None  # several processes: each image's views drawn as one process draws them

    def __post_init__(self) -> None:
        self.view_augment = DigitAugment()
        self.label_augment = DigitAugment()
        self.generators = [self.generator]
        self.strength = torch.ones((), device=self.device) if self.capture else None
        self.answers: torch.Tensor | None = None  # N=1, captured: every example's observed-sum index, on the device
        self.step = 0

    def capture_key(self, step: int):
        """What update ``step`` decides in Python: the NeSy term on or off, and GEDI's weights."""
        if not self.capture:
            return None
        weights = astuple(self.schedule.at(step)) if self.schedule is not None else None
        return step >= self.nesy_after, weights

    def prepare(self, step: int) -> None:
        self.step = step
        if self.strength is not None:
            self.strength.fill_(linear_warmup(step, self.aug_warmup))
        if self.capture and self.answers is None and self.data.n_digits == 1:
            every = torch.arange(len(self.data))
            self.answers = observed_sum_indices(self.model, self.data, every).to(self.device)

    def _views(self, step: int):
        """GEDI's augmentation at ``step``: warmed up by a device scalar when captured."""
        if self.strength is None:
            return self.view_augment.warmed_up(step, self.aug_warmup)
        return lambda x, g: self.view_augment(x, g, strength=self.strength)

    def __call__(self, examples: torch.Tensor, step: int | None = None) -> dict[str, torch.Tensor]:
        """``{"loss": total, term: detached value, ...}`` for the training ``examples`` at update ``step``
        (default: the one :meth:`prepare` set)."""
        step = self.step if step is None else step
        images = None
        if self.train_augment is not None:
            images = self.data.images(examples, self.device)
            per_example = images.shape[1] * images.shape[2]  # 2N digit images, example-major
            rows = None
            if self.ranks is not None and self.ranks.active:
                start, stop = self.ranks.rows()
                rows = (start * per_example, stop * per_example, self.ranks.batch * per_example)
            images = self.train_augment(images.view(-1, 1, 28, 28), self.generator, rows=rows).view_as(images)
        answers = None if self.answers is None else self.answers[examples]
        log_prob, result, inputs = batch_forward(self.model, self.data, examples, self.device, images, answers)
        logits = result.logits["mnist_net"]
        nll = nesy_nll(log_prob)
        terms = {"nll": nll.detach()}
        loss = nll if step >= self.nesy_after else nll.new_zeros(())  # the NLL is still logged (and checked)
        if self.gedi is not None:
            clean = result.network_inputs("mnist_net", inputs)
            cluster_logits = logits if self.net is self.base else None  # a cluster head: GEDI forwards the clusters
            views = self._views(step)
            if self.ranks is not None and self.ranks.active:  # call-major rows of this process's shard
                rows = self.ranks.block_rows(len(clean) // len(examples))
                warmed = views
                views = lambda x, g: warmed(x, g, rows=rows)  # noqa: E731
            weights = self.schedule.at(step) if self.schedule is not None else None
            if self.gedi_views == "augmented":  # two augmented copies; the clean logits serve as data energy
                gedi_terms = self.gedi(views(clean, self.generator), views(clean, self.generator), cluster_logits,
                                       weights=weights, data=clean)
            else:
                gedi_terms = self.gedi(clean, views(clean, self.generator), cluster_logits,
                                       view1_logits=cluster_logits, weights=weights, data=clean)
            terms.update({f"gedi_{k}": v for k, v in gedi_terms.tensors().items()})
            loss = loss + self.gedi_weight * gedi_terms.total
        if self.labelled is not None:
            # a fresh augmented copy each step: a handful of images must not just be memorised
            digits = self.net(self.label_augment(self.labelled[0], self.generator))
            concept_ce = F.cross_entropy(digits, self.labelled[1])
            terms["concept_ce"] = concept_ce.detach()
            loss = loss + self.concept_weight * concept_ce
        if self.entropy_weight > 0:
            entropy = entropy_regulariser(logits)
            terms["entropy"] = entropy.detach()
            loss = loss + self.entropy_weight * entropy
        return {"loss": loss, **terms}
