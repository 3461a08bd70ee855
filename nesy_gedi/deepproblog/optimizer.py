"""The networks' own optimizers and schedulers, stepped together (DeepProbLog's ``model.optimizer``), and
DeepProbLog's ``Optimizer`` (learnable ``t(_)`` probabilities stay as they are) and ``SGD`` (they are trained:
``p -= param_lr * d loss / d p``, clamped to ``[0, 1]``, each disjunction's normalised, as DeepProbLog does)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .model import Model


class NetworkOptimizers:
    """``zero_grad``/``step`` over every network's optimizer; a torch-optimizer-like view for the training loop."""

    def __init__(self, model: "Model") -> None:
        self.model = model
        self.epoch = 0

    def _optimizers(self):
        return {name: n.optimizer for name, n in self.model.networks.items() if n.optimizer is not None}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for network in self.model.networks.values():
            network.zero_grad(set_to_none=set_to_none)
        learnable = self.model.nesy.learnable
        if learnable is not None:
            learnable.probability_grad = None

    def step(self) -> None:
        for network in self.model.networks.values():
            network.step()

    def step_epoch(self) -> None:
        self.epoch += 1
        for network in self.model.networks.values():
            network.step_epoch()

    @property
    def param_groups(self) -> list[dict]:
        groups = [g for opt in self._optimizers().values() for g in opt.param_groups]
        return groups or [{"lr": 0.0}]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "optimizers": {k: o.state_dict() for k, o in self._optimizers().items()},
                "schedulers": {k: n.scheduler.state_dict() for k, n in self.model.networks.items()
                               if n.scheduler is not None}}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        for name, optimizer in self._optimizers().items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler_state in state["schedulers"].items():
            self.model.networks[name].scheduler.load_state_dict(scheduler_state)


class Optimizer(NetworkOptimizers):
    """DeepProbLog's default optimizer: it steps the networks' own optimizers; learnable probabilities keep their
    values."""

    def add_parameter_gradient(self, k: int, grad: torch.Tensor) -> None:
        """Ignored, as in DeepProbLog's ``Optimizer`` (use :class:`SGD` to train the probabilities)."""


class SGD(Optimizer):
    """DeepProbLog's optimizer of learnable probabilities: the networks' optimizers, then gradient descent with
    ``param_lr`` on every probability (clamped to ``[0, 1]``, each annotated disjunction's normalised)."""

    def __init__(self, model: "Model", param_lr: float) -> None:
        super().__init__(model)
        self.param_lr = param_lr
        self._extra: dict[int, float] = {}
        if model.nesy.learnable is not None:
            model.nesy.learnable.track_probability_gradients = True

    def get_lr(self) -> float:
        return self.param_lr

    def add_parameter_gradient(self, k: int, grad: torch.Tensor | float) -> None:
        """Add ``grad`` to probability ``k``'s gradient for the next :meth:`step`."""
        self._extra[k] = self._extra.get(k, 0.0) + float(grad)

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        self._extra.clear()

    def step(self) -> None:
        super().step()
        learnable = self.model.nesy.learnable
        if learnable is None:
            return
        extra = torch.zeros(len(learnable.labels), dtype=torch.float64)
        for k, g in self._extra.items():
            extra[k] += g
        learnable.sgd_step_(self.get_lr(), extra)
        self._extra.clear()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "param_lr": self.param_lr}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.param_lr = state.get("param_lr", self.param_lr)
