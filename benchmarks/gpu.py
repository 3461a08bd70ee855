"""Training speed on one GPU: captured updates (CUDA graphs, the default) beside the eager path (``--no-compile``),
in one run, with the GPU's name and torch's version.

    python -m benchmarks.gpu --out benchmarks/gpu          # about 5 minutes on one H200 before the gedi_kl row

Rows (each a real command of the package, or its training step alone):

* ``nesy-gedi train`` N=1, batch 32: training examples/s over the whole run and in its steady state;
* NeSy step / supervised step (the same LeNet, the same 2N digit images per example, both captured) at N = 1, 2, 4,
  15: milliseconds per update from CUDA events;
* ``nesy-gedi pretrain`` defaults (LeNet, 6,000 updates) with ``--seeds 0 1 2`` in one process: updates/s per seed;
* the same with ``--preset gedi-kl`` (the sampler's KL term: a second-order SGLD step in every captured update);
* GEDI on one network with fresh 80-step chains and 128 negatives (``--arch ebm --sgld-restart 1 --sgld-steps 80
  --sgld-batch 128 --gen-after 0``), ``--seeds 0 1 2``: updates/s per seed.

Each eager row trains fewer updates (the rate is what is compared).  Writes ``OUT/gpu_speed.json`` after every row,
so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from nesy_gedi.commands import add_common_arguments, positive_int, run_command
from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.networks import MnistCNN
from nesy_gedi.recipes import addition, gedi_pretrain
from nesy_gedi.recipes.addition_loss import AdditionLoss
from nesy_gedi.recipes.addition_model import build_model
from nesy_gedi.train.capture import StepGraphs, TensorHyperparameters

ONE_NETWORK = ["--arch", "ebm", "--sgld-restart", "1", "--sgld-steps", "80", "--sgld-batch", "128", "--gen-after", "0"]


def steady_rate(metrics: Path, key: str = "examples_per_s", skip: int = 1) -> float | None:
    """The median of a run's logged rates after its first ``skip`` lines (warm-up and capture)."""
    if not metrics.exists():
        return None
    rates = [json.loads(line)[key] for line in metrics.read_text().splitlines()[skip:] if line.strip()]
    return statistics.median(rates) if rates else None


DEVICE = "cuda"  # --smoke: "cpu", a test of this script (nothing is captured there)


def _shown(argv: list[str]) -> str:
    """A command line without the folders (``--out``, ``--data-dir``) this script chose."""
    shown, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--out", "--data-dir"):
            skip = True
        else:
            shown.append(arg)
    return " ".join(shown)


def train_row(out: Path, n_digits: int, steps: int, eager: bool, data_dir: str | None) -> dict:
    """``nesy-gedi train`` for ``steps`` updates: its own examples/s, and the steady state from its metrics."""
    folder = out / "runs" / f"train_n{n_digits}_{'eager' if eager else 'captured'}"
    argv = ["--n-digits", str(n_digits), "--batch-size", "32", "--epochs", "2", "--max-steps", str(steps),
            "--device", DEVICE,
            "--no-progress", "--log-every", "100", "--out", str(folder)]
    argv += ["--no-compile"] if eager else []
    argv += ["--data-dir", data_dir] if data_dir else []
    results = addition.run(addition.parse_args(argv))
    return {"command": "nesy-gedi train " + _shown(argv),
            "steps": results["steps"], "train_seconds": results["train_seconds"],
            "examples_per_s": results["train_examples_per_s"],
            "steady_examples_per_s": None if eager else steady_rate(folder / "metrics.jsonl", skip=2),
            "digit_accuracy": results["digit_accuracy"], "sum_accuracy": results["sum_accuracy"]}


def pretrain_row(out: Path, name: str, extra: list[str], steps: int, seeds: list[int], eager: bool,
                 data_dir: str | None) -> dict:
    """``nesy-gedi pretrain`` for ``steps`` updates of each seed, side by side in this process."""
    folder = out / "runs" / f"{name}_{'eager' if eager else 'captured'}"
    argv = [*extra, "--steps", str(steps), "--device", DEVICE, "--no-progress", "--log-every", "250",
            "--checkpoint-every", str(steps), "--out", str(folder), "--seeds", *map(str, seeds)]
    argv += ["--no-compile"] if eager else []
    argv += ["--data-dir", data_dir] if data_dir else []
    started = time.perf_counter()
    summary = gedi_pretrain.run(gedi_pretrain.parse_args(argv))
    wall = time.perf_counter() - started
    seconds = summary["per_seed"]["train_seconds"]
    return {"command": "nesy-gedi pretrain " + _shown(argv),
            "seeds": seeds, "steps": steps, "train_seconds": max(seconds),
            "updates_per_s_per_seed": steps / max(seconds), "wall_seconds_with_evaluation": wall,
            "nmi": summary["per_seed"].get("nmi")}


def overhead_row(n_digits: int, batch_size: int, replays: int, data_dir: str | None) -> dict:
    """NeSy and supervised updates of the same LeNet on the same images, both captured: ms per update."""
    device = torch.device(DEVICE)
    data = AdditionDataset(load_mnist("train", data_dir), n_digits, seed=0)
    generator = torch.Generator(device).manual_seed(0)

    class Supervised:
        """Cross-entropy on the digit labels of the same images (a capturable step)."""

        generators = [generator]

        def __init__(self) -> None:
            self.net = MnistCNN().to(device)

        def capture_key(self, step: int) -> str:
            return "supervised"

        def prepare(self, step: int) -> None:
            pass

        def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
            images = data.images(batch, device).view(-1, 1, 28, 28)
            labels = data.on("digits", device)[batch].reshape(-1)
            return {"loss": F.cross_entropy(self.net(images), labels)}

    supervised = Supervised()
    net = MnistCNN().to(device)
    nesy = AdditionLoss(build_model(n_digits, net), data, net, net, device, generator, capture=True)
    steps: dict[str, tuple[StepGraphs, Callable]] = {}
    for name, step_fn, module in (("nesy", nesy, net), ("supervised", supervised, supervised.net)):
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
        if device.type == "cuda":
            TensorHyperparameters(optimizer, device)
        steps[name] = (StepGraphs(step_fn, optimizer, device), step_fn)
    order = torch.randperm(len(data), device=device)
    batches = [order[i * batch_size:(i + 1) * batch_size] for i in range(len(data) // batch_size)]
    times: dict[str, list[float]] = {name: [] for name in steps}
    for block in range(6):  # blocks take turns, so a clock change affects both alike
        for name, (graphs, _) in steps.items():
            with graphs.stream_context():
                for i in range(3 if block == 0 else 0):  # warm-up and capture
                    graphs(batches[i], i)
                started = time.perf_counter()
                for i in range(replays):
                    graphs(batches[(block * replays + i) % len(batches)], 3 + i)
                if device.type == "cuda":
                    torch.cuda.current_stream().synchronize()
                if block:
                    times[name].append((time.perf_counter() - started) * 1e3 / replays)
    nesy_ms, sup_ms = statistics.median(times["nesy"]), statistics.median(times["supervised"])
    return {"n_digits": n_digits, "batch_size": batch_size, "nesy_ms": nesy_ms, "supervised_ms": sup_ms,
            "ratio": nesy_ms / sup_ms, "captured_updates": steps["nesy"][0].captured_updates}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/gpu", help="folder of gpu_speed.json and the runs")
    parser.add_argument("--train-steps", type=positive_int, default=1875, help="captured nesy-gedi train updates")
    parser.add_argument("--gedi-steps", type=positive_int, default=6000, help="captured pretrain updates per seed")
    parser.add_argument("--chain-steps", type=positive_int, default=600, help="captured 80-step-chain updates")
    parser.add_argument("--replays", type=positive_int, default=200, help="updates per timed block (overhead)")
    parser.add_argument("--rows", nargs="+", default=["train", "overhead", "gedi", "gedi_kl", "chains"],
                        choices=["train", "overhead", "gedi", "gedi_kl", "chains"])
    parser.add_argument("--n-digits", type=positive_int, nargs="+", default=[1, 2, 4, 15], help="overhead rows")
    parser.add_argument("--smoke", action="store_true", help="run on the CPU, uncaptured (a test of this script)")
    add_common_arguments(parser, device=False)
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = "cpu" if args.smoke else "cuda"
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("error: benchmarks.gpu needs a CUDA device (or --smoke)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"gpu": torch.cuda.get_device_name() if DEVICE == "cuda" else "none (--smoke)",
                    "torch": torch.__version__, "rows": {}}

    def record(name: str, row: dict | list) -> None:
        report["rows"][name] = row
        (out / "gpu_speed.json").write_text(json.dumps(report, indent=1))
        print(name, json.dumps(row), flush=True)

    def attempt(name: str, make: Callable[[], dict | list]) -> None:
        started = time.perf_counter()
        try:
            row = make()
        except Exception as exc:  # one row's failure must not lose the others
            row = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
            import traceback

            traceback.print_exc()
        if isinstance(row, dict):
            row["row_seconds"] = time.perf_counter() - started
        record(name, row)

    d = args.data_dir
    if "train" in args.rows:
        attempt("train_n1_captured", lambda: train_row(out, 1, args.train_steps, False, d))
        attempt("train_n1_eager", lambda: train_row(out, 1, 300, True, d))
    if "overhead" in args.rows:
        attempt("overhead", lambda: [overhead_row(n, 32, args.replays, d) for n in args.n_digits])
    if "gedi" in args.rows:
        attempt("gedi_default_captured", lambda: pretrain_row(out, "gedi", [], args.gedi_steps, [0, 1, 2], False, d))
        attempt("gedi_default_eager", lambda: pretrain_row(out, "gedi", [], 300, [0], True, d))
    if "gedi_kl" in args.rows:
        kl = ["--preset", "gedi-kl"]
        attempt("gedi_kl_captured", lambda: pretrain_row(out, "gedi_kl", kl, args.gedi_steps, [0, 1, 2], False, d))
        attempt("gedi_kl_eager", lambda: pretrain_row(out, "gedi_kl", kl, 300, [0], True, d))
    if "chains" in args.rows:
        attempt("one_network_80_captured",
                lambda: pretrain_row(out, "chains", ONE_NETWORK, args.chain_steps, [0, 1, 2], False, d))
        attempt("one_network_80_eager", lambda: pretrain_row(out, "chains", ONE_NETWORK, 40, [0], True, d))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    sys.exit(run_command(main))
