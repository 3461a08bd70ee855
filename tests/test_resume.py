"""No lost work: a run killed at an arbitrary step and resumed ends bit for bit like an uninterrupted one."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nesy_gedi.train.loop import LoopConfig, NonFiniteLoss, Trainer

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

MNIST_ADD = ["tasks/mnist_add.py", "--train-size", "3000", "--test-size", "300", "--epochs", "2",
             "--checkpoint-every", "9", "--no-progress", "--device", "cpu", "--seed", "3"]
GEDI = ["tasks/gedi_pretrain.py", "--steps", "60", "--batch-size", "64", "--train-size", "1000",
        "--gen-after", "20", "--aug-warmup", "10", "--sgld-steps", "3", "--sgld-buffer-size", "300",
        "--checkpoint-every", "7", "--no-progress", "--device", "cpu", "--seed", "1"]


def run(argv: list[str], out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, *argv, "--out", str(out), *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def steps_logged(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.endswith("}"))


def interrupt(argv: list[str], out: Path, at_step: int, sig: int) -> subprocess.CompletedProcess:
    """Start a run, send ``sig`` once it has logged ``at_step`` steps, and wait for it to end."""
    process = subprocess.Popen([PY, *argv, "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while steps_logged(out) < at_step and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, f"the run ended before step {at_step}: {process.stderr.read()}"
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def same_weights(a: Path, b: Path) -> None:
    wa, wb = torch.load(a, weights_only=True)["state_dict"], torch.load(b, weights_only=True)["state_dict"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs"


def same_results(a: Path, b: Path, keys: tuple[str, ...]) -> None:
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    for key in keys:
        assert ra[key] == rb[key], key
    history = lambda r: [{k: v for k, v in h.items() if k != "seconds"} for h in r["history"]]  # noqa: E731
    assert history(ra) == history(rb)


@pytest.mark.e2e
@pytest.mark.parametrize("task,keys,at_step", [
    (MNIST_ADD, ("sum_accuracy", "digit_accuracy", "steps", "train_examples", "concepts"), 61),
    (GEDI, ("nmi", "matched_accuracy", "steps", "cluster_to_label"), 33),
], ids=["mnist_add", "gedi_pretrain"])
def test_sigkill_and_resume_is_bitwise_identical(task, keys, at_step, tmp_path):
    reference = run(task, tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    killed = interrupt(task, tmp_path / "killed", at_step, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "results.json").exists()
    checkpoint = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    total = json.loads((tmp_path / "reference" / "results.json").read_text())["steps"]
    assert at_step <= checkpoint["step"] + 9 and checkpoint["step"] < total  # killed mid-run
    resumed = run(task, tmp_path / "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    same_weights(tmp_path / "reference" / "mnist_net.pt", tmp_path / "killed" / "mnist_net.pt")
    same_results(tmp_path / "reference" / "results.json", tmp_path / "killed" / "results.json", keys)
    ref_lines = (tmp_path / "reference" / "metrics.jsonl").read_text().splitlines()
    new_lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k != "examples_per_s"} for x in lines]  # noqa
    assert strip(ref_lines) == strip(new_lines)  # one line per step, none lost or doubled


@pytest.mark.e2e
def test_sigterm_saves_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    stopped = interrupt(MNIST_ADD, out, 20, signal.SIGTERM)
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert "SIGTERM at step" in stopped.stderr and "--resume" in stopped.stderr
    step = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert step >= 20 and not (out / "results.json").exists()
    resumed = run(MNIST_ADD, out, "--resume")
    assert resumed.returncode == 0 and (out / "results.json").exists()


def _toy_trainer(tmp_path: Path, step_fn, checkpoint_every: int = 1) -> Trainer:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(40, 3), torch.randn(40)

    def step(batch):
        return step_fn(((net(x[batch]).squeeze(1) - y[batch]) ** 2).mean())

    config = LoopConfig(out=tmp_path, epochs=3, batch_size=8, checkpoint_every=checkpoint_every, progress=False)
    return Trainer(config, 40, step, {"net": net}, optimizer, torch.Generator().manual_seed(0),
                   run_info={"kind": "toy"})


def test_non_finite_loss_stops_naming_step_and_term(tmp_path):
    calls = {"n": 0}

    def step_fn(loss):
        calls["n"] += 1
        bad = torch.tensor(math.nan) if calls["n"] == 7 else loss.detach()
        return {"loss": loss, "nll": loss.detach(), "gedi_gen": bad}

    trainer = _toy_trainer(tmp_path, step_fn)
    with pytest.raises(NonFiniteLoss, match=r"step 7: loss term 'gedi_gen' is nan.*last good checkpoint"):
        trainer.fit()
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 6
    assert all(torch.isfinite(v).all() for v in saved["modules"]["net"].values())


def test_snapshots_need_an_output_folder(tmp_path):
    trainer = _toy_trainer(tmp_path, lambda loss: {"loss": loss})
    trainer.out = None
    assert trainer.snapshot() == []
    trainer.out = tmp_path
    trainer.state.step = 12
    (path,) = trainer.snapshot()
    assert path == tmp_path / "snapshots" / "net_step0000012.pt"
    from nesy_gedi.train.checkpoint import network_state
    weights, meta = network_state(path, "toy_arch")  # the toy run names no architecture
    assert meta["step"] == 12 and meta["kind"] == "toy" and set(weights) == {"weight", "bias"}


def test_loop_counts_epochs_and_steps(tmp_path):
    trainer = _toy_trainer(tmp_path, lambda loss: {"loss": loss}, checkpoint_every=100)
    state = trainer.fit()
    assert state.step == 15 and state.epoch == 3 and len(state.history) == 3
    assert state.examples == 120
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 15
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # atomic writes leave no temp files


def test_resume_with_more_steps_extends_a_constant_schedule_run(tmp_path):
    from nesy_gedi.recipes import gedi_pretrain

    common = ["--batch-size", "16", "--train-size", "64", "--gen-after", "2", "--sgld-steps", "2",
              "--sample-steps", "2", "--sgld-buffer-size", "64", "--checkpoint-every", "2", "--no-progress", "--device", "cpu"]
    straight = gedi_pretrain.main(["--steps", "6", *common, "--snapshot-every", "2", "--out", str(tmp_path / "straight")])
    gedi_pretrain.main(["--steps", "3", *common, "--snapshot-every", "2", "--out", str(tmp_path / "extended")])
    extended = gedi_pretrain.main(["--steps", "6", "--resume", "--no-progress", "--snapshot-every", "2",
                                   "--out", str(tmp_path / "extended")])
    assert extended["steps"] == straight["steps"] == 6 and extended["args"]["steps"] == 6
    a = torch.load(tmp_path / "straight" / "mnist_net.pt", weights_only=True)
    b = torch.load(tmp_path / "extended" / "mnist_net.pt", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # snapshots: the network alone at steps 2, 4, 6, the same in both runs; the last one is the final network
    from nesy_gedi.train.checkpoint import network_state
    for run in ("straight", "extended"):
        names = sorted(p.name for p in (tmp_path / run / "snapshots").iterdir())
        assert names == ["net_step0000002.pt", "net_step0000004.pt", "net_step0000006.pt"], names
    for step in (2, 4, 6):
        sa, meta = network_state(tmp_path / "straight" / "snapshots" / f"net_step{step:07d}.pt", "mnist_cnn")
        sb, _ = network_state(tmp_path / "extended" / "snapshots" / f"net_step{step:07d}.pt", "mnist_cnn")
        assert meta["step"] == step and meta["kind"] == "gedi_pretrain"
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(torch.equal(sa[k], a["state_dict"][k]) for k in sa)
    assert not any(torch.equal(sa[k], network_state(tmp_path / "straight" / "snapshots" / "net_step0000002.pt",
                                                   "mnist_cnn")[0][k]) for k in sa if k.endswith("weight"))
    with pytest.raises(Exception, match="may only extend"):
        gedi_pretrain.main(["--steps", "4", "--resume", "--out", str(tmp_path / "extended")])
