"""Data-parallel scaling: ``nesy-gedi train`` as 1 process against ``torchrun`` with K processes, the same global batch
and seed, in one run (each setting's processes share the machine's cores: ``OMP_NUM_THREADS`` = cores / K).

    python -m benchmarks.scaling --procs 1 2 --steps 300 --out benchmarks/scaling_cpu.json
    python -m benchmarks.scaling --procs 1 2 --compile-digits 12 13 14 15 --out benchmarks/scaling_cpu.json

Reports training examples/s (from each run's ``results.json``), the speed-up over one process, and the final
weights' relative L2 distance to the one-process run's.  With ``--compile-digits``, it instead compiles the
N-digit addition templates for those N with 1 and K compile workers (``NeSyModel.compile_templates``) and reports
the seconds and whether every circuit is the same.  ``--out`` keeps the file's other sections.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from nesy_gedi.commands import positive_int, run_command
from nesy_gedi.data.addition import addition_query
from nesy_gedi.recipes.addition_model import build_model
from nesy_gedi.template import QueryTemplate
from nesy_gedi.train.checkpoint import load_network

ROOT = Path(__file__).resolve().parents[1]


def train(procs: int, steps: int, batch_size: int, n_digits: int, out: Path, device: str) -> dict:
    """One ``nesy-gedi train`` run with ``procs`` processes; its results.json."""
    argv = ["-m", "nesy_gedi.cli", "train", "--n-digits", str(n_digits), "--batch-size", str(batch_size),
            "--epochs", "100", "--max-steps", str(steps), "--device", device, "--no-progress", "--out", str(out)]
    if procs > 1:
        argv = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", *argv]
    cores = os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // procs))}
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{procs} process(es) failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads((out / "results.json").read_text())


def compile_pool(workers: list[int], digits: list[int]) -> dict:
    """Seconds to compile one addition template per N in ``digits`` with each number of workers."""
    templates = []
    for n in digits:
        query, xs, ys, zs = addition_query(n)
        templates.append(QueryTemplate.create(query, [*xs, *ys, *zs]))
    rows, digests = [], None
    for k in workers:
        model = build_model(2, torch.nn.Linear(784, 10))
        start = time.perf_counter()
        built = model.compile_templates(templates, workers=k)
        seconds = time.perf_counter() - start
        found = [c.digest() for c in built.values()]
        digests = digests or found
        rows.append({"workers": k, "seconds": seconds, "speedup": rows[0]["seconds"] / seconds if rows else 1.0,
                     "same_circuits_as_first": found == digests})
        print(json.dumps(rows[-1]), flush=True)
    return {"cores": os.cpu_count(), "templates": [f"N={n}" for n in digits], "rows": rows}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=positive_int, default=300)
    parser.add_argument("--batch-size", type=positive_int, default=32, help="the global batch")
    parser.add_argument("--n-digits", type=positive_int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu (gloo); cuda needs one GPU per process (NCCL)")
    parser.add_argument("--compile-digits", type=positive_int, nargs="+", default=None, metavar="N",
                        help="compare compile workers (--procs) on the addition templates of these N instead")
    parser.add_argument("--out", default=None, help="JSON file of the rows (default: print only)")
    args = parser.parse_args(argv)
    if args.compile_digits:
        found = {**compile_pool(args.procs, args.compile_digits),
                 "command": " ".join(["python -m benchmarks.scaling", *(sys.argv[1:] if argv is None else argv)])}
        if args.out:
            _merge(Path(args.out), {"compile_pool": found})
        return found["rows"]
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as folder:
        for procs in args.procs:
            out = Path(folder) / f"procs{procs}"
            results = train(procs, args.steps, args.batch_size, args.n_digits, out, args.device)
            weights = torch.cat([p.detach().flatten() for p in load_network(out / "mnist_net.pt").parameters()])
            reference = weights if reference is None else reference
            rows.append({"processes": procs, "device": args.device, "cores": os.cpu_count(),
                         "n_digits": args.n_digits, "global_batch": args.batch_size, "steps": results["steps"],
                         "rank_batch_size": results["rank_batch_size"],
                         "examples_per_s": results["train_examples_per_s"],
                         "speedup": results["train_examples_per_s"] / rows[0]["examples_per_s"] if rows else 1.0,
                         "weights_rel_l2_to_first": float((weights - reference).norm() / reference.norm()),
                         "digit_accuracy": results["digit_accuracy"]})
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        _merge(Path(args.out), {"rows": rows})
    return rows


def _merge(path: Path, sections: dict) -> None:
    """Write ``sections`` into the JSON file at ``path``, keeping its other keys."""
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, "torch": torch.__version__, **sections}, indent=1))


if __name__ == "__main__":
    sys.exit(run_command(main))
