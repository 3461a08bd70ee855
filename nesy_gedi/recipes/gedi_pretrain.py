"""GEDI pretraining of a digit network on unlabeled images; clustering quality on the test set
(``nesy-gedi pretrain``, ``tasks/gedi_pretrain.py``).

    nesy-gedi pretrain --out runs/gedi_pretrain          # MNIST, 6,000 updates
    nesy-gedi pretrain --dataset fashion_mnist --gen-weight 0
    nesy-gedi pretrain --preset gedi-ebm

The budget is in updates (``--steps``), so a command gives the same result on any machine; ``--minutes`` is an
optional extra cap.  The augmentation strength ramps from 0 to 1 over the first ``--aug-warmup`` updates, and the
generative term starts after ``--gen-after``.

Writes to ``--out``: ``checkpoint.pt`` (``--resume`` continues from it; it holds
the SGLD replay buffer), ``metrics.jsonl``, and at the end ``mnist_net.pt``
(loadable by ``nesy-gedi train --pretrained``), ``results.json`` (NMI,
Hungarian-matched accuracy, collapse, cluster -> label map) and ``sgld_samples.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, astuple
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..augment import DigitAugment
from ..commands import (add_common_arguments, existing_file, nonnegative_float, nonnegative_int, output_dir,
                        positive_float, positive_int)
from ..data import load_mnist
from ..data.mnist import DATASETS
from ..errors import DataError
from ..gedi import EstimatorConfig, GEDIObjective, GEDIWeights, SaturationMonitor, SGLDConfig, gen_floor
from ..gedi.estimators import fresh_conditional_samples, fresh_samples
from ..gedi.proposal import Proposal, save_proposal
from ..gedi.schedule import WeightSchedule
from ..gedi.sgld import fresh_chain_steps
from ..networks import ARCHITECTURES, build_network
from ..spectral_norm import spectrally_normalised
from ..train.checkpoint import atomic_write_json, load_network, save_network
from ..train.evaluate import evaluate_clusters
from ..draws import device_generator, randn as draw_normal
from ..train.capture import capture_available
from ..train.distributed import Distributed
from ..train.loop import LoopConfig, Trainer
from ..train.warmup import linear_warmup
from .common import begin_run, run_prepared, seed_everything
from .flags import add_aug_warmup, add_dataclass_flags, flag_groups, from_flags
from .presets import add_preset_arguments, parse_with_presets

KIND = "gedi_pretrain"
HEADLINE = ("steps", "train_seconds", "nmi", "matched_accuracy", "collapse")  # what --seeds reports as mean ± std
COMMAND = "pretrain"
DEFAULT_STEPS = 6000


def init_file(text: str) -> str:
    """An existing file, or a path with ``{seed}`` (checked once the seed is known)."""
    return text if "{seed}" in text else existing_file(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nesy-gedi pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = flag_groups(parser)
    task, training, gedi, experimental = (groups[k] for k in ("task", "training", "gedi", "experimental"))
    add_preset_arguments(training, COMMAND)
    task.add_argument("--dataset", choices=list(DATASETS), default="mnist")
    task.add_argument("--arch", choices=list(ARCHITECTURES), default="mnist_cnn",
                      help="mnist_cnn (DeepProbLog's LeNet), ebm (EnergyCNN) or cnn_large (LargeCNN)")
    task.add_argument("--train-size", type=positive_int, default=None, help="use only this many training images")
    task.add_argument("--init", type=init_file, default=None, metavar="NET",
                      help="start from these network weights (a network file or checkpoint of the same --arch) "
                           "instead of a random initialisation; the step count, optimizer and replay buffer start "
                           "fresh; {seed} in the path is the run's seed (e.g. with --seeds)")
    training.add_argument("--steps", type=positive_int, default=None,
                          help=f"number of updates (default {DEFAULT_STEPS}); with --resume, a larger number extends "
                               "a finished or running --schedule constant run")
    training.add_argument("--minutes", type=positive_float, default=None, help="optional wall-clock cap")
    training.add_argument("--batch-size", type=positive_int, default=128)
    training.add_argument("--lr", type=positive_float, default=2e-3)
    training.add_argument("--schedule", choices=("cosine", "constant"), default="constant",
                          help="learning rate: cosine decay to lr/100 over --steps, or constant")
    training.add_argument("--seed", type=nonnegative_int, default=0)
    training.add_argument("--seeds", type=nonnegative_int, nargs="+", default=None, metavar="S",
                          help="one run per seed, trained side by side in this process (OUT/seed<S>/), and "
                               "OUT/seeds.json with the mean ± std of each headline number")
    training.add_argument("--out", type=output_dir, default="runs/gedi_pretrain")
    training.add_argument("--checkpoint-every", type=positive_int, default=1000, help="steps between checkpoints")
    training.add_argument("--resume", action="store_true", help="continue the run found in --out")
    training.add_argument("--log-every", type=positive_int, default=100)
    training.add_argument("--no-progress", action="store_true")
    add_common_arguments(training, compile=True)
    add_dataclass_flags(groups, GEDIWeights)
    add_dataclass_flags(groups, SGLDConfig)
    add_dataclass_flags(groups, EstimatorConfig)
    add_aug_warmup(gedi)
    gedi.add_argument("--gen-after", type=nonnegative_int, default=1000,
                      help="updates of clustering (invariance + prior) before the generative term starts "
                           "(default 1000)")
    gedi.add_argument("--sgld-batch", type=positive_int, default=32, help="SGLD samples (negatives) per update "
                                                                          "(default 32)")
    gedi.add_argument("--sample-steps", type=positive_int, default=None,
                      help="SGLD steps of the fresh chains in the saved sample grids (default: --sgld-steps with "
                           "--sgld-restart 1, i.e. short-run training on fresh chains; else 200)")
    experimental.add_argument("--gen-warmup", type=nonnegative_int, default=0, metavar="STEPS",
                              help="ramp the generative weight linearly from 0 over STEPS updates after --gen-after "
                                   "(default 0: full weight at once)")
    experimental.add_argument("--data-noise", type=nonnegative_float, default=0.0, metavar="SIGMA",
                              help="Gaussian noise of standard deviation SIGMA added to the images whose energy is "
                                   "the generative term's positive phase (JEM uses 0.03; default 0: clean images)")
    experimental.add_argument("--late-cluster-temperature", type=positive_float, default=None, metavar="T",
                              help="the clustering temperature from update --late-after on (default: "
                                   "--cluster-temperature throughout)")
    experimental.add_argument("--late-after", type=nonnegative_int, default=None, metavar="STEPS",
                              help="the update from which --late-cluster-temperature applies (default: half of "
                                   "--steps)")
    experimental.add_argument("--spectral-norm", action="store_true",
                              help="spectrally normalise every Conv2d and Linear weight of the network (as IGEBM); "
                                   "the saved network holds the plain weights it computes; eager only on a GPU")
    experimental.add_argument("--snapshot-every", type=positive_int, default=None, metavar="STEPS",
                              help="also keep the network's weights every STEPS updates in OUT/snapshots (e.g. for "
                                   "python -m experiments.gedi.nmi_over_time; default: none)")
    return parser


def run(args: argparse.Namespace) -> dict:
    """Train and evaluate one run (``--seeds``: one per seed, side by side); returns (and writes) its results."""
    return run_prepared(args, prepare, HEADLINE)


def prepare(args: argparse.Namespace) -> tuple[Trainer, Callable[[], dict]]:
    """The run's trainer (resumed where ``--resume`` says) and the function that evaluates and writes its results
    once it has trained."""
    requested_steps = args.steps
    args, checkpoint = begin_run(args, KIND)
    args.steps = extended_steps(args, requested_steps, checkpoint)
    out = Path(args.out)
    seed_everything(args.seed)
    device = torch.device(args.device)
    ranks = Distributed.from_environment(device)
    device = ranks.device  # under torchrun on GPUs: this process's GPU
    train, test = load_mnist("train", args.data_dir, dataset=args.dataset), load_mnist("test", args.data_dir,
                                                                                        dataset=args.dataset)
    n_train = min(args.train_size or len(train), len(train))
    if n_train < args.batch_size:
        raise DataError(f"--batch-size {args.batch_size} is larger than the {n_train} training images")
    if args.sgld_buffer_size < args.sgld_batch:
        raise DataError(f"--sgld-buffer-size {args.sgld_buffer_size} must be at least --sgld-batch {args.sgld_batch}")
    # on --resume the checkpoint holds the weights
    init = args.init.replace("{seed}", str(args.seed)) if args.init else None
    if init and checkpoint is None and not Path(init).is_file():
        raise DataError(f"--init {init}: no such file")
    net = load_network(init, args.arch) if init and checkpoint is None else build_network(args.arch)
    spectral = getattr(args, "spectral_norm", False)  # a checkpoint from before the flag: off
    net = (spectrally_normalised(net) if spectral else net).to(device)
    weights, sgld = from_flags(GEDIWeights, args), from_flags(SGLDConfig, args)
    if args.late_cluster_temperature is not None and args.late_after is None:
        args.late_after = args.steps // 2  # kept in the run's arguments, so --resume --steps does not move it
    schedule = WeightSchedule(weights, gen_after=args.gen_after, gen_warmup=args.gen_warmup,
                              late_temperature=args.late_cluster_temperature, late_after=args.late_after or 0)
    generator = torch.Generator().manual_seed(args.seed)
    draws = device_generator(device, args.seed, generator)  # the updates' random draws (on the GPU there)
    # several processes: a replay buffer and chains of their own each (the views are drawn alike everywhere)
    chains = ranks.own_generator(args.seed, draws)
    eager = [flag for flag, on in (("--sgld-until-data", sgld.until_data), ("--spectral-norm", spectral)) if on]
    capturable = capture_available(device) and not getattr(args, "no_compile", False)
    capture = capturable and not eager
    if capturable and eager:
        print(f"note: with {' and '.join(eager)}, every update runs eagerly (not as a CUDA graph)", file=sys.stderr)
    estimator = from_flags(EstimatorConfig, args)
    negatives = max(1, args.sgld_batch // ranks.world_size)
    gedi = GEDIObjective(net, (1, 28, 28), weights, sgld, device, chains, negatives, estimator=estimator, ranks=ranks)
    augment = DigitAugment()
    trained = gedi.trained_modules()  # amortised: its generator trains beside the network, at the same rate
    groups = [{"params": net.parameters()}, *({"params": m.parameters()} for m in trained.values())]
    optimizer = torch.optim.Adam(groups, lr=args.lr)
    steps_per_epoch = n_train // args.batch_size
    loop = LoopConfig(out=out, epochs=math.ceil(args.steps / steps_per_epoch), batch_size=args.batch_size,
                      max_steps=args.steps, minutes=args.minutes, drop_last=True,
                      checkpoint_every=args.checkpoint_every, snapshot_every=args.snapshot_every,
                      log_every=args.log_every,
                      progress=not args.no_progress, description=f"gedi {args.dataset}", capture=capture)
    saturation = SaturationMonitor(gen_floor(weights.energy_l2, weights.sample_l2))
    step = PretrainStep(net, train, gedi, schedule, augment, args.aug_warmup, draws, device, saturation,
                        capture=capture, ranks=ranks, batch_size=args.batch_size,
                        data_noise=getattr(args, "data_noise", 0.0))  # a checkpoint from before the flag: 0
    scheduler = None
    if args.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps, eta_min=args.lr / 100)
    trainer = Trainer(loop, n_train, step, {"net": net, **trained}, optimizer, generator, scheduler,
                      {**gedi.checkpointed_state(), "saturation": saturation},
                      run_info={"kind": KIND, "arch": args.arch, "args": dict(vars(args))},
                      after_step=lambda state, values: step.observe(values, trainer), device=device,
                      distributed=ranks)
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)

    def finish() -> dict:
        state = trainer.state
        clusters = evaluate_clusters(net, test, device)
        results = {
            "args": dict(vars(args)),
            "weights": asdict(weights),
            "sgld": asdict(sgld),
            "estimator": asdict(estimator),
            "steps": state.step,
            "train_seconds": state.seconds,
            "world_size": ranks.world_size,
            "rank_batch_size": -(-args.batch_size // ranks.world_size),
            **clusters,
            "gen_saturation": saturation.summary(),
            "history": state.history,
        }
        if not ranks.is_main:  # rank 0 writes (its saturation window: the other ranks' samples are their own)
            return results
        if (warning := saturation.warning()) is not None:
            print(warning, file=sys.stderr)
        save_network(out / "mnist_net.pt", net, args.arch, KIND, cluster_to_label=clusters["cluster_to_label"])
        atomic_write_json(out / "results.json", results)
        from torchvision.utils import save_image

        if gedi.sampler is not None:
            save_image(gedi.sampler.buffer.samples[:64].cpu() * 0.5 + 0.5, out / "sgld_samples.png", nrow=8)
        if gedi.proposal is not None:
            save_proposal(out / "proposal.pt", gedi.proposal, KIND)
        save_sample_grids(net, out, estimator, sgld,
                          args.sample_steps or fresh_chain_steps(args.sgld_steps, args.sgld_restart, estimator.name),
                          torch.Generator().manual_seed(args.seed), device, proposal=gedi.proposal)
        return results

    return trainer, finish


class PretrainStep:
    """The loss of one GEDI update (a :class:`~nesy_gedi.train.capture.CapturableStep`): the key of an update is
    its term weights; with ``capture`` the augmentation warm-up is a device scalar and the saturation of the
    generative term is counted on the device.  ``data_noise`` > 0: the data energy is that of the images plus
    Gaussian noise of that standard deviation (the views and the ``dsm`` estimator get the clean images)."""

    def __init__(self, net: torch.nn.Module, train, gedi: GEDIObjective, schedule: WeightSchedule,
                 augment: DigitAugment, aug_warmup: int, generator: torch.Generator, device: torch.device,
                 saturation: SaturationMonitor, capture: bool = False, ranks: Distributed | None = None,
                 batch_size: int | None = None, data_noise: float = 0.0) -> None:
        self.net, self.train, self.gedi, self.schedule = net, train, gedi, schedule
        self.augment, self.aug_warmup, self.device, self.saturation = augment, aug_warmup, device, saturation
        self.generators = [generator]
        self.capture = capture
        self.strength = torch.ones((), device=device) if capture else None
        self.step = 0
        self.ranks, self.batch_size = ranks or Distributed(), batch_size
        self.data_noise = data_noise

    def capture_key(self, step: int):
        return astuple(self.schedule.at(step)) if self.capture else None

    def prepare(self, step: int) -> None:
        self.step = step
        if self.strength is not None:
            self.strength.fill_(linear_warmup(step, self.aug_warmup))

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        images = self.train.normalized(batch, self.device)
        now = self.schedule.at(self.step)
        generator = self.generators[0]
        if self.strength is not None:
            def views(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
                return self.augment(x, g, strength=self.strength)
        elif self.ranks.active:  # this process's rows of the global batch get the views one process would draw
            start, stop = self.ranks.rows(self.batch_size)
            warmed = self.augment.warmed_up(self.step, self.aug_warmup)

            def views(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
                return warmed(x, g, rows=(start, stop, self.batch_size))
        else:
            views = self.augment.warmed_up(self.step, self.aug_warmup)
        data_logits = None  # only the data energy needs it
        if now.gen > 0:
            positives = images
            if self.data_noise > 0:  # under torchrun: this process's rows of the global batch's noise
                total = self.batch_size if self.ranks.active else len(images)
                start, stop = self.ranks.rows(total)
                noise = draw_normal((total, *images.shape[1:]), generator, images.device, images.dtype)
                positives = images + self.data_noise * noise[start:stop]
            data_logits = self.net(positives)
        terms = self.gedi(views(images, generator), views(images, generator), data_logits, weights=now, data=images)
        logged = {k: v for k, v in terms.tensors().items() if k != "total"}
        if "sample_energy" in logged:  # contrastive divergence: its loss has a floor
            if self.capture:  # the fraction of updates at the floor, counted on the device
                floor, margin = self.saturation.floor, self.saturation.tolerance * abs(self.saturation.floor)
                logged["gen_at_floor"] = (logged["gen"] <= floor + margin).double()
            else:
                self.saturation.observe(float(logged["gen"]), float(logged["data_energy"]),
                                        float(logged["sample_energy"]))
        return {"loss": terms.total, **logged}

    def observe(self, values: dict[str, float], trainer: Trainer) -> None:
        """Captured training, at each read of the loss terms: the generative term's saturation over those updates."""
        if "gen_at_floor" in values:
            self.saturation.observe(values["gen"], values["data_energy"], values["sample_energy"],
                                    at_floor=values["gen_at_floor"], updates=trainer.last_counts["gen"])


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


def save_sample_grids(net: torch.nn.Module, out: Path, estimator: EstimatorConfig, sgld: SGLDConfig, steps: int,
                      generator: torch.Generator, device: torch.device, per_row: int = 10,
                      proposal: Proposal | None = None) -> None:
    """``samples_noise.png`` (fresh chains from uniform noise on E(x)) and ``samples_conditional.png``
    (one row per cluster y, chains on E(x, y) = -f(x)[y]), with the sampler of the model's estimator."""
    from torchvision.utils import save_image

    net.eval()
    shape = (1, 28, 28)
    fresh = fresh_samples(net, per_row * per_row, shape, estimator, sgld, steps, generator, device, proposal=proposal)
    save_image(fresh.cpu() * 0.5 + 0.5, out / "samples_noise.png", nrow=per_row)
    with torch.no_grad():
        n_clusters = int(net(fresh[:1]).shape[1])
    rows = fresh_conditional_samples(net, per_row, n_clusters, shape, estimator, sgld, steps, generator, device,
                                     proposal)
    save_image(rows.cpu() * 0.5 + 0.5, out / "samples_conditional.png", nrow=per_row)
    net.train()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``argv`` parsed with its ``--preset`` / ``--config`` applied."""
    parser = build_parser()
    args = parse_with_presets(parser, argv, COMMAND)
    if args.late_after is not None and not args.resume:
        steps = args.steps or DEFAULT_STEPS
        if args.late_cluster_temperature is None:
            parser.error("argument --late-after: it says when --late-cluster-temperature starts; give that too")
        if args.late_after >= steps:
            parser.error(f"argument --late-after: {args.late_after} is not before the last update "
                         f"(--steps {steps}), so the late temperature would never apply")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    results = run(parse_args(argv))
    shown = {k: results[k] for k in ("mean", "std")} if "per_seed" in results else {k: results[k] for k in HEADLINE}
    print(json.dumps(shown, indent=2), file=sys.stdout)
    return results
