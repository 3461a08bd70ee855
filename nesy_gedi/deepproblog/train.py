"""``train_model``: DeepProbLog's training entry point, run by nesy_gedi's one training loop.

Each batch of the :class:`DataLoader` is one grouped, batched evaluation of
its queries (see :class:`~nesy_gedi.deepproblog.model.Model`), the loss is
DeepProbLog's cross-entropy against each query's target probability, averaged
over the batch, and the networks' own optimizers and schedulers are stepped as
in DeepProbLog.  Logging follows DeepProbLog (``Iteration: ... Average Loss``
every ``log_iter`` batches, ``test`` every ``test_iter``).  Extra keyword
arguments of ours: ``out`` (a folder for checkpoints and ``metrics.jsonl``),
``checkpoint_every`` (steps) and ``resume`` (continue from ``out``'s checkpoint:
networks, optimizers, schedulers, data order and position, RNG states).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import DataError, NotSupportedError
from ..train.checkpoint import load_checkpoint
from ..train.loop import CHECKPOINT, LoopConfig, LoopState, Trainer
from .dataset import DataLoader
from .model import Model
from .utils.logger import Logger
from .utils.stop_condition import EpochStop, StopCondition


LOSSES = ("cross_entropy", "mse")
UNBOUNDED_EPOCHS = 10 ** 9  # a stop condition other than an epoch count decides when training ends


def cross_entropy(log_p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-(t log p + (1-t) log(1-p))`` per query, from ``log p`` (exact where ``t`` is 0 or 1)."""
    log_not_p = torch.log(-torch.expm1(log_p.clamp(max=-1e-12)))
    positive = torch.where(target > 0, target * log_p, torch.zeros_like(log_p))
    negative = torch.where(target < 1, (1 - target) * log_not_p, torch.zeros_like(log_p))
    return -(positive + negative)


class TrainObject:
    """Training state and log of one :func:`train_model` call (DeepProbLog's ``TrainObject``)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.logger = Logger()
        self.accumulated_loss = 0.0
        self.i = 1
        self.epoch = 0
        self.start = 0.0
        self.prev_iter_time = 0.0
        self.hooks: list[tuple[int, Callable[["TrainObject"], None]]] = []
        self.interrupt = False
        self.trainer: Trainer | None = None

    def get_loss(self, batch: list, backpropagate_loss: str | Callable) -> torch.Tensor:
        """The batch's mean loss against each query's target probability: DeepProbLog's cross-entropy, or
        ``mse``, the squared difference of the probabilities; ``backpropagate_loss`` is the loss's name or
        DeepProbLog's function of that name (``GraphSemiring.cross_entropy``, ``.mse``)."""
        loss_function_name = getattr(backpropagate_loss, "__name__", backpropagate_loss)
        if loss_function_name not in LOSSES:
            raise NotSupportedError(f"not supported: loss {loss_function_name!r}; use one of {', '.join(LOSSES)}")
        log_p, kept = self.model.log_likelihoods(batch)
        if not kept:
            return torch.zeros((), requires_grad=True)
        target = torch.tensor([float(batch[i].p) for i in kept], dtype=log_p.dtype, device=log_p.device)
        if loss_function_name == "mse":
            return (log_p.exp() - target).pow(2).mean()
        return cross_entropy(log_p, target).mean()

    def train(self, loader: DataLoader, stop_criterion: int | StopCondition, verbose: int = 1,
              loss_function_name: str = "cross_entropy", with_negatives: bool = False, log_iter: int = 100,
              initial_test: bool = True, **kwargs: Any) -> Logger:
        if loss_function_name not in LOSSES:
            raise NotSupportedError(f"not supported: loss_function_name={loss_function_name!r}; use one of "
                                    f"{', '.join(LOSSES)}")
        if with_negatives:
            raise NotSupportedError("not supported: with_negatives=True")
        if isinstance(stop_criterion, int) and not isinstance(stop_criterion, bool):
            stop_criterion = EpochStop(stop_criterion)
        if not isinstance(stop_criterion, StopCondition):
            raise NotSupportedError(f"not supported: stop condition {stop_criterion!r}; pass a number of epochs or "
                                    "a StopCondition")
        epochs = stop_criterion.max_epoch if isinstance(stop_criterion, EpochStop) else UNBOUNDED_EPOCHS
        checkpoint = None
        if kwargs.get("resume"):
            if kwargs.get("out") is None:
                raise DataError("train_model(resume=True) needs out=, the folder of the run to continue")
            path = Path(kwargs["out"]) / CHECKPOINT
            if not path.exists():
                raise DataError(f"train_model(resume=True): no checkpoint {path} to continue from")
            checkpoint = load_checkpoint(path, "deepproblog")
            initial_test = False
        test, test_iter = kwargs.get("test"), kwargs.get("test_iter", 1000)
        snapshot_name, snapshot_iter = kwargs.get("snapshot_name"), kwargs.get("snapshot_iter")
        if test is not None and initial_test:
            value = test(self.model)
            self.logger.log_list(self.i, value)
            print("Test: ", value)
        if verbose:
            print("Training ", stop_criterion)
        config = LoopConfig(out=kwargs.get("out"), epochs=epochs, batch_size=loader.batch_size, progress=False,
                            checkpoint_every=kwargs.get("checkpoint_every"), description="train_model")
        steps_per_epoch = config.steps_per_epoch(loader.length)
        self.start = self.prev_iter_time = epoch_start = time.time()

        def step(indices: torch.Tensor) -> dict[str, torch.Tensor]:
            self.model.train()
            return {"loss": self.get_loss([loader.dataset[i] for i in indices.tolist()], loss_function_name)}

        def after_step(state: LoopState, terms: dict[str, float]) -> None:
            nonlocal epoch_start
            self.i = state.step + 1
            self.accumulated_loss += terms["loss"]
            self._log(verbose, log_iter, test, test_iter, snapshot_name, snapshot_iter)
            for every, hook in self.hooks:
                if self.i % every == 0:
                    hook(self)
            if state.order is None:  # an epoch ended
                self.epoch = state.epoch
                if verbose and steps_per_epoch > log_iter:
                    print("Epoch time: ", time.time() - epoch_start)
                if state.epoch < epochs:
                    epoch_start = time.time()
                    self.model.optimizer.step_epoch()
                    if verbose and steps_per_epoch > log_iter:
                        print("Epoch", state.epoch + 1)

        modules = {name: n.network_module for name, n in self.model.networks.items()}
        if self.model.nesy.learnable is not None:
            modules["learnable_probabilities"] = self.model.nesy.learnable
        self.trainer = Trainer(config, loader.length, step, modules, self.model.optimizer, torch.Generator(),
                               extra_state={"loader": loader}, run_info={"kind": "deepproblog"},
                               order_fn=loader.epoch_order, after_step=after_step,
                               stop_when=lambda state: self.interrupt or stop_criterion.is_stop(self))
        self.model.optimizer.step_epoch()
        if checkpoint is not None:  # after step_epoch: the checkpoint's scheduler state wins
            self.trainer.load_state_dict(checkpoint)
            self.i = self.trainer.state.step
            if verbose:
                print(f"Resuming at iteration {self.i} (epoch {self.trainer.state.epoch + 1})")
        elif verbose and steps_per_epoch > log_iter:
            print("Epoch", 1)
        self.trainer.fit()
        self.epoch = self.trainer.state.epoch
        if snapshot_name is not None:
            self.model.save_state(f"{snapshot_name}_final.mdl")
        return self.logger

    def _log(self, verbose: int, log_iter: int, test, test_iter: int, snapshot_name, snapshot_iter) -> None:
        now = time.time()
        if snapshot_name is not None and snapshot_iter is not None and self.i % snapshot_iter == 0:
            self.model.save_state(f"{snapshot_name}_iter_{self.i}.mdl")
        if verbose and self.i % log_iter == 0:
            print("Iteration: ", self.i, "\ts:%.4f" % (now - self.prev_iter_time),
                  "\tAverage Loss: ", self.accumulated_loss / log_iter)
            self.logger.log("time", self.i, now - self.start)
            self.logger.log("loss", self.i, self.accumulated_loss / log_iter)
            self.accumulated_loss = 0.0
            self.prev_iter_time = now
        if test is not None and self.i % test_iter == 0:
            value = test(self.model)
            self.logger.log_list(self.i, value)
            print("Test: ", value)

    def get_loss_with_negatives(self, batch: list, backpropagate_loss) -> torch.Tensor:
        raise NotSupportedError("not supported: with_negatives=True (negative examples from other outputs); "
                                "add the negative queries to the dataset with p=0")

    def log(self, snapshot_iter=None, log_iter: int = 100, test_iter: int = 1000, verbose: int = 1,
            **kwargs: Any) -> None:
        """Log the loss every ``log_iter`` iterations, run ``test`` every ``test_iter`` and save a snapshot every
        ``snapshot_iter`` (with ``snapshot_name``), as training does after each update."""
        self._log(verbose, log_iter, kwargs.get("test"), test_iter, kwargs.get("snapshot_name"), snapshot_iter)

    def write_to_file(self, *args, **kwargs) -> None:
        self.logger.write_to_file(*args, **kwargs)


def train_model(model: Model, loader: DataLoader, stop_condition: int | StopCondition, **kwargs: Any) -> TrainObject:
    """Train ``model`` on ``loader`` for ``stop_condition`` epochs; DeepProbLog's signature and keywords."""
    train_object = TrainObject(model)
    train_object.train(loader, stop_condition, **kwargs)
    return train_object
