"""Pieces every recipe shares: seeding and the arguments a resumed run keeps from its checkpoint."""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import DataError
from ..train.checkpoint import atomic_write_json, load_checkpoint
from ..train.loop import CHECKPOINT, Trainer, fit_together

# flags that may differ between a run and its resumption (they do not change what is computed)
RESUME_OVERRIDES = ("resume", "debug", "no_progress", "log_every", "device", "data_dir", "out", "checkpoint_every",
                    "snapshot_every", "no_compile")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# settings of checkpoints written before the flags had one vocabulary: old name -> today's
RENAMED = {"gedi_gen_weight": "gen_weight", "gedi_prior_weight": "prior_weight", "gedi_prior_floor": "prior_floor",
           "gedi_aug_warmup": "aug_warmup", "gedi_early_prior_weight": "early_prior_weight",
           "gedi_estimate_sizes": "estimate_sizes", "buffer_size": "sgld_buffer_size"}


def resolve_resume(args: argparse.Namespace, checkpoint: dict) -> argparse.Namespace:
    """The arguments of the checkpointed run (older names renamed, :data:`RENAMED`), with only
    :data:`RESUME_OVERRIDES` taken from ``args``."""
    saved = {RENAMED.get(k, k): v for k, v in (checkpoint.get("args") or {}).items()}
    if "prior_floor" in saved and saved["prior_floor"] is None:  # "no floor" was None, is 0 today
        saved["prior_floor"] = 0.0
    merged = {**vars(args), **{k: v for k, v in saved.items() if k not in RESUME_OVERRIDES}}
    return argparse.Namespace(**merged)


def begin_run(args: argparse.Namespace, kind: str) -> tuple[argparse.Namespace, dict | None]:
    """The arguments and checkpoint to start from, for a fresh run or ``--resume``.

    Deletes an older ``results.json`` in ``--out``, so that a run that fails never
    leaves a success behind.
    """
    out = Path(args.out)
    checkpoint = None
    if args.resume:
        if not (out / CHECKPOINT).exists():
            raise DataError(f"--resume: no checkpoint {out / CHECKPOINT} to continue")
        checkpoint = load_checkpoint(out / CHECKPOINT, kind, "cpu")
        args = resolve_resume(args, checkpoint)
    (out / "results.json").unlink(missing_ok=True)
    return args, checkpoint


def run_seeds(args: argparse.Namespace, prepare: Callable[[argparse.Namespace], tuple[Trainer, Callable[[], dict]]],
              headline: tuple[str, ...]) -> dict:
    """One run per seed of ``args.seeds`` (``OUT/seed<S>``, each resumable); writes and returns ``OUT/seeds.json``:
    each seed's ``headline`` numbers and their mean and sample std.

    On a GPU the runs train side by side (:func:`fit_together`, each on its own CUDA stream, its random draws from
    its own device generator); on the CPU one after the other, so that each equals the run of its ``--seed``."""
    out = Path(args.out)
    repeated = sorted({s for s in args.seeds if list(args.seeds).count(s) > 1})
    if repeated:
        raise DataError(f"--seeds names seed {', '.join(map(str, repeated))} more than once")

    def one(seed: int) -> argparse.Namespace:
        return argparse.Namespace(**{**vars(args), "seed": seed, "seeds": None, "out": str(out / f"seed{seed}")})

    if torch.device(args.device).type == "cuda":
        runs = [prepare(one(seed)) for seed in args.seeds]
        fit_together([trainer for trainer, _ in runs])
        results = [finish() for _, finish in runs]
    else:
        results = []
        for seed in args.seeds:
            trainer, finish = prepare(one(seed))
            trainer.fit()
            results.append(finish())
    per_seed = {key: [r[key] for r in results] for key in headline if all(key in r for r in results)}
    summary = {"seeds": list(args.seeds), "per_seed": per_seed,
               "mean": {k: statistics.fmean(v) for k, v in per_seed.items()},
               "std": {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in per_seed.items()}}
    atomic_write_json(out / "seeds.json", summary)
    return summary


def run_prepared(args: argparse.Namespace, prepare: Callable[[argparse.Namespace], tuple[Trainer, Callable[[], dict]]],
                 headline: tuple[str, ...]) -> dict:
    """Train what ``prepare`` sets up and return its results; with ``args.seeds``, :func:`run_seeds`."""
    if getattr(args, "seeds", None):
        return run_seeds(args, prepare, headline)
    trainer, finish = prepare(args)
    trainer.fit()
    return finish()
