"""Copy a gedi_pretrain checkpoint into a new run folder with another SGLD chain length, to --resume there.

    python -m experiments.gedi.set_chain_steps runs/onenet/rev_tau01/seed2 runs/onenet/chain80/seed2 80
    python tasks/gedi_pretrain.py --resume --steps 650 --out runs/onenet/chain80/seed2 --checkpoint-every 25

SOURCE is a run folder (its ``checkpoint.pt`` and ``metrics.jsonl``) or a checkpoint file inside one (e.g. a copy
kept mid-run). Weights, optimizer, replay buffer and random state stay those of the checkpoint; the run's
``sgld_steps`` changes, and with a fourth argument its update budget ``steps`` too (a constant-schedule run may
then stop earlier than it was started for). The metrics log is copied up to the checkpoint's update.
"""
import json
import sys
from pathlib import Path

from nesy_gedi.train.checkpoint import atomic_save, load_checkpoint

src, dst, chain = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
budget = int(sys.argv[4]) if len(sys.argv) > 4 else None
checkpoint_file = src / "checkpoint.pt" if src.is_dir() else src
checkpoint = load_checkpoint(checkpoint_file, "gedi_pretrain")
checkpoint["args"]["sgld_steps"] = chain
if budget is not None:
    if checkpoint["args"]["schedule"] != "constant":
        sys.exit("error: only a --schedule constant run can change its --steps")
    checkpoint["args"]["steps"] = budget
dst.mkdir(parents=True, exist_ok=True)
atomic_save(checkpoint, dst / "checkpoint.pt")
lines = (checkpoint_file.parent / "metrics.jsonl").read_text().splitlines(keepends=True)
(dst / "metrics.jsonl").write_text("".join(l for l in lines if json.loads(l)["step"] <= checkpoint["step"]))
print(f"{dst}: update {checkpoint['step']}, sgld_steps {chain}, steps {checkpoint['args']['steps']}")
