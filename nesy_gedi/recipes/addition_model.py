"""The MNIST-addition program and its batched query: the model every addition recipe and benchmark builds."""

from __future__ import annotations

import torch

from ..data import AdditionDataset
from ..data.addition import addition_query
from ..model import NeSyModel
from ..networks import OneHot
from ..programs import program_path


def build_model(n_digits: int, net: torch.nn.Module, n_concepts: int = 10) -> NeSyModel:
    """``mnist_add.pl`` for N=1, ``multi_add.pl`` (sum digits observed through ``OneHot``) for N>1;
    with ``n_concepts`` < 10 (N=1), ``mnist_add.pl`` with digits ``0..n_concepts-1``."""
    if n_digits == 1:
        program = program_path("mnist_add.pl")
        if n_concepts != 10:
            if not 1 <= n_concepts < 10:
                raise ValueError(f"n_concepts must be in 1..10, got {n_concepts}")
            program = program.read_text().replace("[0..9]", f"[0..{n_concepts - 1}]")
        return NeSyModel(program, {"mnist_net": net})
    if n_concepts != 10:
        raise ValueError("fewer than 10 digit values need --n-digits 1")
    return NeSyModel(program_path("multi_add.pl"), {"mnist_net": net, "sum_digit": OneHot(10)})


def addition_signature(n_digits: int) -> tuple[str, tuple[str, ...]]:
    """The batched addition query and the names of its inputs (one template per N)."""
    if n_digits == 1:
        return "addition(X, Y, Z)", ("X", "Y")
    query, xs, ys, zs = addition_query(n_digits)
    return query, (*xs, *ys, *zs)


def addition_inputs(data: AdditionDataset, examples: torch.Tensor, device,
                    images: torch.Tensor | None = None) -> tuple[str, dict[str, torch.Tensor]]:
    """The query and its input tensors for a batch of addition examples."""
    if images is None:
        images = data.images(examples, device)
    if data.n_digits == 1:
        return "addition(X, Y, Z)", {"X": images[:, 0, 0], "Y": images[:, 1, 0]}
    query, xs, ys, zs = addition_query(data.n_digits)
    inputs = {x: images[:, 0, i] for i, x in enumerate(xs)}
    inputs.update({y: images[:, 1, i] for i, y in enumerate(ys)})
    sum_digits = data.on("sum_digits", examples.device)[examples].to(images.device)
    inputs.update({z: sum_digits[:, i] for i, z in enumerate(zs)})
    return query, inputs


def batch_forward(model: NeSyModel, data: AdditionDataset, examples: torch.Tensor, device,
                  images: torch.Tensor | None = None, answers: torch.Tensor | None = None):
    """``([batch] log P(observed sum), QueryResult, inputs)`` of one forward (``images``: e.g. augmented ones;
    ``answers``: N=1, the examples' :func:`observed_sum_indices` if already known, e.g. on the device)."""
    query, inputs = addition_inputs(data, examples, device, images)
    result = model(query, inputs)
    if data.n_digits == 1:
        if answers is None:
            answers = observed_sum_indices(model, data, examples.cpu())
        return result.select(answers), result, inputs
    return result.log_probs[:, 0], result, inputs


def observed_sum_indices(model: NeSyModel, data: AdditionDataset, examples: torch.Tensor) -> torch.Tensor:
    """N=1: the index of each example's observed sum among the answers of ``addition(X, Y, Z)``."""
    return model.answer_indices("addition(X, Y, Z)", ("X", "Y"), [int(s) for s in data.sums[examples]])
