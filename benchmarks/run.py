"""nesy_gedi vs DeepProbLog 2.1.0 and DeepStochLog 0.0.1 on MNIST addition, on this machine, in one run.

    python -m benchmarks.run                      # N = 1 and 2, one epoch each, both peers
    python -m benchmarks.run --n-digits 1 2 4 --train-examples 3000 --test-examples 500 --skip-deepproblog

Each peer is installed by this script into its own venv (``--dpl-venv``,
``--dsl-venv``, default ``benchmarks/.deepproblog-venv``, ``.deepstochlog-venv``),
never into ours; DeepStochLog also needs SWI-Prolog (``swipl``).  All systems
train the same CNN (DeepProbLog's MNIST_Net = DeepStochLog's MNISTNet = our
MnistCNN) with Adam from the same torch seed, DeepProbLog with its default
batch size 2, DeepStochLog and nesy_gedi with ``--batch-size`` (default 32) on
the same examples, so those two make the same number of updates.  Test accuracy
is exact in every system: the most probable sum under the program among all
candidate sums.  ``--limit-steps`` also times the same CNN's supervised step on
the same images (the network-bound limit of a NeSy step).  Writes
``results.json`` and ``RESULTS.md`` into ``--out`` (default ``benchmarks/``).
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

from benchmarks.overhead import measure as measure_overhead
from benchmarks.peers import deepproblog_with_mnist, dsl_python
from nesy_gedi import NeSyModel
from nesy_gedi.commands import add_common_arguments, nonnegative_int, output_dir, positive_int, run_command
from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.data.addition import addition_query
from nesy_gedi.data.mnist import resolve_data_dir
from nesy_gedi.errors import DataError
from nesy_gedi.networks import OneHot
from nesy_gedi.programs import program_path
from nesy_gedi.recipes import addition, addition_model
from nesy_gedi.train.checkpoint import load_network
from nesy_gedi.train.evaluate import evaluate_addition

ROOT = Path(__file__).resolve().parents[1]

def run_deepproblog(python: Path, n: int, train_examples: int | None, test_examples: int | None, seed: int) -> dict:
    command = [str(python), str(ROOT / "benchmarks" / "deepproblog_worker.py"), "--n-digits", str(n), "--seed", str(seed)]
    if train_examples:
        command += ["--train-examples", str(train_examples)]
    if test_examples:
        command += ["--test-examples", str(test_examples)]
    return run_worker(command, "DeepProbLog", ROOT / "benchmarks")


def run_worker(command: list[str], peer: str, cwd: Path) -> dict:
    """Run a peer's worker script in its venv; its last JSON line, or one error line naming the peer."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"the {peer} run failed (exit {done.returncode}): {last}")
    return json.loads(lines[-1])


def run_deepstochlog(python: Path, n: int, train: AdditionDataset, test: AdditionDataset, batch_size: int,
                     seed: int, data_dir: Path, scratch: Path) -> dict:
    """DeepStochLog on the same examples as nesy_gedi (MNIST indices passed in a JSON file)."""
    def rows(data: AdditionDataset) -> list:
        return [[data.indices[e].reshape(-1).tolist(), int(data.sums[e])] for e in range(len(data))]

    scratch.mkdir(parents=True, exist_ok=True)
    examples = scratch / f"deepstochlog_examples_n{n}.json"
    examples.write_text(json.dumps({"train": rows(train), "test": rows(test)}))
    command = [str(python), str(ROOT / "benchmarks" / "deepstochlog_worker.py"), "--n-digits", str(n),
               "--examples", str(examples), "--data-dir", str(data_dir), "--batch-size", str(batch_size),
               "--seed", str(seed)]
    return run_worker(command, "DeepStochLog", scratch)


@torch.no_grad()
def most_probable_sums(model: NeSyModel, net: torch.nn.Module, data: AdditionDataset,
                       rows_per_chunk: int = 20_000) -> torch.Tensor:
    """N>1: the exact most probable sum of each example under ``multi_add.pl``, among all 2*10^N - 1 sums.

    The CNN runs once per image; its logits reach the circuit through the identity network
    of ``model`` (see ``logit_model``), once per candidate sum (observed through ``OneHot``),
    as DeepStochLog's exact test scores every candidate.
    """
    n = data.n_digits
    query, xs, ys, zs = addition_query(n)
    candidates = torch.arange(2 * 10**n - 1)
    digits = torch.stack([(candidates // 10 ** (n - i)) % 10 for i in range(n + 1)], 1)  # [C, N+1]
    best = torch.empty(len(data), dtype=torch.long)
    for examples in data.batches(100, shuffle=False):
        logits = net(data.images(examples).view(-1, 1, 28, 28)).view(len(examples), 2, n, 10)
        scores = []
        for chunk in digits.split(max(1, rows_per_chunk // len(examples))):
            c = len(chunk)
            inputs = {x: logits[:, 0, i].repeat_interleave(c, 0) for i, x in enumerate(xs)}
            inputs.update({y: logits[:, 1, i].repeat_interleave(c, 0) for i, y in enumerate(ys)})
            inputs.update({z: chunk[:, i].repeat(len(examples)) for i, z in enumerate(zs)})
            scores.append(model(query, inputs).log_probs[:, 0].view(len(examples), c))
        best[examples] = candidates[torch.cat(scores, 1).argmax(1)]
    return best


def logit_model(n: int) -> NeSyModel:
    """``multi_add.pl`` reading digit logits (identity network), its N-digit circuit compiled."""
    model = NeSyModel(program_path("multi_add.pl"), {"mnist_net": torch.nn.Identity(), "sum_digit": OneHot(10)})
    query, xs, ys, zs = addition_query(n)
    model.compile(query, xs + ys + zs)
    return model


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
                  device: str = "cpu", run_dir: Path = Path("runs/benchmark"), batch_size: int = 32) -> dict:
    argv = ["--n-digits", str(n), "--epochs", "1", "--seed", str(seed), "--no-progress", "--out", str(run_dir),
            "--device", device, "--batch-size", str(batch_size)]
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
        "batch_size": batch_size,
        "updates": results["steps"],
        "train_examples_per_s": results["train_examples_per_s"],
        "compile_seconds": compile_s,
        "sum_accuracy": results["sum_accuracy"],
        "digit_accuracy": results["digit_accuracy"],
    }
    # Exact test: the most probable sum under the program, among all candidate sums.
    net = load_network(run_dir / "mnist_net.pt", "mnist_cnn").eval()
    test = AdditionDataset(load_mnist("test", data_dir), n, seed, test_examples)
    model = addition_model.build_model(1, net) if n == 1 else logit_model(n)
    start = time.perf_counter()
    if n == 1:
        row["sum_accuracy_program"] = evaluate_through_program(model, test)
    else:
        best = most_probable_sums(model, net, test)
        row["sum_accuracy_program"] = float((best.double() == test.sums).float().mean())
    seconds = time.perf_counter() - start
    row.update(test_examples=len(test), test_seconds=seconds, test_examples_per_s=len(test) / seconds)
    start = time.perf_counter()
    evaluate_addition(net, test, "cpu")
    row["test_argmax_digits_examples_per_s"] = len(test) / (time.perf_counter() - start)
    return row


PEERS = ("deepproblog", "deepstochlog")


def accuracy(row: dict) -> float:
    """Exact test sum accuracy (the most probable sum under the program)."""
    return row.get("sum_accuracy_program", row["sum_accuracy"])


def markdown(rows: list[dict], limits: list[dict], circuits: list[dict] | None, command: str) -> str:
    lines = ["# Benchmarks: nesy_gedi vs DeepProbLog 2.1.0 and DeepStochLog 0.0.1", "",
             "MNIST addition, one epoch, same CNN and torch seed, one run on this machine's CPU. "
             f"Made by `{command}`.", "",
             "Test accuracy is exact in every system: the most probable sum under the program among all candidate "
             "sums (DeepStochLog's own `calculate_accuracy`; ours scores all 2*10^N - 1 sums through "
             "`multi_add.pl` for N > 1).", "",
             "| N | system | batch | updates | train ex/s | exact test ex/s | test examples | ground+compile (s) | test sum acc |",
             "|---|---|---|---|---|---|---|---|---|"]
    by_n: dict[int, dict[str, dict]] = {}
    for r in rows:
        by_n.setdefault(r["n_digits"], {})[r["system"]] = r
        lines.append(f"| {r['n_digits']} | {r['system']} | {r.get('batch_size', 2)} | {r.get('updates', '-')} "
                     f"| {r['train_examples_per_s']:,.1f} | {r['test_examples_per_s']:,.3g} | {r['test_examples']:,} "
                     f"| {r['compile_seconds']:.2f} | {accuracy(r):.3f} |")
    lines += ["", "Speed-ups of nesy_gedi, measured in the same run:", "",
              "| N | peer | training | exact evaluation |", "|---|---|---|---|"]
    for n, systems in sorted(by_n.items()):
        ours = systems.get("nesy_gedi")
        for peer in PEERS:
            if ours and peer in systems:
                theirs = systems[peer]
                lines.append(f"| {n} | {peer} | {ours['train_examples_per_s'] / theirs['train_examples_per_s']:,.1f}x "
                             f"| {ours['test_examples_per_s'] / theirs['test_examples_per_s']:,.0f}x |")
    if limits:
        lines += ["", "Network-bound limit (`python -m benchmarks.overhead`): a nesy_gedi training step vs the same CNN's "
                  "supervised cross-entropy step on the same images, median ms per batch:", "",
                  "| N | batch | NeSy step (ms) | supervised step (ms) | ratio |", "|---|---|---|---|---|"]
        for row in limits:
            lines.append(f"| {row['n_digits']} | {row['batch_size']} | {row['nesy_ms_per_batch']:.2f} "
                         f"| {row['supervised_ms_per_batch']:.2f} | {row['ratio']:.2f}x |")
    if circuits:
        lines += ["", "## Circuits of programs/multi_add.pl (`python -m benchmarks.circuits`)", "",
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
    parser.add_argument("--batch-size", type=positive_int, default=32, help="nesy_gedi's and DeepStochLog's batch size")
    parser.add_argument("--dpl-train-examples", type=positive_int, default=None,
                        help="cap DeepProbLog's training examples (its exact engine is slow at N=2)")
    parser.add_argument("--dpl-test-examples", type=positive_int, default=None)
    parser.add_argument("--dpl-max-n", type=positive_int, default=2,
                        help="run DeepProbLog only up to this N (it cannot ground N=4 in hours)")
    parser.add_argument("--dsl-test-examples", type=positive_int, default=None,
                        help="cap DeepStochLog's exact test examples (default: 10 for N >= 4, where it "
                             "scores 2*10^N candidate sums per example)")
    parser.add_argument("--append", action="store_true", help="merge into the existing results.json")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--dpl-venv", default=str(ROOT / "benchmarks" / ".deepproblog-venv"))
    parser.add_argument("--dsl-venv", default=str(ROOT / "benchmarks" / ".deepstochlog-venv"))
    parser.add_argument("--dsl-meta-program", default=None,
                        help="a saved copy of DeepStochLog's _meta_program_suffix.pl (its PyPI package lacks it; "
                             "default: download it from its GitHub repository)")
    parser.add_argument("--skip-deepproblog", action="store_true")
    parser.add_argument("--skip-deepstochlog", action="store_true")
    parser.add_argument("--limit-steps", type=nonnegative_int, default=200,
                        help="steps timed for the network-bound limit (0: skip it)")
    parser.add_argument("--out", type=output_dir, default=str(ROOT / "benchmarks"), help="created if missing")
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    data_dir = resolve_data_dir(args.data_dir)
    if data_dir is None:
        raise DataError("python -m benchmarks.run needs MNIST on disk: pass --data-dir or set NESY_GEDI_DATA")
    # read once here: a missing data file is reported before any peer is installed
    train_split, test_split = load_mnist("train", data_dir), load_mnist("test", data_dir)
    out = Path(args.out)
    dpl = None if args.skip_deepproblog else deepproblog_with_mnist(Path(args.dpl_venv), data_dir)
    dsl = None if args.skip_deepstochlog else dsl_python(Path(args.dsl_venv), args.dsl_meta_program)
    rows, limits = [], []
    for n in args.n_digits:
        rows.append(run_nesy_gedi(n, args.train_examples, args.test_examples, args.seed, data_dir, args.device,
                                  out / "runs" / f"n{n}", args.batch_size))
        print(json.dumps(rows[-1]), flush=True)
        if dsl is not None:
            train = AdditionDataset(train_split, n, args.seed, args.train_examples)
            test_examples = args.dsl_test_examples or (10 if n >= 4 else args.test_examples)
            test = AdditionDataset(test_split, n, args.seed, test_examples)
            rows.append(run_deepstochlog(dsl, n, train, test, args.batch_size, args.seed, data_dir, out / "runs"))
            print(json.dumps(rows[-1]), flush=True)
        if dpl is not None and n <= args.dpl_max_n:
            rows.append(run_deepproblog(dpl, n, args.dpl_train_examples or args.train_examples,
                                        args.dpl_test_examples or args.test_examples, args.seed))
            print(json.dumps(rows[-1]), flush=True)
        if args.limit_steps:
            limits.append(measure_overhead(n, args.batch_size, args.limit_steps, args.device, data_dir))
            print(json.dumps(limits[-1]), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    results = {"rows": rows, "limits": limits}
    if args.append and (out / "results.json").exists():
        old = json.loads((out / "results.json").read_text())
        if isinstance(old, list):  # the format before peers and limits
            old = {"rows": old, "limits": []}
        new = {(r["system"], r["n_digits"]) for r in rows}
        old_rows = [r for r in old["rows"] if (r["system"], r["n_digits"]) not in new]
        new_limits = {r["n_digits"] for r in limits}
        results = {"rows": old_rows + rows, "limits": [r for r in old["limits"] if r["n_digits"] not in new_limits] + limits}
    order = {"nesy_gedi": 0, "deepstochlog": 1, "deepproblog": 2}
    results["rows"].sort(key=lambda r: (r["n_digits"], order.get(r["system"], 3)))
    results["limits"].sort(key=lambda r: r["n_digits"])
    (out / "results.json").write_text(json.dumps(results, indent=2))
    circuits_file = out / "circuits.json"
    circuits = json.loads(circuits_file.read_text()) if circuits_file.exists() else None
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "RESULTS.md").write_text(markdown(results["rows"], results["limits"], circuits, command.strip()))
    print(markdown(results["rows"], results["limits"], circuits, command.strip()))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(run_command(main))
