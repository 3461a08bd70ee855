"""Learnable probabilities: ProbLog's ``t(P)::fact`` labels as trainable parameters.

A ``t(P)`` or ``t(_)`` label, on a fact, a clause head or an alternative of an annotated disjunction, is one
parameter of the program: the probability itself, shared by every grounding of its clause (as in DeepProbLog).
``t(P)`` starts at ``P``.  ``t(_)`` starts as ProbLog's LFI starts it: per annotated disjunction (or single
fact), draw one uniform number per ``t(_)`` plus one for "none of them", and scale them so that together with
the ``t(P)`` starts and the fixed probabilities they sum to 1.

Any torch optimizer trains them through logits (a softmax per statement, so they stay probabilities);
DeepProbLog's ``SGD`` steps the probabilities themselves with ``d loss / d p``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ProgramError


@dataclass(frozen=True)
class LearnableLabel:
    """One ``t(...)`` label: its parameter index, start (``None`` for ``t(_)``), and where it is written."""

    index: int
    initial: float | None
    where: str
    text: str


@dataclass(frozen=True)
class LearnableGroup:
    """The learnable alternatives of one statement (an annotated disjunction of ``alternatives`` heads, or one
    ``t`` fact) and the sum of its fixed probabilities."""

    members: tuple[int, ...]
    fixed: float
    alternatives: int = 1


def start_value(label_arg, where: str) -> float | None:
    """``P`` of ``t(P)`` as a probability, ``None`` for ``t(_)``; a clear error for anything else."""
    from problog.logic import Var

    if isinstance(label_arg, Var):
        return None
    try:
        value = float(label_arg.compute_value())
    except Exception:
        raise ProgramError(f"{where}: t({label_arg}) must hold a probability or _") from None
    if not 0.0 <= value <= 1.0:
        raise ProgramError(f"{where}: t({value}) is outside [0, 1]")
    return value


def initial_values(labels: list[LearnableLabel], groups: list[LearnableGroup], seed: int = 0) -> list[float]:
    """Start values: ``t(P)`` at ``P``, ``t(_)`` by ProbLog LFI's scheme (see the module), drawn from ``seed``."""
    rng = random.Random(seed)
    values = [label.initial for label in labels]
    for group in groups:
        unknown = [i for i in group.members if labels[i].initial is None]
        if not unknown:
            continue
        known = sum(labels[i].initial for i in group.members if labels[i].initial is not None)
        draws = [rng.random() for _ in range(len(unknown) + 1)]
        scale = max(0.0, 1.0 - known - group.fixed) / sum(draws)
        for i, draw in zip(unknown, draws):
            values[i] = draw * scale
    return [float(v) for v in values]


class LearnableProbabilities(nn.Module):
    """The program's learnable probabilities, parametrised by ``logits`` so that any torch optimizer keeps them
    probabilities: per statement ``g`` with learnable alternatives ``k`` and fixed mass ``f_g``,
    ``p_k = (1 - f_g) softmax(logits_k, logit_none_g)`` (one "none of them" logit per statement; a single
    ``t`` fact is a sigmoid).  Calling the module gives ``p`` ``[n]`` (float64).  A start of exactly 0 (or a
    disjunction that starts full) has an infinite logit and stays there under a torch optimizer; :meth:`set_`
    (DeepProbLog's ``SGD``) moves it.

    With :attr:`track_probability_gradients`, every use of ``p`` adds ``d loss / d p`` to
    :attr:`probability_grad` (DeepProbLog's parameter gradients), without a host sync.
    """

    def __init__(self, labels: list[LearnableLabel], groups: list[LearnableGroup], seed: int = 0) -> None:
        super().__init__()
        self.labels = list(labels)
        self.groups = list(groups)
        n, g = len(self.labels), len(self.groups)
        group_of = torch.zeros(n + g, dtype=torch.long)  # members first, then each group's "none"
        for index, group in enumerate(self.groups):
            group_of[list(group.members)] = index
        group_of[n:] = torch.arange(g)
        self.register_buffer("_group_of", group_of, persistent=False)
        self.register_buffer("_room", torch.tensor([1.0 - gr.fixed for gr in self.groups], dtype=torch.float64),
                             persistent=False)
        self.register_buffer("_disjunction", torch.tensor([gr.alternatives > 1 for gr in self.groups],
                                                          dtype=torch.bool), persistent=False)
        self.logits = nn.Parameter(torch.zeros(n + g, dtype=torch.float64))
        self.track_probability_gradients = False
        self.probability_grad: torch.Tensor | None = None
        self.set_(torch.tensor(initial_values(self.labels, self.groups, seed), dtype=torch.float64))

    def forward(self) -> torch.Tensor:
        z = self.logits
        top = torch.full_like(self._room, float("-inf")).scatter_reduce(0, self._group_of, z, "amax")
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top)).detach()
        e = torch.exp(z - top[self._group_of])
        total = torch.zeros_like(self._room).index_add(0, self._group_of, e)
        n = len(self.labels)
        p = (self._room[self._group_of] * e / total[self._group_of])[:n]
        if self.track_probability_gradients and p.requires_grad:
            p.register_hook(self._accumulate)
        return p

    def _accumulate(self, grad: torch.Tensor) -> None:
        self.probability_grad = grad.detach().clone() if self.probability_grad is None else \
            self.probability_grad + grad.detach()

    def values(self) -> list[float]:
        with torch.no_grad():
            return self().cpu().tolist()

    def named(self) -> dict[str, float]:
        """``{label text: probability}``, e.g. ``{"t(_)::coin": 0.51}``."""
        return {label.text: value for label, value in zip(self.labels, self.values())}

    @torch.no_grad()
    def set_(self, values: torch.Tensor) -> None:
        """Set the probabilities to ``values`` ``[n]``; a clear error unless each is in ``[0, 1]`` and each
        statement's sum at most ``1 - fixed``."""
        values = values.to(self.logits.device, torch.float64)
        if values.shape != (len(self.labels),):
            raise ValueError(f"expected {len(self.labels)} learnable probabilities, got shape {tuple(values.shape)}")
        bad = ((values < 0) | (values > 1) | values.isnan()).nonzero().flatten().tolist()
        if bad:
            raise ProgramError(f"learnable probability {self.labels[bad[0]].text} cannot be {float(values[bad[0]])}: "
                               "it must be in [0, 1]")
        n = len(self.labels)
        sums = torch.zeros_like(self._room).index_add(0, self._group_of[:n], values)
        rest = self._room - sums
        over = (rest < -1e-9).nonzero().flatten().tolist()
        if over:
            group = self.groups[over[0]]
            names = ", ".join(self.labels[i].text for i in group.members)
            raise ProgramError(f"learnable probabilities {names} would sum to {float(sums[over[0]])}, more than "
                               f"{float(self._room[over[0]])} (1 minus the disjunction's fixed probabilities)")
        self.logits.copy_(torch.log(torch.cat([values, rest.clamp(min=0)])))

    @torch.no_grad()
    def sgd_step_(self, lr: float, extra: torch.Tensor | None = None) -> None:
        """DeepProbLog's ``SGD`` update: ``p -= lr * d loss / d p``, clamped to ``[0, 1]``, each disjunction's
        learnable alternatives normalised to ``1 - fixed``; clears :attr:`probability_grad`."""
        p = self()
        grad = self.probability_grad if self.probability_grad is not None else torch.zeros_like(p)
        if extra is not None:
            grad = grad + extra.to(grad)
        p = (p - lr * grad).clamp(0.0, 1.0)
        n = len(self.labels)
        sums = torch.zeros_like(self._room).index_add(0, self._group_of[:n], p)
        scale = torch.where(self._disjunction & (sums > 0), self._room / sums.clamp(min=1e-300),
                            torch.ones_like(sums))
        scale = torch.where(~self._disjunction & (sums > self._room), self._room / sums.clamp(min=1e-300), scale)
        self.set_((p * scale[self._group_of[:n]]).clamp(0.0, 1.0))
        self.probability_grad = None


def learnable_rows(rows: list[tuple[float, tuple[tuple[int, int], ...]]], n: int, device: torch.device,
                   dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c, S)`` of rows ``(c, ((k, s_k), ...))``: row ``r``'s weight is ``c[r] + S[r] @ p``."""
    signs = torch.zeros(len(rows), n, dtype=dtype)
    for r, (_, terms) in enumerate(rows):
        for k, s in terms:
            signs[r, k] += s
    return torch.tensor([c for c, _ in rows], dtype=dtype).to(device), signs.to(device)


def learnable_log_weights(const: torch.Tensor, signs: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """``log(c + S @ p)`` per row: ``log p``, ``log(1 - p)``, or the log-weight of "none of a disjunction's
    grounded alternatives"; ``-inf`` (gradient 0) where the weight is not positive."""
    total = const + signs @ probabilities
    positive = total > 0
    safe = torch.where(positive, total, torch.ones_like(total))
    return torch.where(positive, torch.log(safe), torch.full_like(total, float("-inf")))
