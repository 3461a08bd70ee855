"""Circuit micro-benchmark for programs/multi_add.pl: size, compile and evaluation time.

    python -m benchmarks.circuits --digits 1 2 4 8 15 30 --batch 256

Writes benchmarks/circuits.json and benchmarks/circuits.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from nesy_gedi import NeSyModel
from nesy_gedi.commands import add_common_arguments, output_dir, positive_int, run_command
from nesy_gedi.data.addition import addition_query
from nesy_gedi.networks import OneHot
from nesy_gedi.programs import program_path

ROOT = Path(__file__).resolve().parents[1]


def measure(n: int, batch: int, repeats: int = 5) -> dict:
    model = NeSyModel(program_path("multi_add.pl"), {"mnist_net": lambda x: x, "sum_digit": OneHot(10)})
    query, xs, ys, zs = addition_query(n)
    start = time.perf_counter()
    compiled = model.compile(query, xs + ys + zs)
    compile_s = time.perf_counter() - start
    inputs = {v: torch.randn(batch, 10, requires_grad=True) for v in xs + ys}
    inputs.update({z: torch.randint(0, 10, (batch,)) for z in zs})
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.log_prob(query, inputs).sum().backward()
        times.append(time.perf_counter() - t)
    return {
        "n_digits": n,
        "nodes": compiled.stats["nodes"],
        "edges": compiled.stats["edges"],
        "layers": compiled.stats["layers"],
        "compile_s": compile_s,
        "forward_backward_s": sorted(times)[len(times) // 2],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="circuits.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=positive_int, nargs="+", default=[1, 2, 4, 8, 15, 30])
    parser.add_argument("--batch", type=positive_int, default=256)
    parser.add_argument("--out", type=output_dir, default=str(ROOT / "benchmarks"))
    add_common_arguments(parser, device=False, data=False)
    args = parser.parse_args(argv)
    rows = []
    for n in args.digits:
        rows.append(measure(n, args.batch))
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "circuits.json").write_text(json.dumps(rows, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    ns = [r["n_digits"] for r in rows]
    for ax, key, label in zip(axes, ["edges", "compile_s", "forward_backward_s"],
                              ["circuit edges", "compile (s)", f"forward+backward, batch {args.batch} (s)"]):
        ax.plot(ns, [r[key] for r in rows], "o-")
        ax.set_xlabel("digits per number")
        ax.set_title(label)
    fig.tight_layout()
    fig.savefig(out / "circuits.png", dpi=100)


if __name__ == "__main__":
    sys.exit(run_command(main))
