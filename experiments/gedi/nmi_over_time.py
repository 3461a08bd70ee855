"""How did a GEDI run's clusters move during training?  NMI of every kept checkpoint on MNIST test.

    python tasks/gedi_pretrain.py --snapshot-every 50 --out runs/x/seed0 ...
    python -m experiments.gedi.nmi_over_time --checkpoints runs/x/seed0/snapshots --out runs/gedi/nmi.json

Each ``--checkpoints`` entry is a training checkpoint or network file (``checkpoint.pt``, ``mnist_net.pt``, a
snapshot) or a folder, whose ``*.pt`` files are all read. For every file: its update (the ``step`` of a
checkpoint or snapshot; ``None`` for a network file), NMI, matched accuracy and collapse on the test split of
``--dataset``, as ``gedi_pretrain.py`` reports them at the end of a run. Rows are sorted by folder, then update.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import torch

from nesy_gedi.commands import add_common_arguments, run_command
from nesy_gedi.data import load_mnist
from nesy_gedi.data.mnist import DATASETS
from nesy_gedi.errors import DataError
from nesy_gedi.networks import ARCHITECTURES
from nesy_gedi.train.checkpoint import load_network, network_state
from nesy_gedi.train.evaluate import evaluate_clusters


def checkpoint_files(entries: Sequence[Path]) -> list[Path]:
    """The ``.pt`` files named or found (non-recursively) in the named folders."""
    files: list[Path] = []
    for entry in entries:
        if entry.is_dir():
            found = sorted(entry.glob("*.pt"))
            if not found:
                raise DataError(f"{entry} holds no .pt files")
            files += found
        elif entry.is_file():
            files.append(entry)
        else:
            raise DataError(f"{entry} does not exist")
    return files


def nmi_row(path: Path, arch: str, split, device: torch.device) -> dict:
    _, meta = network_state(path, arch)
    net = load_network(path, arch)
    clusters = evaluate_clusters(net.to(device), split, device)
    return {"file": str(path), "run": str(path.parent), "step": meta.get("step"),
            **{k: clusters[k] for k in ("nmi", "matched_accuracy", "collapse")}}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.gedi.nmi_over_time", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", required=True, type=Path,
                        help="checkpoint or network files, or folders of them")
    parser.add_argument("--arch", choices=tuple(ARCHITECTURES), default="ebm")
    parser.add_argument("--dataset", choices=tuple(DATASETS), default="mnist")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    add_common_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    files = checkpoint_files(args.checkpoints)
    device = torch.device(args.device)
    test = load_mnist("test", args.data_dir, dataset=args.dataset)
    rows = [nmi_row(path, args.arch, test, device) for path in files]
    rows.sort(key=lambda r: (r["run"], -1 if r["step"] is None else r["step"]))
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                       indent=2) + "\n")
    return rows


if __name__ == "__main__":
    sys.exit(run_command(main))
