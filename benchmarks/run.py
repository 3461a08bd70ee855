"""nesy_gedi vs DeepProbLog 2.1.0 on MNIST addition, on this machine, in one run.

    python benchmarks/run.py                      # N = 1 and 2, one epoch each
    python benchmarks/run.py --n-digits 1 --train-examples 3000 --test-examples 500

DeepProbLog is installed by this script into its own venv (``--dpl-venv``,
default ``benchmarks/.deepproblog-venv``), never into ours; MNIST is copied
there as plain IDX files from ``--data-dir``/``$NESY_GEDI_DATA``.  Both systems
train the same CNN (DeepProbLog's MNIST_Net = our MnistCNN) with Adam for the
same number of examples from the same torch seed, each with its own default
batch size (DeepProbLog 2, nesy_gedi 32).  Writes ``benchmarks/results.json``
and ``benchmarks/RESULTS.md`` (with the circuit table of ``circuits.py`` if
``circuits.json`` exists).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from nesy_gedi import NeSyModel
from nesy_gedi.commands import add_common_arguments, nonnegative_int, output_dir, positive_int, run_command
from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.data.mnist import resolve_data_dir
from nesy_gedi.errors import DataError
from nesy_gedi.networks import MnistCNN
from nesy_gedi.peers import deepproblog_with_mnist
from nesy_gedi.recipes import addition
from nesy_gedi.train.checkpoint import load_weights, network_state
from nesy_gedi.train.evaluate import evaluate_addition

ROOT = Path(__file__).resolve().parents[1]

def run_deepproblog(python: Path, n: int, train_examples: int | None, test_examples: int | None, seed: int) -> dict:
    command = [str(python), str(ROOT / "benchmarks" / "deepproblog_worker.py"), "--n-digits", str(n), "--seed", str(seed)]
    if train_examples:
        command += ["--train-examples", str(train_examples)]
    if test_examples:
        command += ["--test-examples", str(test_examples)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT / "benchmarks")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"the DeepProbLog run failed (exit {done.returncode}): {last}")
    return json.loads(lines[-1])


@torch.no_grad()
def evaluate_through_program(model: NeSyModel, data: AdditionDataset, batch_size: int = 1000) -> float:
    """N=1 sum accuracy with the most probable sum under the program (as DeepProbLog evaluates)."""
    correct = 0
    for examples in data.batches(batch_size, shuffle=False):
        images = data.images(examples)
        result = model("addition(X, Y, Z)", {"X": images[:, 0, 0], "Y": images[:, 1, 0]})
        best = torch.tensor([result.answers[i][0] for i in result.log_probs.argmax(1).tolist()])
        correct += int((best == data.sums[examples].long()).sum())
    return correct / len(data)


def run_nesy_gedi(n: int, train_examples: int | None, test_examples: int | None, seed: int, data_dir,
                  device: str = "cpu", run_dir: Path = Path("runs/benchmark")) -> dict:
    argv = ["--n-digits", str(n), "--epochs", "1", "--seed", str(seed), "--no-progress", "--out", str(run_dir),
            "--device", device]
    if data_dir:
        argv += ["--data-dir", str(data_dir)]
    if train_examples:
        argv += ["--train-size", str(train_examples)]
    if test_examples:
        argv += ["--test-size", str(test_examples)]
    results = addition.main(argv)
    compile_s = sum(c["ground_s"] + c["sdd_s"] + c["circuit_s"] for c in results["circuits"].values())
    row = {
        "system": "nesy_gedi",
        "n_digits": n,
        "train_examples": results["train_examples"],
        "train_examples_per_s": results["train_examples_per_s"],
        "compile_seconds": compile_s,
        "sum_accuracy": results["sum_accuracy"],
        "digit_accuracy": results["digit_accuracy"],
    }
    # Test evaluation throughput: N=1 through the program (answer = most probable sum),
    # N>1 from the most probable digits (multi_add.pl observes the sum digits).
    net = MnistCNN()
    weights, _ = network_state(run_dir / "mnist_net.pt", "mnist_cnn")
    load_weights(net, weights, run_dir / "mnist_net.pt", "mnist_cnn")
    test = AdditionDataset(load_mnist("test", data_dir), n, seed, test_examples)
    start = time.perf_counter()
    if n == 1:
        model = addition.build_model(1, net)
        row["sum_accuracy_program"] = evaluate_through_program(model, test)
    else:
        evaluate_addition(net, test, "cpu")
    seconds = time.perf_counter() - start
    row.update(test_examples=len(test), test_seconds=seconds, test_examples_per_s=len(test) / seconds)
    return row


def markdown(rows: list[dict], circuits: list[dict] | None) -> str:
    lines = ["# Benchmarks: nesy_gedi vs DeepProbLog 2.1.0", "",
             "MNIST addition, one epoch, same CNN and torch seed, CPU (2 cores). Made by `python benchmarks/run.py`.", "",
             "| N | system | train ex/s | test ex/s | compile (s) | test sum acc | train examples |",
             "|---|---|---|---|---|---|---|"]
    by_n: dict[int, dict[str, dict]] = {}
    for r in rows:
        by_n.setdefault(r["n_digits"], {})[r["system"]] = r
        lines.append(f"| {r['n_digits']} | {r['system']} | {r['train_examples_per_s']:,.1f} | {r['test_examples_per_s']:,.1f} "
                     f"| {r['compile_seconds']:.2f} | {r['sum_accuracy']:.4f} | {r['train_examples']:,} |")
    lines += ["", "| N | training speed-up | evaluation speed-up |", "|---|---|---|"]
    for n, pair in sorted(by_n.items()):
        if "deepproblog" in pair and "nesy_gedi" in pair:
            ours, theirs = pair["nesy_gedi"], pair["deepproblog"]
            lines.append(f"| {n} | {ours['train_examples_per_s'] / theirs['train_examples_per_s']:.0f}x "
                         f"| {ours['test_examples_per_s'] / theirs['test_examples_per_s']:.0f}x |")
    if circuits:
        lines += ["", "## Circuits of programs/multi_add.pl (`python benchmarks/circuits.py`)", "",
                  "| N | nodes | edges | compile (s) | forward+backward, batch 256 (ms) |", "|---|---|---|---|---|"]
        for c in circuits:
            lines.append(f"| {c['n_digits']} | {c['nodes']:,} | {c['edges']:,} | {c['compile_s']:.2f} | {c['forward_backward_s'] * 1e3:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-digits", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--train-examples", type=positive_int, default=None, help="default: one epoch")
    parser.add_argument("--test-examples", type=positive_int, default=None, help="default: the whole test set")
    parser.add_argument("--dpl-train-examples", type=positive_int, default=None,
                        help="cap DeepProbLog's training examples (its exact engine is slow at N=2)")
    parser.add_argument("--dpl-test-examples", type=positive_int, default=None)
    parser.add_argument("--append", action="store_true", help="merge into the existing results.json")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--dpl-venv", default=str(ROOT / "benchmarks" / ".deepproblog-venv"))
    parser.add_argument("--skip-deepproblog", action="store_true")
    parser.add_argument("--out", type=output_dir, default=str(ROOT / "benchmarks"), help="created if missing")
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    data_dir = resolve_data_dir(args.data_dir)
    if data_dir is None:
        raise DataError("benchmarks/run.py needs MNIST on disk: pass --data-dir or set NESY_GEDI_DATA")
    python = None
    if not args.skip_deepproblog:
        python = deepproblog_with_mnist(Path(args.dpl_venv), data_dir)
    rows = []
    for n in args.n_digits:
        rows.append(run_nesy_gedi(n, args.train_examples, args.test_examples, args.seed, data_dir, args.device,
                                  Path(args.out) / "runs" / f"n{n}"))
        print(json.dumps(rows[-1]), flush=True)
        if python is not None:
            rows.append(run_deepproblog(python, n, args.dpl_train_examples or args.train_examples,
                                        args.dpl_test_examples or args.test_examples, args.seed))
            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.append and (out / "results.json").exists():
        new = {(r["system"], r["n_digits"]) for r in rows}
        old = [r for r in json.loads((out / "results.json").read_text()) if (r["system"], r["n_digits"]) not in new]
        rows = sorted(old + rows, key=lambda r: (r["n_digits"], r["system"] != "nesy_gedi"))
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    circuits_file = out / "circuits.json"
    circuits = json.loads(circuits_file.read_text()) if circuits_file.exists() else None
    (out / "RESULTS.md").write_text(markdown(rows, circuits))
    print(markdown(rows, circuits))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(run_command(main))
