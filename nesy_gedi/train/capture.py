"""Training updates replayed as CUDA graphs: forward, loss, backward and optimizer step as one launch.

A *capturable* step function (:class:`CapturableStep`) computes the loss of a batch with tensor operations only:
no host syncs (``.item()``, ``.cpu()``, branches on tensor values) and randomness from generators on the training
device.  What it decides in Python for an update (a term switched on, a schedule's weights) is its
:meth:`~CapturableStep.capture_key`; values that change every update (an augmentation warm-up) are device scalars
that :meth:`~CapturableStep.prepare` writes before the update.  :class:`StepGraphs` runs each update eagerly until
its ``(batch size, key)`` has been seen ``warmup`` times (those updates warm up cuBLAS, the allocator and the
optimizer state), then captures it once and replays the graph for every later update with that key.

The loss terms are summed on the device, inside the graph; the trainer reads the sums every ``log_every`` updates
and before every checkpoint (:meth:`StepGraphs.read`), so no update waits for the host.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Hashable, Mapping, Protocol

import torch

from ..errors import NesyError

MAX_TERMS = 64  # slots of the on-device sums of the loss terms (their addresses are baked into the graphs)


class CapturableStep(Protocol):
    def __call__(self, batch: torch.Tensor) -> Mapping[str, torch.Tensor]: ...

    def capture_key(self, step: int) -> Hashable | None:
        """What this update decides in Python (``None``: run it eagerly, uncaptured)."""

    def prepare(self, step: int) -> None:
        """Write this update's per-step values into the device scalars the step reads."""


def capture_available(device: torch.device) -> bool:
    """CUDA graphs need a CUDA device."""
    return device.type == "cuda" and torch.cuda.is_available()


def step_generators(step_fn: object) -> list[torch.Generator]:
    """The device generators a step draws from (its ``generators`` attribute), registered with each graph."""
    return [g for g in getattr(step_fn, "generators", ()) if g is not None and g.device.type == "cuda"]


class StepGraphs:
    """One update of ``step_fn`` + backward + ``optimizer.step()``, captured per ``(batch size, key)``.

    ``replay=False`` never captures: every update runs eagerly through the same code (the accumulation on the
    device included), which is what a CPU test checks and what ``--no-compile`` would do on a GPU.
    """

    def __init__(self, step_fn: CapturableStep, optimizer: torch.optim.Optimizer, device: torch.device,
                 warmup: int = 2, replay: bool = True, stream: torch.cuda.Stream | None = None) -> None:
        self.step_fn, self.optimizer, self.device = step_fn, optimizer, device
        self.warmup, self.replay = max(1, warmup), replay and capture_available(device)
        if self.replay and step_generators(step_fn) and not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
            warnings.warn(f"torch {torch.__version__} cannot replay draws of a generator of one's own in a CUDA "
                          "graph; updates run eagerly", stacklevel=2)
            self.replay = False
        self.stream = stream if stream is not None or not self.replay else torch.cuda.Stream(device)
        self.slots: dict[str, int] = {}
        self.sums = torch.zeros(MAX_TERMS, dtype=torch.float64, device=device)
        self.bad = torch.zeros(MAX_TERMS, dtype=torch.float64, device=device)  # non-finite values per term
        self.counts: dict[str, int] = {}
        self.seen: dict[tuple, int] = {}
        self.names: dict[tuple, list[str]] = {}  # the terms each key's update returns
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._index: dict[tuple[str, ...], torch.Tensor] = {}
        self.captured_updates = 0
        self.eager_updates = 0

    def _body(self, batch: torch.Tensor) -> list[str]:
        terms = self.step_fn(batch)
        if "loss" not in terms:
            raise ValueError("step_fn must return a 'loss' term")
        names = list(terms)
        for name in names:
            if name not in self.slots:
                if len(self.slots) == MAX_TERMS:
                    raise ValueError(f"a step may log at most {MAX_TERMS} loss terms")
                self.slots[name] = len(self.slots)
        if tuple(names) not in self._index:  # made on an eager update: a capture may not copy from the host
            self._index[tuple(names)] = torch.tensor([self.slots[n] for n in names], device=self.device)
        index = self._index[tuple(names)]
        values = torch.stack([_scalar(terms[n], self.device) for n in names])
        self.sums.index_add_(0, index, values)
        self.bad.index_add_(0, index, (~torch.isfinite(values)).double())
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.optimizer.step()
        return names

    def stream_context(self):
        """The CUDA stream all of this run's work goes to (a capture needs a side stream; one per run lets the
        runs of :func:`~nesy_gedi.train.loop.fit_together` overlap); a no-op without replay."""
        return torch.cuda.stream(self.stream) if self.replay else contextlib.nullcontext()

    def __call__(self, batch: torch.Tensor, step: int) -> None:
        """Run update ``step`` (0-based) on ``batch`` (indices on the training device), inside
        :meth:`stream_context`."""
        self.step_fn.prepare(step)
        user_key = self.step_fn.capture_key(step)
        key = (tuple(batch.shape), user_key)
        if key in self.graphs:
            graph, static = self.graphs[key]
            static.copy_(batch, non_blocking=True)
            graph.replay()
            self._count(key, self.names[key])
            self.captured_updates += 1
            return
        self.seen[key] = self.seen.get(key, 0) + 1
        if not self.replay or user_key is None or self.seen[key] <= self.warmup:
            self._count(key, self._body(batch))  # eager (on the side stream: warms up what a capture records)
            self.eager_updates += 1
            return
        static = batch.clone()
        graph = torch.cuda.CUDAGraph()
        for generator in step_generators(self.step_fn):
            graph.register_generator_state(generator)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph, stream=self.stream):
            names = self._body(static)
        self.graphs[key], self.names[key] = (graph, static), names
        graph.replay()  # capturing records the update without running it
        self._count(key, names)
        self.captured_updates += 1

    def _count(self, key: tuple, names: list[str]) -> None:
        self.names.setdefault(key, names)
        for name in names:
            self.counts[name] = self.counts.get(name, 0) + 1

    def read(self) -> tuple[dict[str, float], dict[str, int], list[str]]:
        """``(mean of each term since the last read, updates that logged it, terms that were not finite)``;
        resets the sums (the one host sync)."""
        sums, bad = self.sums.tolist(), self.bad.tolist()
        counts = {n: c for n, c in self.counts.items() if c}
        means = {n: sums[self.slots[n]] / c for n, c in counts.items()}
        nonfinite = [n for n, i in self.slots.items() if bad[i]]
        self.sums.zero_()
        self.bad.zero_()
        self.counts = {}
        return means, counts, nonfinite


def _scalar(value: torch.Tensor | float, device: torch.device) -> torch.Tensor:
    """A loss term as a float64 scalar on ``device``; a number by ``torch.full`` (no copy from the host)."""
    if isinstance(value, torch.Tensor):
        return value.detach().double().reshape(())
    return torch.full((), float(value), dtype=torch.float64, device=device)


class TensorHyperparameters:
    """Keeps each optimizer group's ``lr`` (and, with ``vary_beta1``, Adam's first beta) in device tensors, which a
    captured ``optimizer.step()`` reads at every replay; :meth:`refresh` copies what a scheduler set as numbers into
    them.  Without this a graph would replay the learning rate it was captured with, whatever the schedule says.

    A tensor beta is read back to the host by the multi-tensor (``foreach``) Adam, so a group whose first beta
    varies (a one-cycle schedule's momentum) uses the single-tensor implementation.  Any other hyperparameter that a
    scheduler changes after capture stops the run (:meth:`refresh` raises) rather than being silently ignored.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, device: torch.device, vary_beta1: bool = False) -> None:
        self.optimizer, self.device = optimizer, device
        self.lr = [torch.tensor(float(g["lr"]), dtype=torch.float32, device=device) for g in optimizer.param_groups]
        self.beta1 = [torch.tensor(float(g["betas"][0]), dtype=torch.float32, device=device)
                      if vary_beta1 and "betas" in g else None for g in optimizer.param_groups]
        self.attach()
        self.fixed = [_fixed(g) for g in optimizer.param_groups]

    def attach(self) -> None:
        """Make the optimizer capturable: its groups' flags, its step counts on the device, the hyperparameters in
        the tensors (again after ``load_state_dict``, which restores plain numbers and flags)."""
        for group, beta1 in zip(self.optimizer.param_groups, self.beta1):
            if "capturable" in group:
                group["capturable"] = True
            if beta1 is not None and "foreach" in group:
                group["foreach"] = False
        for values in self.optimizer.state.values():
            if isinstance(values.get("step"), torch.Tensor):
                values["step"] = values["step"].to(self.device, torch.float32)
        self._to_tensors()

    def _to_tensors(self) -> None:
        for group, lr, beta1 in zip(self.optimizer.param_groups, self.lr, self.beta1):
            if group["lr"] is not lr:
                lr.fill_(float(group["lr"]))
                group["lr"] = lr
            if beta1 is not None and group["betas"][0] is not beta1:
                beta1.fill_(float(group["betas"][0]))
                group["betas"] = (beta1, float(group["betas"][1]))

    def refresh(self) -> None:
        """After a scheduler step: its numbers into the tensors; an error if it changed anything else."""
        self._to_tensors()
        for group, fixed in zip(self.optimizer.param_groups, self.fixed):
            now = _fixed(group)
            if now != fixed:
                changed = ", ".join(k for k in fixed if fixed[k] != now.get(k))
                raise NesyError(f"the schedule changed the optimizer's {changed}, which a captured update cannot "
                                "follow; run with --no-compile")


def _fixed(group: dict) -> dict:
    """The hyperparameters of an optimizer group that a captured update holds constant."""
    out = {k: v for k, v in group.items() if k not in ("params", "lr", "initial_lr", "max_lr", "min_lr", "capturable",
                                                        "foreach") and isinstance(v, (int, float, bool, tuple))}
    if isinstance(out.get("betas"), tuple):
        b = out["betas"]
        out["betas"] = (None if isinstance(b[0], torch.Tensor) else b[0], float(b[1]))
    return out
