"""``Network``: a torch module with its name, optimizer and scheduler, as in DeepProbLog.

DeepProbLog networks return *probabilities* (a softmax for an annotated
disjunction, a sigmoid for a neural fact).  :class:`ProbabilityOutputs` turns
them into the logits :class:`~nesy_gedi.NeSyModel` expects (``log p`` for a
softmax, ``log p - log(1-p)`` for a sigmoid), so the probabilities in the
circuit are the network's own.
"""

from __future__ import annotations

from typing import IO, Any, Iterator

import torch


_TINY = torch.finfo(torch.float32).tiny


def get_tensor_function(network: "Network"):
    """A function of tensor terms that returns the tensors they name in ``network``'s model."""
    def tensor_function(*args):
        return tuple(network.model.get_tensor(arg) for arg in args)

    return tensor_function


class Network:
    """Wraps a torch module for use in a :class:`~nesy_gedi.deepproblog.model.Model`.

    ``batching=True`` calls the module once on stacked inputs; ``batching=False``
    calls it once per input, as DeepProbLog does.  ``k`` (DeepProbLog's top-k outputs, used by its
    approximate engine) is accepted and kept; inference here stays exact, over every output.
    """

    def __init__(self, network_module: torch.nn.Module, name: str, optimizer: torch.optim.Optimizer | None = None,
                 scheduler: Any = None, k: int | None = None, batching: bool = False) -> None:
        self.network_module = network_module
        self.name = name
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.k = k
        self.batching = batching
        self.model = None
        self.eval_mode = False
        self.is_cuda = False
        self.device = None
        self.det = False

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.network_module.parameters()

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        if self.optimizer is not None:
            self.optimizer.step()

    def step_epoch(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()

    def save(self, location: str | IO[bytes], complete: bool = False) -> None:
        """``{"model_state_dict": ...}`` (plus optimizer and scheduler when ``complete``), DeepProbLog's format."""
        state = {"model_state_dict": self.network_module.state_dict()}
        if complete and self.optimizer is not None:
            state["optimizer_state_dict"] = self.optimizer.state_dict()
        if complete and self.scheduler is not None:
            state["scheduler_state_dict"] = self.scheduler.state_dict()
        torch.save(state, location)

    def load(self, location: str | IO[bytes]) -> None:
        state = torch.load(location, map_location=self.device_of())
        self.network_module.load_state_dict(state["model_state_dict"])
        if "optimizer_state_dict" in state and self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer_state_dict"])
        if "scheduler_state_dict" in state and self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler_state_dict"])

    def device_of(self) -> torch.device:
        parameter = next(iter(self.network_module.parameters()), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def cuda(self, device=None) -> "Network":
        if torch.cuda.is_available():
            self.is_cuda, self.device = True, device
            self.network_module.cuda(device)
        else:
            print("CUDA is unavailable")
        return self

    def eval(self) -> None:
        self.network_module.eval()
        self.eval_mode = True

    def train(self) -> None:
        self.network_module.train()
        self.eval_mode = False

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The module's outputs for stacked inputs ``[batch, ...]`` (per input when not ``batching``)."""
        if self.batching:
            return self.network_module(*inputs)
        outputs = [self.network_module(*(x[i] for x in inputs)) for i in range(len(inputs[0]))]
        return torch.cat([o.reshape(1, -1) for o in outputs], dim=0)

    def get_hyperparameters(self) -> dict:
        return {"name": self.name, "module": str(self.network_module), "optimizer": str(self.optimizer),
                "batching": self.batching}


class ProbabilityOutputs:
    """Calls a :class:`Network` and converts its probabilities to logits for the circuit."""

    def __init__(self, network: Network, is_fact: bool) -> None:
        self.network, self.is_fact = network, is_fact

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        p = self.network(*inputs)
        if self.is_fact:
            p = p.reshape(len(inputs[0]))
            return torch.log(p.clamp_min(_TINY)) - torch.log((1 - p).clamp_min(_TINY))
        return torch.log(p.clamp_min(_TINY))
