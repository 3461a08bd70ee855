"""Export a ``nesy-gedi pretrain`` run's ``checkpoint.pt`` (e.g. mid-run) to a run folder with ``mnist_net.pt`` and a
``results.json`` holding the clusters' NMI at that update, for the judge (``python -m experiments.gedi.unification``).

    python -m experiments.gedi.export_checkpoint runs/onenet/seed2 runs/onenet_update500/seed2
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from nesy_gedi.data import load_mnist
from nesy_gedi.train.checkpoint import load_checkpoint, load_network, save_network
from nesy_gedi.train.evaluate import evaluate_clusters


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m experiments.gedi.export_checkpoint RUN_FOLDER DESTINATION")
    src, dst = Path(argv[0]), Path(argv[1])
    checkpoint = load_checkpoint(src / "checkpoint.pt", "gedi_pretrain")
    args = checkpoint["args"]
    net = load_network(src / "checkpoint.pt", args["arch"])
    clusters = evaluate_clusters(net, load_mnist("test"), torch.device("cpu"))
    dst.mkdir(parents=True, exist_ok=True)
    save_network(dst / "mnist_net.pt", net, args["arch"], "gedi_pretrain",
                 cluster_to_label=clusters["cluster_to_label"])
    (dst / "results.json").write_text(json.dumps({"args": args, "checkpoint_step": checkpoint.get("step"), **clusters}))
    print(dst, checkpoint.get("step"), {k: clusters[k] for k in ("nmi", "matched_accuracy", "collapse")})


if __name__ == "__main__":
    main(sys.argv[1:])
