"""The networks' own optimizers and schedulers, stepped together (DeepProbLog's ``model.optimizer``), and
DeepProbLog's ``Optimizer``/``SGD`` names: ``SGD`` trains learnable ``t(_)`` probabilities, not supported yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._unsupported import refuse

if TYPE_CHECKING:
    from .model import Model

LEARNABLE = ("learnable probabilities t(_) (DeepProbLog's SGD on the program's parameters)",
             "give fixed probabilities, or a neural predicate whose network learns them")


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
    """DeepProbLog's default optimizer: it steps the networks' own optimizers (the model has no learnable
    probabilities here)."""

    def add_parameter_gradient(self, k, grad) -> None:
        refuse(*LEARNABLE)


class SGD(Optimizer):
    """DeepProbLog's optimizer of learnable probabilities: not supported yet."""

    def __init__(self, model: "Model", param_lr: float) -> None:
        refuse(*LEARNABLE)

    def get_lr(self) -> float:
        refuse(*LEARNABLE)
