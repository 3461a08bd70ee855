"""Training under ``torchrun`` with 2 processes on the CPU (gloo) against one process with the same global batch."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _run(argv: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("task, batch", [("addition", "31"), ("addition_gedi", "31"), ("gedi", "32")])
def test_two_ranks_take_the_updates_of_one_process(tmp_path, task, batch):
    """50 updates: the weights of 2 ranks equal those of 1 process.  Addition with a global batch of 31 (shards of 15
    and 16), alone and with GEDI's clustering terms on augmented digits; GEDI alone (pretraining).  The prior needs the
    assignment of the whole batch, and every image must get the views one process would draw for it."""
    worker = str(ROOT / "tests" / "ddp_worker.py")
    one = _run([sys.executable, worker, task, str(tmp_path / "one.pt"), "50", batch])
    assert one.returncode == 0, one.stderr[-2000:]
    two = _run([*TORCHRUN, worker, task, str(tmp_path / "two.pt"), "50", batch])
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert float((a - b).norm() / a.norm()) < 1e-8


def _train(out: Path, extra: list[str], distributed: bool) -> list[str]:
    argv = ["-m", "nesy_gedi.cli", "train", "--n-digits", "1", "--batch-size", "32", "--train-size", "2000",
            "--test-size", "200", "--device", "cpu", "--no-progress", "--out", str(out), *extra]
    return [*TORCHRUN, *argv] if distributed else [sys.executable, *argv]


def test_mnist_add_under_torchrun_logs_like_one_process(tmp_path):
    two = _run(_train(tmp_path / "two", ["--max-steps", "12"], True))
    assert two.returncode == 0, two.stderr[-2000:]
    one = _run(_train(tmp_path / "one", ["--max-steps", "12"], False))
    assert one.returncode == 0, one.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    single = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and {(line["world_size"], line["rank_batch"]) for line in lines} == {(2, 16)}
    for a, b in zip(single[:8], lines[:8]):  # float32: the shards' summation order shows only later
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert results["world_size"] == 2 and results["rank_batch_size"] == 16 and results["steps"] == 12


def test_two_nodes_meet_by_rendezvous_and_train_like_one_process(tmp_path):
    """Two torchrun agents (``--nnodes=2``, one process each, c10d rendezvous on localhost) stand in for two
    machines."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    agents = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", f"--node-rank={node}",
         "--rdzv-backend=c10d", f"--rdzv-endpoint=localhost:{port}", "--rdzv-id=nodes",
         *_train(tmp_path / f"node{node}", ["--max-steps", "10"], False)[1:]],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    for agent in agents:
        assert agent.wait(timeout=300) == 0, agent.stderr.read()[-2000:]
    one = _run(_train(tmp_path / "one", ["--max-steps", "10"], False))
    assert one.returncode == 0, one.stderr[-2000:]
    assert not (tmp_path / "node1").exists()  # the second machine's rank writes nothing
    lines = [json.loads(line) for line in (tmp_path / "node0" / "metrics.jsonl").read_text().splitlines()]
    single = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 10 and {(line["world_size"], line["rank_batch"]) for line in lines} == {(2, 16)}
    for a, b in zip(single[:8], lines[:8]):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_sigterm_on_one_rank_stops_both_with_a_checkpoint_that_resumes_on_one_process(tmp_path):
    out = tmp_path / "run"
    command = _train(out, ["--epochs", "20", "--max-steps", "600", "--checkpoint-every", "1000"], True)
    process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics, deadline = out / "metrics.jsonl", time.time() + 240
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 20):
        time.sleep(0.5)
    assert process.poll() is None, "the run ended before it could be stopped"
    workers = [p for child in _children(process.pid) for p in [child, *_children(child)]]
    ranks = [p for p in workers if "nesy_gedi.cli" in Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ")]
    assert len(ranks) == 2, workers
    os.kill(max(ranks), signal.SIGTERM)  # one rank only
    _, stderr = process.communicate(timeout=120)
    assert "interrupted: SIGTERM" in stderr
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    stopped = checkpoint["step"]
    assert 20 <= stopped < 600
    resumed = _run([sys.executable, "-m", "nesy_gedi.cli", "train", "--resume", "--out", str(out), "--no-progress",
                    "--device", "cpu"])  # one process continues what two started: the global batch is the same
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "results.json").read_text())["steps"] == 600
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == list(range(1, 601))


def test_batch_mean_regularisers_under_torchrun_are_refused_in_one_line(tmp_path):
    refused = _run(_train(tmp_path / "entropy", ["--max-steps", "2", "--entropy-weight", "1"], True))
    assert refused.returncode != 0
    assert "error: --entropy-weight under torchrun is not supported yet" in refused.stderr


def test_ranks_whose_circuits_differ_stop_with_one_line(tmp_path):
    """Every rank compiles its own circuits; training starts only if they agree (here they are made to differ)."""
    script = tmp_path / "differ.py"
    script.write_text(
        "import torch\n"
        "from nesy_gedi.train.distributed import Distributed\n"
        "ranks = Distributed.from_environment(torch.device('cpu'))\n"
        "ranks.same('the circuit', 'same')\n"
        "try:\n"
        "    ranks.same('the circuit', f'digest of rank {ranks.rank}')\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    run = _run(TORCHRUN + [str(script)])
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("the circuit differs between processes (rank 0 and rank(s) 1)") == 2, run.stdout
