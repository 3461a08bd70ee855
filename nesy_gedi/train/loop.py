"""The one training loop: every task, benchmark and ``train_model`` runs through :class:`Trainer`.

A run is a sequence of steps over shuffled mini-batches of example indices.
The caller supplies ``step_fn(batch) -> {"loss": total, term: value, ...}``;
the loop does the rest:

* backward, optimizer and scheduler steps;
* a NaN guard: a non-finite loss term stops the run with an error naming the
  step and the term, before it reaches the weights (the last checkpoint stays);
* a checkpoint every ``checkpoint_every`` steps, at the end of each epoch and
  at the end, atomically, with everything needed to continue bit for bit:
  networks, optimizer, scheduler, the torch and data RNG states, the epoch's
  order and position in it, extra state (e.g. GEDI's replay buffer);
* optional snapshots: every ``snapshot_every`` steps each network's weights alone, kept
  (``snapshots/<name>_step<N>.pt``), to follow a run over time after it ends;
* SIGINT/SIGTERM: finish the step, save, raise :class:`Interrupted` with a hint;
* ``metrics.jsonl``: one line per step (loss terms, learning rate, examples/s); with captured updates
  (``LoopConfig.capture`` on a GPU, :mod:`.capture`) one line of means every ``log_every`` updates;
* :func:`fit_together`: several runs side by side in one process (``--seeds``);
* a tqdm bar on a terminal, otherwise one plain line every ``log_every`` steps.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch
from torch import nn
from tqdm import tqdm

from ..errors import Interrupted
from ..errors import NesyError
from .capture import StepGraphs, TensorHyperparameters
from .distributed import Distributed
from .checkpoint import CHECKPOINT_FORMAT, VERSION, atomic_save, save_network

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
SNAPSHOTS = "snapshots"


class NonFiniteLoss(NesyError):
    """A loss term became NaN or infinite."""


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class LoopConfig:
    """How long to train and where to keep the run.

    ``epochs`` passes over the data, stopped early by ``max_steps`` updates or
    ``minutes`` of training (an extra cap; results then depend on machine speed).
    """

    out: Path | None  # None: no checkpoints and no metrics.jsonl (e.g. DeepProbLog's train_model)
    epochs: int = 1
    batch_size: int = 32
    max_steps: int | None = None
    minutes: float | None = None
    drop_last: bool = False
    checkpoint_every: int | None = None  # steps; None: at the end of every epoch
    snapshot_every: int | None = None  # steps between kept copies of the networks' weights; None: none
    log_every: int = 100
    progress: bool = True
    description: str = "train"
    capture: bool = False  # replay updates as CUDA graphs (a capturable step_fn on a CUDA device; see .capture)

    def steps_per_epoch(self, n_examples: int) -> int:
        b = self.batch_size
        return n_examples // b if self.drop_last else -(-n_examples // b)

    def total_steps(self, n_examples: int) -> int:
        """Updates a run over ``n_examples`` makes (before any ``minutes`` cap), e.g. for a schedule."""
        total = self.epochs * self.steps_per_epoch(n_examples)
        return min(total, self.max_steps) if self.max_steps is not None else total


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0  # epochs finished
    position: int = 0  # batches done in the current epoch
    order: torch.Tensor | None = None  # example order of the current epoch
    seconds: float = 0.0
    examples: int = 0
    epoch_sums: dict[str, float] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Runs ``step_fn`` over mini-batches of ``range(n_examples)`` with checkpoints and resume."""

    def __init__(
        self,
        config: LoopConfig,
        n_examples: int,
        step_fn: Callable[[torch.Tensor], Mapping[str, torch.Tensor | float]],
        modules: Mapping[str, nn.Module],
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        scheduler: Any | None = None,
        extra_state: Mapping[str, Stateful] | None = None,
        run_info: Mapping[str, Any] | None = None,
        order_fn: Callable[[], torch.Tensor] | None = None,
        after_step: Callable[["LoopState", Mapping[str, float]], None] | None = None,
        on_epoch_end: Callable[["LoopState"], Mapping[str, Any] | None] | None = None,
        stop_when: Callable[["LoopState"], bool] | None = None,
        device: torch.device | str | None = None,
        distributed: Distributed | None = None,
    ) -> None:
        """``order_fn`` gives each epoch's example order (default: a permutation drawn from
        ``generator``); ``after_step(state, loss_terms)`` runs after every update;
        ``on_epoch_end(state)`` after each full epoch, before its checkpoint (it may change the
        networks; what it returns joins the epoch's ``history`` record); ``stop_when(state)``, checked
        before every update, ends training early when it returns true (e.g. a stop condition on a metric).

        With ``config.capture`` on a CUDA ``device``, ``step_fn`` must be a :class:`~.capture.CapturableStep`: it
        receives batches of indices on ``device`` and its updates are replayed as CUDA graphs; the loss terms are
        read (and checked to be finite) every ``log_every`` updates and before every checkpoint, and
        ``metrics.jsonl`` gets one line of means per such read.  Elsewhere the same code runs eagerly."""
        if n_examples < 1:
            raise NesyError("no training examples")
        self.config, self.n_examples, self.step_fn = config, n_examples, step_fn
        self.modules, self.optimizer, self.scheduler = dict(modules), optimizer, scheduler
        self.generator, self.extra_state = generator, dict(extra_state or {})
        self.run_info = dict(run_info or {})
        self.order_fn, self.after_step, self.on_epoch_end = order_fn, after_step, on_epoch_end
        self.stop_when = stop_when
        self.state = LoopState()
        self._stop_signal: int | None = None
        self._own_signals = True  # False under fit_together, which handles the signals of all its trainers
        self.dist = distributed or Distributed()
        # only rank 0 writes: the other ranks of a distributed run keep no folder
        self.out = Path(config.out) if config.out is not None and self.dist.is_main else None
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if self.dist.active:
            config = replace(config, capture=False)  # distributed updates run eagerly (not captured yet)
            self.config = config
            for module in self.modules.values():
                self.dist.broadcast_parameters(module)
        self.graphs: StepGraphs | None = None
        self.hyper: TensorHyperparameters | None = None
        if config.capture and any("capturable" not in g for g in optimizer.param_groups):
            config = replace(config, capture=False)  # e.g. SGD: its step reads its learning rate on the host
            self.config = config
        if config.capture:
            for method in ("capture_key", "prepare"):
                if not hasattr(step_fn, method):
                    raise NesyError(f"capture needs a capturable step function (a {method} method)")
            self.graphs = StepGraphs(step_fn, optimizer, self.device)  # type: ignore[arg-type]
            if self.graphs.replay:
                self.hyper = TensorHyperparameters(optimizer, self.device,
                                                   vary_beta1=bool(getattr(scheduler, "cycle_momentum", False)))
        self._device_order: torch.Tensor | None = None
        self.last_counts: dict[str, int] = {}  # captured: how many updates each term of the last read covers

    # -- sizes ---------------------------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return self.config.steps_per_epoch(self.n_examples)

    @property
    def total_steps(self) -> int:
        return self.config.total_steps(self.n_examples)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out / CHECKPOINT if self.out is not None else None

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        s = self.state
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "version": VERSION,
            **self.run_info,
            "step": s.step, "epoch": s.epoch, "position": s.position, "order": s.order,
            "seconds": s.seconds, "examples": s.examples, "epoch_sums": dict(s.epoch_sums),
            "history": list(s.history),
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizer": _plain_optimizer_state(self.optimizer.state_dict()),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "extra": {k: v.state_dict() for k, v in self.extra_state.items()},
            "rng": rng,
        }

    def save(self) -> Path | None:
        if self.checkpoint_path is not None:
            atomic_save(self.state_dict(), self.checkpoint_path)
        return self.checkpoint_path

    def snapshot(self) -> list[Path]:
        """Keep each network's weights at this step as ``snapshots/<name>_step<N>.pt`` (a network file that
        ``network_state`` reads, with the step); none without an output folder."""
        if self.out is None:
            return []
        folder, step = self.out / SNAPSHOTS, self.state.step
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"{name}_step{step:07d}.pt" for name in self.modules]
        for path, (name, module) in zip(paths, self.modules.items()):  # the run's --arch names its network only
            save_network(path, module, self.run_info.get("arch") if name == "net" else None, self.run_info.get("kind"),
                         step=step)
        return paths

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint made by :meth:`state_dict` (validated by ``load_checkpoint``)."""
        for name, module in self.modules.items():
            if name not in state["modules"]:
                raise NesyError(f"checkpoint has no network {name!r}")
            module.load_state_dict(state["modules"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.hyper is not None:  # the checkpoint holds plain numbers: back into what a captured step reads
            self.hyper.attach()
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for name, obj in self.extra_state.items():
            if name in state.get("extra", {}):
                obj.load_state_dict(state["extra"][name])
            elif not getattr(obj, "optional_state", False):  # diagnostics added later may start afresh
                raise NesyError(f"checkpoint has no {name!r} state")
        torch.set_rng_state(state["rng"]["torch"])
        self.generator.set_state(state["rng"]["generator"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.state = LoopState(
            step=state["step"], epoch=state["epoch"], position=state["position"], order=state["order"],
            seconds=state["seconds"], examples=state["examples"], epoch_sums=dict(state["epoch_sums"]),
            history=list(state["history"]),
        )
        self._truncate_metrics(self.state.step)

    def _truncate_metrics(self, step: int) -> None:
        """Drop metric lines of steps after the checkpoint (they will be run again)."""
        if self.out is None:
            return
        path = self.out / METRICS
        if not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: everything after it is gone too
        path.write_text("".join(line + "\n" for line in keep))

    # -- the loop ------------------------------------------------------------------------------------
    def _finished(self, started: float, seconds_before: float) -> bool:
        s, c = self.state, self.config
        if s.step >= self.total_steps or s.epoch >= c.epochs:
            return True
        if self.stop_when is not None and self.stop_when(s):
            return True
        return c.minutes is not None and seconds_before + time.perf_counter() - started >= c.minutes * 60

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._stop_signal = signum

    def fit(self) -> LoopState:
        """Train until the budget is spent; returns the final loop state (with per-epoch history)."""
        for _ in self.updates():
            pass
        return self.state

    def updates(self):
        """Train, yielding after every update (:func:`fit_together` interleaves several runs so)."""
        c, s = self.config, self.state
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            if s.step == 0:
                (self.out / METRICS).unlink(missing_ok=True)
        handlers = {}
        for sig in (signal.SIGINT, signal.SIGTERM) if self._own_signals else ():
            try:
                handlers[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: no signal handling
                pass
        tty = sys.stderr.isatty()
        bar = tqdm(total=self.total_steps, initial=s.step, desc=c.description,
                   disable=not (c.progress and tty and self.dist.is_main), dynamic_ncols=True)
        started, seconds_before = time.perf_counter(), s.seconds
        self._since_checkpoint = 0
        self._interval = (time.perf_counter(), s.step, s.examples)
        metrics = open(self.out / METRICS if self.out is not None else os.devnull, "a")
        try:
            while not self._finished(started, seconds_before):
                with self.graphs.stream_context() if self.graphs is not None else contextlib.nullcontext():
                    self._update(metrics, started, seconds_before, tty, bar)
                yield s
            if self._since_checkpoint:  # the last step was not checkpointed yet
                self.save()
            if self.graphs is not None and self.graphs.replay:  # what follows (evaluation) runs on the default stream
                torch.cuda.current_stream(self.device).wait_stream(self.graphs.stream)
            if s.order is not None and s.position > 0:  # stopped inside an epoch: record the partial epoch
                s.history.append(self._epoch_record(partial=True))  # in the result only, never in a checkpoint
        finally:
            metrics.close()
            bar.close()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def _update(self, metrics, started: float, seconds_before: float, tty: bool, bar) -> None:
        """One update with its bookkeeping: logs, epoch end, checkpoint, snapshot, signals."""
        c, s = self.config, self.state
        if s.order is None:
            s.order = (self.order_fn() if self.order_fn is not None
                       else torch.randperm(self.n_examples, generator=self.generator))
            s.position, s.epoch_sums = 0, {}
            self._device_order = None
        b = c.batch_size
        batch = s.order[s.position * b: (s.position + 1) * b]
        t0 = time.perf_counter()
        if self.graphs is None:
            values = self._eager_update(batch)
            lr = self.optimizer.param_groups[0]["lr"]
        else:
            if self._device_order is None:  # one copy per epoch; a batch is a view of it
                self._device_order = s.order.to(self.device)
            self.graphs(self._device_order[s.position * b: (s.position + 1) * b], s.step)
            values, lr = None, None
        if self.scheduler is not None:
            self.scheduler.step()
            if self.hyper is not None:
                self.hyper.refresh()
        s.step += 1
        s.position += 1
        s.examples += len(batch)
        self._since_checkpoint += 1
        end_of_epoch = s.position >= self.steps_per_epoch
        checkpoint_due = (c.checkpoint_every and self._since_checkpoint >= c.checkpoint_every) or end_of_epoch
        # decided once per update, by every rank alike: a signal that lands later is handled at the next update
        stop = self.dist.any(self._stop_signal is not None)
        s.seconds = seconds_before + time.perf_counter() - started
        if values is not None:  # eager: every update is logged
            for k, v in values.items():
                s.epoch_sums[k] = s.epoch_sums.get(k, 0.0) + v
            record = {"step": s.step, "epoch": s.epoch + 1, **values, "lr": lr,
                      "examples_per_s": len(batch) / max(time.perf_counter() - t0, 1e-9)}
            if self.dist.active:
                record.update(world_size=self.dist.world_size, rank_batch=len(self.dist.shard(batch)))
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()
        elif (s.step % c.log_every == 0 or s.step == 1 or checkpoint_due or stop
              or self._finished(started, seconds_before)):
            values = self._read_interval(metrics)
        bar.update(1)
        if values is not None and (s.step % c.log_every == 0 or s.step == 1):
            shown = {k: f"{v:.4g}" for k, v in values.items()}
            bar.set_postfix(shown, refresh=False)
            if c.progress and not tty and self.dist.is_main:
                print(f"{c.description} step {s.step}/{self.total_steps} epoch {s.epoch + 1} "
                      + " ".join(f"{k} {v}" for k, v in shown.items())
                      + f" {s.examples / max(s.seconds, 1e-9):,.0f} ex/s", file=sys.stderr, flush=True)
        if end_of_epoch:
            record = self._epoch_record()
            if self.on_epoch_end is not None:
                record.update(self.on_epoch_end(s) or {})
            s.history.append(record)
            s.epoch += 1
            s.order = None
        if checkpoint_due:
            self.save()
            self._since_checkpoint = 0
        if c.snapshot_every and s.step % c.snapshot_every == 0:
            self.snapshot()
        if self.after_step is not None and values is not None:  # captured: at each read, with its means
            self.after_step(s, values)
        if stop:  # this rank's signal, or another rank's (then it stops here too, at the same update)
            path = self.save() if self._since_checkpoint else self.checkpoint_path
            self.dist.part()
            name = signal.Signals(self._stop_signal or signal.SIGTERM).name
            if not self.dist.is_main:
                raise Interrupted(f"{name} at step {s.step} (rank {self.dist.rank}; rank 0 saved the checkpoint)")
            if path is None:
                raise Interrupted(f"{name} at step {s.step}; no checkpoint (the run has no output folder)")
            raise Interrupted(f"{name} at step {s.step}; checkpoint saved to {path}; "
                              f"continue with the same command and --resume --out {self.out}")

    def _eager_update(self, batch: torch.Tensor) -> dict[str, float]:
        """One update, its loss terms read (and checked to be finite) before the weights change."""
        if hasattr(self.step_fn, "prepare"):
            self.step_fn.prepare(self.state.step)
        local = self.dist.shard(batch)
        share = len(local) / len(batch)
        self.dist.batch = len(batch)
        terms = self.step_fn(local)
        values = self._check_finite(terms, share)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if self.dist.active:
            self.dist.reduce_gradients([p for g in self.optimizer.param_groups for p in g.get("params", ())], share)
        self.optimizer.step()
        return values

    def _read_interval(self, metrics) -> dict[str, float]:
        """Captured updates: the mean loss terms since the last read, checked, logged as one line."""
        assert self.graphs is not None
        s = self.state
        means, counts, bad = self.graphs.read()
        self.last_counts = counts
        first = self._interval[1] + 1
        if bad:
            last = self._last_checkpoint()
            raise NonFiniteLoss(f"updates {first}-{s.step}: loss term {', '.join(repr(k) for k in bad)} was not "
                                f"finite ({last}); try a smaller --lr, or --no-compile to stop at the first bad update")
        for k, v in means.items():
            s.epoch_sums[k] = s.epoch_sums.get(k, 0.0) + v * counts[k]
        now = time.perf_counter()
        seconds, examples = now - self._interval[0], s.examples - self._interval[2]
        record = {"step": s.step, "epoch": s.epoch + 1, "updates": s.step - self._interval[1], **means,
                  "lr": float(self.optimizer.param_groups[0]["lr"]),
                  "examples_per_s": examples / max(seconds, 1e-9)}
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        self._interval = (now, s.step, s.examples)
        return means

    def _epoch_record(self, partial: bool = False) -> dict:
        """Mean loss terms of the current epoch so far, for ``history``."""
        s = self.state
        return {"epoch": s.epoch + 1, "steps": s.step, "seconds": s.seconds, **({"partial": True} if partial else {}),
                **{k: v / s.position for k, v in s.epoch_sums.items()}}

    def _last_checkpoint(self) -> str:
        """Where a stopped run's last good state is, for its error message."""
        path = self.checkpoint_path
        return (f"the last good checkpoint is {path}" if path is not None and path.exists()
                else "no checkpoint was written yet")

    def _check_finite(self, terms: Mapping[str, torch.Tensor | float], share: float = 1.0) -> dict[str, float]:
        """The loss terms as numbers (distributed: averaged over the ranks' shards), or an error if one is not
        finite."""
        if "loss" not in terms:
            raise NesyError("step_fn must return a 'loss' term")
        values = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in terms.items()}
        values = self.dist.average(values, share)
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            last = self._last_checkpoint()
            raise NonFiniteLoss(f"step {self.state.step + 1}: loss term {', '.join(repr(k) for k in bad)} is "
                                f"{values[bad[0]]}; stopped before the update ({last}); "
                                f"try a smaller --lr")
        return values


def _plain_optimizer_state(state: dict) -> dict:
    """An optimizer state dict with plain-number hyperparameters (a captured run keeps them in device tensors), so
    that a checkpoint resumes anywhere, captured or not."""
    for group in state.get("param_groups", ()):  # (a stand-in optimizer may keep another layout)
        if isinstance(group.get("lr"), torch.Tensor):
            group["lr"] = float(group["lr"])
        if "betas" in group:
            group["betas"] = tuple(float(b) for b in group["betas"])
        if group.get("capturable"):
            group["capturable"] = False
    return state


def fit_together(trainers: list[Trainer]) -> list[LoopState]:
    """Train several runs side by side in this process, one update of each in turn (e.g. seeds of one command).

    On a GPU each run's captured updates go to its own CUDA stream, so their kernels overlap.  SIGINT/SIGTERM stops
    every run at its next update with a checkpoint each; the first error stops them all.
    """
    signals: list[int] = []

    def on_signal(signum, frame) -> None:  # noqa: ARG001
        signals.append(signum)
        for trainer in trainers:
            trainer._stop_signal = signum

    handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            handlers[sig] = signal.signal(sig, on_signal)
        except ValueError:
            pass
    interrupted: list[str] = []
    try:
        for trainer in trainers:
            trainer._own_signals = False
        running = [trainer.updates() for trainer in trainers]
        while running:
            for updates in list(running):
                try:
                    next(updates)
                except StopIteration:
                    running.remove(updates)
                except Interrupted as exc:
                    interrupted.append(str(exc))
                    running.remove(updates)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if interrupted:
        raise Interrupted("; ".join(interrupted))
    return [trainer.state for trainer in trainers]
