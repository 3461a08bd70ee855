"""Copy a gedi_pretrain run's checkpoint into a new run folder with another SGLD chain length, to --resume there.

    python benchmarks/gedi/onenet/chain80/set_chain_steps.py runs/onenet/rev_tau01/seed2 runs/onenet/chain80/seed2 80
    python tasks/gedi_pretrain.py --resume --steps 650 --out runs/onenet/chain80/seed2 --checkpoint-every 25

Weights, optimizer, replay buffer and random state stay those of the checkpoint; only the run's ``sgld_steps``
changes (``--resume`` takes every other setting from the checkpoint). The metrics log is copied along.
"""
import shutil
import sys
from pathlib import Path

import torch

from nesy_gedi.train.checkpoint import atomic_save, load_checkpoint

src, dst, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
checkpoint = load_checkpoint(src / "checkpoint.pt", "gedi_pretrain")
checkpoint["args"]["sgld_steps"] = steps
dst.mkdir(parents=True, exist_ok=True)
atomic_save(checkpoint, dst / "checkpoint.pt")
shutil.copy(src / "metrics.jsonl", dst / "metrics.jsonl")
print(f"{dst}: update {checkpoint['step']}, sgld_steps {steps}")
