"""GEDI pretraining of a digit network on unlabeled images; clustering quality on the test set.

    python tasks/gedi_pretrain.py --out runs/gedi_pretrain          # MNIST, 6,000 steps
    python tasks/gedi_pretrain.py --dataset fashion_mnist --gen-weight 0

The budget is in steps (``--steps``), so a command gives the same result on any
machine; ``--minutes`` is an optional extra cap.  The augmentation strength
ramps from 0 to 1 over the first ``--aug-warmup`` steps: with full-strength
views from the start, the all-uniform assignment is an attractor of
invariance + uniformity (see README, "GEDI").

Writes to ``--out``: ``checkpoint.pt`` (``--resume`` continues from it; it holds
the SGLD replay buffer), ``metrics.jsonl``, and at the end ``mnist_net.pt``
(loadable by ``tasks/mnist_add.py --pretrained``), ``results.json`` (NMI,
Hungarian-matched accuracy, collapse, cluster -> label map) and ``sgld_samples.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch

from ..augment import DigitAugment
from ..commands import (add_common_arguments, existing_file, nonnegative_float, nonnegative_int, output_dir,
                        positive_float, positive_int, probability, unit_fraction)
from ..data import load_mnist
from ..data.mnist import DATASETS
from ..errors import DataError
from ..gedi import GEDIObjective, GEDIWeights, SaturationMonitor, SGLDConfig, gen_floor
from ..gedi.sgld import conditional_samples, fresh_chain_steps, sample_from_noise
from ..networks import ARCHITECTURES, build_network
from ..train.checkpoint import atomic_write_json, load_weights, network_state, save_network
from ..train.evaluate import evaluate_clusters
from ..train.loop import LoopConfig, Trainer
from ..train.warmup import linear_warmup
from .common import begin_run, seed_everything

KIND = "gedi_pretrain"
DEFAULT_STEPS = 6000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gedi_pretrain.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=list(DATASETS), default="mnist")
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default="mnist_cnn")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"number of updates (default {DEFAULT_STEPS}); with --resume, a larger number extends a "
                             "finished or running --schedule constant run")
    parser.add_argument("--minutes", type=positive_float, default=None, help="optional wall-clock cap")
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--lr", type=positive_float, default=2e-3)
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="constant",
                        help="learning rate: cosine decay to lr/100 over --steps, or constant")
    parser.add_argument("--gen-weight", type=nonnegative_float, default=GEDIWeights.gen)
    parser.add_argument("--invariance-weight", type=nonnegative_float, default=GEDIWeights.invariance)
    parser.add_argument("--prior-weight", type=nonnegative_float, default=GEDIWeights.prior)
    parser.add_argument("--cluster-temperature", type=positive_float, default=1.0, metavar="T",
                        help="the invariance and prior terms see softmax(f(x) / T): with T < 1, sharp clusters need "
                             "T times smaller logit gaps (the energy -logsumexp f(x) is unchanged; default 1)")
    parser.add_argument("--prior-floor", type=unit_fraction, default=None, metavar="F",
                        help="replace the uniformity prior by a floor: each cluster must hold at least F/K of a "
                             "batch, larger clusters cost nothing (for classes of unequal frequency; default: uniform)")
    parser.add_argument("--gen-after", type=nonnegative_int, default=1000,
                        help="steps of clustering (invariance + prior) before the generative term starts")
    parser.add_argument("--gen-warmup", type=nonnegative_int, default=0, metavar="STEPS",
                        help="ramp the generative weight linearly from 0 to --gen-weight over STEPS updates after "
                             "--gen-after (default 0: full weight at once; at a clusterer's first SGLD samples the "
                             "generative loss jumps far above the clustering terms, and the jump can wipe the "
                             "clusters)")
    parser.add_argument("--aug-warmup", type=nonnegative_int, default=500,
                        help="steps over which the augmentation strength ramps from 0 to 1")
    parser.add_argument("--energy-l2", type=nonnegative_float, default=GEDIWeights.energy_l2,
                        help="penalty on the squared energies of data and samples (default %(default)s)")
    parser.add_argument("--sample-energy-l2", type=nonnegative_float, default=None, metavar="W",
                        help="a different penalty on the samples' squared energy (default: --energy-l2); with 0 "
                             "the generative term keeps raising the energy where chains end, however high")
    parser.add_argument("--sgld-steps", type=positive_int, default=SGLDConfig.steps)
    parser.add_argument("--sgld-batch", type=positive_int, default=32, help="SGLD samples (negatives) per step")
    parser.add_argument("--sgld-step-size", type=positive_float, default=SGLDConfig.step_size)
    parser.add_argument("--sgld-noise", type=nonnegative_float, default=SGLDConfig.noise)
    parser.add_argument("--sgld-restart", type=probability, default=SGLDConfig.restart)
    parser.add_argument("--buffer-size", type=positive_int, default=SGLDConfig.buffer_size)
    parser.add_argument("--sample-steps", type=positive_int, default=None,
                        help="SGLD steps of the fresh chains in the saved sample grids (default: --sgld-steps "
                             "with --sgld-restart 1, i.e. short-run training on fresh chains; else 200)")
    parser.add_argument("--init", type=existing_file, default=None, metavar="NET",
                        help="start from these network weights (a network file or checkpoint of the same --arch, "
                             "e.g. a GEDI clusterer) instead of a random initialisation; the step count, optimizer "
                             "and replay buffer start fresh")
    parser.add_argument("--train-size", type=positive_int, default=None, help="use only this many training images")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--out", type=output_dir, default="runs/gedi_pretrain")
    parser.add_argument("--checkpoint-every", type=positive_int, default=1000, help="steps between checkpoints")
    parser.add_argument("--snapshot-every", type=positive_int, default=None, metavar="STEPS",
                        help="also keep the network's weights every STEPS updates in OUT/snapshots (0.8 MB each for "
                             "--arch ebm), e.g. for benchmarks/gedi_nmi_over_time.py (default: none)")
    parser.add_argument("--resume", action="store_true", help="continue the run found in --out")
    parser.add_argument("--log-every", type=positive_int, default=100)
    parser.add_argument("--no-progress", action="store_true")
    add_common_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> dict:
    requested_steps = args.steps
    args, checkpoint = begin_run(args, KIND)
    args.steps = extended_steps(args, requested_steps, checkpoint)
    out = Path(args.out)
    seed_everything(args.seed)
    device = torch.device(args.device)
    train, test = load_mnist("train", args.data_dir, dataset=args.dataset), load_mnist("test", args.data_dir,
                                                                                        dataset=args.dataset)
    n_train = min(args.train_size or len(train), len(train))
    if n_train < args.batch_size:
        raise DataError(f"--batch-size {args.batch_size} is larger than the {n_train} training images")
    if args.buffer_size < args.sgld_batch:
        raise DataError(f"--buffer-size {args.buffer_size} must be at least --sgld-batch {args.sgld_batch}")
    net = build_network(args.arch)
    if args.init and checkpoint is None:  # on --resume the checkpoint holds the weights
        load_weights(net, network_state(args.init, args.arch)[0], args.init, args.arch)
    net = net.to(device)
    weights = GEDIWeights(args.gen_weight, args.invariance_weight, args.prior_weight, args.energy_l2,
                          args.prior_floor or 0.0, args.sample_energy_l2, args.cluster_temperature)
    sgld = SGLDConfig(args.sgld_steps, args.sgld_step_size, args.sgld_noise, args.buffer_size, args.sgld_restart)
    generator = torch.Generator().manual_seed(args.seed)
    gedi = GEDIObjective(net, (1, 28, 28), GEDIWeights(**asdict(weights)), sgld, device, generator, args.sgld_batch)
    augment = DigitAugment()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps_per_epoch = n_train // args.batch_size
    loop = LoopConfig(out=out, epochs=math.ceil(args.steps / steps_per_epoch), batch_size=args.batch_size,
                      max_steps=args.steps, minutes=args.minutes, drop_last=True,
                      checkpoint_every=args.checkpoint_every, snapshot_every=args.snapshot_every,
                      log_every=args.log_every,
                      progress=not args.no_progress, description=f"gedi {args.dataset}")
    saturation = SaturationMonitor(gen_floor(weights.energy_l2, weights.sample_l2))
    trainer: Trainer

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        images = train.normalized(batch, device)
        t = trainer.state.step
        gedi.weights.gen = weights.gen * gen_ramp(t, args.gen_after, args.gen_warmup)
        views = augment.warmed_up(t, args.aug_warmup)
        data_logits = net(images) if gedi.weights.gen > 0 else None  # only the data energy needs it
        terms = gedi(views(images, generator), views(images, generator), data_logits)
        logged = terms.items()
        if terms.energies:
            saturation.observe(logged["gen"], logged["data_energy"], logged["sample_energy"])
        return {"loss": terms.total, **{k: v for k, v in logged.items() if k != "total"}}

    scheduler = None
    if args.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps, eta_min=args.lr / 100)
    trainer = Trainer(loop, n_train, step, {"net": net}, optimizer, generator, scheduler,
                      {"replay_buffer": gedi.sampler.buffer, "saturation": saturation},
                      run_info={"kind": KIND, "arch": args.arch, "args": dict(vars(args))})
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)
    state = trainer.fit()

    clusters = evaluate_clusters(net, test, device)
    results = {
        "args": dict(vars(args)),
        "weights": asdict(weights),
        "sgld": asdict(sgld),
        "steps": state.step,
        "train_seconds": state.seconds,
        **clusters,
        "gen_saturation": saturation.summary(),
        "history": state.history,
    }
    if (warning := saturation.warning()) is not None:
        print(warning, file=sys.stderr)
    save_network(out / "mnist_net.pt", net, args.arch, KIND, cluster_to_label=clusters["cluster_to_label"])
    atomic_write_json(out / "results.json", results)
    from torchvision.utils import save_image

    save_image(gedi.sampler.buffer.samples[:64].cpu() * 0.5 + 0.5, out / "sgld_samples.png", nrow=8)
    save_sample_grids(net, out, sgld, args.sample_steps or fresh_chain_steps(args.sgld_steps, args.sgld_restart),
                      torch.Generator().manual_seed(args.seed), device)
    return results


def extended_steps(args: argparse.Namespace, requested: int | None, checkpoint: dict | None) -> int:
    """The run's update budget: ``--steps`` (default :data:`DEFAULT_STEPS`); on ``--resume``, the checkpointed run's,
    unless ``--steps`` asks for more, which only a constant learning rate allows (a cosine schedule is laid out
    over the original ``--steps``)."""
    if checkpoint is None or requested is None or requested == args.steps:
        return args.steps or DEFAULT_STEPS
    done = int(checkpoint.get("step", 0))
    if requested < max(done, args.steps):
        raise DataError(f"--resume --steps {requested}: the run in {args.out} was started for {args.steps} updates "
                        f"and has done {done}; --steps may only extend it")
    if args.schedule != "constant":
        raise DataError(f"--resume --steps {requested}: only a --schedule constant run can be extended "
                        f"(its cosine schedule is laid out over --steps {args.steps})")
    return requested


def gen_ramp(step: int, start: int, warmup: int) -> float:
    """The generative term's weight factor at ``step``: 0 before ``start``, then a linear ramp to 1 over ``warmup``."""
    return 0.0 if step < start else linear_warmup(step - start, warmup)


def save_sample_grids(net: torch.nn.Module, out: Path, sgld: SGLDConfig, steps: int, generator: torch.Generator,
                      device: torch.device, per_row: int = 10) -> None:
    """``samples_noise.png`` (fresh chains from uniform noise on E(x)) and ``samples_conditional.png``
    (one row per cluster y, chains on E(x, y) = -f(x)[y])."""
    from torchvision.utils import save_image

    net.eval()
    shape = (1, 28, 28)
    fresh = sample_from_noise(net, per_row * per_row, shape, sgld, steps, generator, device)
    save_image(fresh.cpu() * 0.5 + 0.5, out / "samples_noise.png", nrow=per_row)
    with torch.no_grad():
        n_clusters = int(net(fresh[:1]).shape[1])
    rows = conditional_samples(net, per_row, n_clusters, shape, sgld, steps, generator, device)
    save_image(rows.cpu() * 0.5 + 0.5, out / "samples_conditional.png", nrow=per_row)
    net.train()


def main(argv: Sequence[str] | None = None) -> dict:
    results = run(build_parser().parse_args(argv))
    print(json.dumps({k: results[k] for k in ("steps", "train_seconds", "nmi", "matched_accuracy", "collapse")},
                     indent=2), file=sys.stdout)
    return results
