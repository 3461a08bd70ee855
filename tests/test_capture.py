"""Captured training on the CPU: the bookkeeping of CUDA-graph updates (terms summed on the device and read every
``log_every`` updates), device-side random draws, and ``--seeds``; the graphs themselves are in test_cuda.py."""

import json
import math

import pytest
import torch

from nesy_gedi import draws
from nesy_gedi.augment import DigitAugment
from nesy_gedi.errors import DataError
from nesy_gedi.gedi import SaturationMonitor
from nesy_gedi.recipes import gedi_pretrain
from nesy_gedi.train.capture import StepGraphs, TensorHyperparameters
from nesy_gedi.train.loop import LoopConfig, NonFiniteLoss, Trainer


class LinearStep:
    """A capturable step: squared error of a linear model on fixed data; ``poison`` makes update N's loss NaN."""

    def __init__(self, net: torch.nn.Module, poison: int | None = None) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 3, generator=generator)
        self.y = torch.randn(64, 1, generator=generator)
        self.net, self.poison, self.step = net, poison, 0
        self.keys: list = []

    def capture_key(self, step: int):
        self.keys.append(step)
        return "linear"

    def prepare(self, step: int) -> None:
        self.step = step

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        error = (self.net(self.x[batch]) - self.y[batch]).pow(2).mean()
        if self.poison is not None and self.step == self.poison:
            error = error * float("nan")
        return {"loss": error, "mse": error.detach(), "constant": 2.0}


def _train(tmp_path, capture: bool, poison: int | None = None, steps: int = 20):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    step = LinearStep(net, poison)
    config = LoopConfig(out=tmp_path, epochs=10, batch_size=8, max_steps=steps, log_every=5, progress=False,
                        capture=capture)
    trainer = Trainer(config, 64, step, {"net": net}, optimizer, torch.Generator().manual_seed(1))
    state = trainer.fit()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    return torch.cat([p.detach().flatten() for p in net.parameters()]), state, lines, trainer


def test_captured_bookkeeping_trains_like_the_eager_loop(tmp_path):
    eager, eager_state, eager_lines, _ = _train(tmp_path / "eager", capture=False)
    captured, state, lines, trainer = _train(tmp_path / "captured", capture=True)
    assert torch.equal(captured, eager)  # the same updates; only the logging differs
    assert trainer.graphs is not None and not trainer.graphs.replay  # no CUDA: every update runs eagerly
    assert len(eager_lines) == 20
    assert [line["step"] for line in lines] == [1, 5, 8, 10, 15, 16, 20]  # log_every, epoch ends (8 updates)
    assert [line["updates"] for line in lines] == [1, 4, 3, 2, 5, 1, 4]
    mean = sum(line["mse"] for line in eager_lines[10:15]) / 5  # updates 11-15
    assert lines[4]["mse"] == pytest.approx(mean, rel=1e-12) and lines[4]["constant"] == 2.0
    for eager_epoch, epoch in zip(eager_state.history, state.history):
        assert epoch["mse"] == pytest.approx(eager_epoch["mse"], rel=1e-12)


def test_a_captured_run_names_the_interval_of_a_non_finite_loss(tmp_path):
    with pytest.raises(NonFiniteLoss, match=r"updates 6-8: loss term 'loss', 'mse' was not finite"):
        _train(tmp_path, capture=True, poison=6)


def test_step_graphs_sum_terms_per_key_and_reset_on_read():
    net = torch.nn.Linear(3, 1)
    step = LinearStep(net)
    graphs = StepGraphs(step, torch.optim.SGD(net.parameters(), lr=0.1), torch.device("cpu"))
    for i in range(3):
        graphs(torch.arange(8), i)
    means, counts, bad = graphs.read()
    assert counts == {"loss": 3, "mse": 3, "constant": 3} and not bad and means["constant"] == 2.0
    assert graphs.read() == ({}, {}, [])
    assert step.keys == [0, 1, 2]


def test_tensor_hyperparameters_follow_a_one_cycle_schedule_or_refuse():
    net = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=10)
    hyper = TensorHyperparameters(optimizer, torch.device("cpu"), vary_beta1=True)
    reference = torch.optim.Adam(torch.nn.Linear(3, 1).parameters(), lr=1e-3)
    reference_scheduler = torch.optim.lr_scheduler.OneCycleLR(reference, 1e-2, total_steps=10)
    for _ in range(4):
        optimizer.param_groups[0]["capturable"] = False  # (no CUDA here: the schedule alone is checked)
        optimizer.step()
        reference.step()
        scheduler.step()
        reference_scheduler.step()
        hyper.refresh()
        group, expected = optimizer.param_groups[0], reference.param_groups[0]
        assert isinstance(group["lr"], torch.Tensor) and float(group["lr"]) == pytest.approx(expected["lr"])
        assert float(group["betas"][0]) == pytest.approx(expected["betas"][0]) and not group["foreach"]
    fixed = torch.optim.Adam(net.parameters(), lr=1e-3)
    fixed_scheduler = torch.optim.lr_scheduler.OneCycleLR(fixed, 1e-2, total_steps=10)
    fixed_hyper = TensorHyperparameters(fixed, torch.device("cpu"))  # betas held constant
    fixed.param_groups[0]["capturable"] = False
    fixed.step()
    fixed_scheduler.step()
    with pytest.raises(Exception, match="changed the optimizer's betas.*--no-compile"):
        fixed_hyper.refresh()


def test_draws_with_a_cpu_generator_are_those_of_torch():
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(draws.rand((4, 2), a), torch.rand((4, 2), generator=b))
    assert torch.equal(draws.randn(5, a, "cpu"), torch.randn(5, generator=b))
    assert torch.equal(draws.randperm(9, a), torch.randperm(9, generator=b))
    assert not draws.on_device(a) and draws.device_generator("cpu", 0, a) is a


def test_augmentation_strength_as_a_tensor_equals_the_scaled_augmentation():
    images = torch.rand(16, 1, 28, 28) * 2 - 1
    augment = DigitAugment()
    for strength in (0.0, 0.3, 1.0):
        scaled = augment.scaled(strength)(images, torch.Generator().manual_seed(0))
        tensor = augment(images, torch.Generator().manual_seed(0), strength=torch.tensor(strength))
        assert torch.allclose(tensor, scaled, atol=1e-5), strength


def test_saturation_counts_updates_of_interval_means():
    monitor = SaturationMonitor(-5.0, window=100)
    monitor.observe(-4.99, -5.0, 5.0, at_floor=1.0, updates=50)
    monitor.observe(-1.0, -1.0, 0.0, at_floor=0.0, updates=50)
    assert monitor.fraction_at_floor() == 0.5 and monitor.summary()["updates"] == 100
    monitor.observe(-1.0, -1.0, 0.0, at_floor=0.0, updates=50)  # the oldest interval leaves the window
    assert monitor.fraction_at_floor() == 0.0
    state = monitor.state_dict()
    again = SaturationMonitor(-5.0, window=100)
    again.load_state_dict(state)
    assert again.summary() == monitor.summary()
    old = SaturationMonitor(-5.0, window=100)
    old.load_state_dict({"rows": [(-4.99, -5.0, 5.0), (-1.0, -1.0, 0.0)]})  # a checkpoint of an older version
    assert old.fraction_at_floor() == 0.5


def test_seeds_train_each_seed_as_its_own_run(tmp_path):
    common = ["--steps", "12", "--gen-after", "6", "--sgld-steps", "2", "--batch-size", "32", "--train-size", "2000",
              "--device", "cpu", "--no-progress"]
    summary = gedi_pretrain.main([*common, "--seeds", "0", "1", "--out", str(tmp_path / "both")])
    single = gedi_pretrain.main([*common, "--seed", "1", "--out", str(tmp_path / "one")])
    assert summary["per_seed"]["nmi"][1] == single["nmi"]
    assert summary["mean"]["nmi"] == pytest.approx(sum(summary["per_seed"]["nmi"]) / 2)
    assert math.isfinite(summary["std"]["nmi"])
    assert json.loads((tmp_path / "both" / "seeds.json").read_text()) == summary
    assert (tmp_path / "both" / "seed0" / "results.json").exists()
    with pytest.raises(DataError, match="--seeds names seed 1 more than once"):
        gedi_pretrain.main([*common, "--seeds", "1", "0", "1", "--out", str(tmp_path / "twice")])
