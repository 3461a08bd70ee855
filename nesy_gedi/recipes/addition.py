"""MNIST addition of N-digit numbers through a ProbLog program (``nesy-gedi train``, ``tasks/mnist_add.py``).

    nesy-gedi train --n-digits 1 --epochs 1 --batch-size 32
    nesy-gedi train --preset evenodd-scratch --seed 1

Reasoning-shortcut settings (N=1): ``--pairs evenodd`` / ``restricted`` / ``half`` train on a subset of digit pairs
and test in and out of distribution (``--split rsbench``: rsbench's splits).  Next to the NeSy loss:
``--gedi-weight W`` (W * GEDI terms on the same images), ``--entropy-weight W`` (Marconato et al.'s concept entropy
regulariser), ``--concept-labels K`` (K labelled images per digit).  ``--pretrained NET`` starts from a saved network
(e.g. of ``nesy-gedi pretrain``); ``--cluster-head`` maps its clusters onto digits through a learned
doubly-stochastic matrix, and ``--relabel`` renames digits by the likelihood of the training sums.

Writes to ``--out``: ``checkpoint.pt`` (``--resume`` continues from it), ``metrics.jsonl`` (one line per step),
and at the end ``mnist_net.pt`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..augment import DigitAugment
from ..cluster_head import ClusterPermutation
from ..commands import (add_common_arguments, existing_file, nonnegative_float, nonnegative_int, output_dir,
                        positive_float, positive_int, probability)
from ..data import AdditionDataset, load_mnist
from ..data.concept_labels import labelled_concepts
from ..data.rsbench import SETTINGS as RSBENCH_SETTINGS, rsbench_split
from ..data.shortcuts import PAIR_SETS, n_concepts, pair_filter
from ..errors import DataError
from ..gedi import ClusterSizes, EstimatorConfig, GEDIObjective, GEDIWeights, SGLDConfig
from ..gedi.schedule import WeightSchedule
from ..networks import ARCHITECTURES, build_network
from ..train.checkpoint import atomic_write_json, load_weights, network_state, save_network
from ..train.evaluate import evaluate_addition
from ..draws import device_generator
from ..train.capture import capture_available
from ..train.distributed import Distributed
from ..train.loop import LoopConfig, Trainer
from .addition_loss import AdditionLoss
from .addition_model import addition_signature, build_model
from .addition_relabel import RELABEL_EXAMPLES, relabel_by_training_sums
from .common import begin_run, run_prepared, seed_everything
from .flags import add_aug_warmup, add_dataclass_flags, flag_groups, from_flags
from .presets import add_preset_arguments, parse_with_presets

KIND = "mnist_add"
# the numbers --seeds reports as mean ± std
HEADLINE = ("steps", "train_seconds", "train_examples_per_s", "sum_accuracy", "digit_accuracy")
COMMAND = "train"
CLUSTER_HEAD = "cluster_permutation"
SIZE_PERIOD = 100  # --estimate-sizes: updates per estimate of the cluster sizes
SIZE_BOUNDS = (0.5, 1.5)  # ... and each size between these multiples of 1 / K


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nesy-gedi train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = flag_groups(parser)
    task, training, gedi, experimental = (groups[k] for k in ("task", "training", "gedi", "experimental"))
    add_preset_arguments(training, COMMAND)
    task.add_argument("--n-digits", type=positive_int, default=1, help="digits per number (default 1)")
    task.add_argument("--pairs", choices=("all", *PAIR_SETS), default="all",
                      help="train on a restricted set of digit pairs (N=1); test in and out of distribution "
                           "(half: digits 0-4 only, a 5-way digit network)")
    task.add_argument("--split", choices=("ours", "rsbench"), default="ours",
                      help="ours: disjoint random pairs of MNIST images, filtered; rsbench: rsbench's pool, uniform "
                           "over digit pairs (--pairs evenodd or half; metrics with rsbench's 10-bin ECE)")
    task.add_argument("--train-size", type=positive_int, default=None, help="use only this many training examples")
    task.add_argument("--test-size", type=positive_int, default=None)
    task.add_argument("--arch", choices=list(ARCHITECTURES), default="mnist_cnn",
                      help="digit network: mnist_cnn (DeepProbLog's LeNet), ebm (EnergyCNN) or cnn_large (LargeCNN)")
    task.add_argument("--augment", type=probability, default=0.0, metavar="S",
                      help="train on randomly augmented digit images (strength S in (0, 1]; default 0: none)")
    task.add_argument("--pretrained", type=existing_file, default=None, metavar="NET",
                      help="initial network weights (e.g. mnist_net.pt of nesy-gedi pretrain)")
    task.add_argument("--keep-head", action="store_true", help="keep the pretrained last layer (cluster order)")
    task.add_argument("--cluster-head", action="store_true",
                      help="digits = a learned doubly-stochastic map (Sinkhorn) of the network's outputs; with "
                           "--pretrained the pretrained clusters are kept and only named")
    task.add_argument("--relabel", action="store_true",
                      help="after each epoch, rename digits (permutations of up to 4 digits) where that "
                           "raises the likelihood of the training sums: a label-free repair of a wrong map")
    task.add_argument("--concept-labels", type=nonnegative_int, default=0, metavar="K",
                      help="K labelled training images per digit, learned with cross-entropy (default 0: none)")
    task.add_argument("--concept-weight", type=nonnegative_float, default=1.0,
                      help="weight of the --concept-labels cross-entropy (default 1)")
    task.add_argument("--entropy-weight", type=nonnegative_float, default=0.0,
                      help="weight of the concept entropy regulariser (default 0)")
    training.add_argument("--epochs", type=positive_int, default=1)
    training.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many updates")
    training.add_argument("--batch-size", type=positive_int, default=32)
    training.add_argument("--lr", type=positive_float, default=5e-3, help="(peak) learning rate of Adam")
    training.add_argument("--schedule", choices=("onecycle", "constant"), default="onecycle",
                          help="learning-rate schedule over all steps")
    training.add_argument("--seed", type=nonnegative_int, default=0)
    training.add_argument("--seeds", type=nonnegative_int, nargs="+", default=None, metavar="S",
                          help="one run per seed, trained side by side in this process (OUT/seed<S>/), and "
                               "OUT/seeds.json with the mean ± std of each headline number")
    training.add_argument("--out", type=output_dir, default="runs/mnist_add", help="directory of the run")
    training.add_argument("--checkpoint-every", type=positive_int, default=None,
                          help="steps between checkpoints (default: every epoch)")
    training.add_argument("--resume", action="store_true", help="continue the run found in --out")
    training.add_argument("--log-every", type=positive_int, default=100, help="steps between log lines off a terminal")
    training.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    add_common_arguments(training, compile=True)
    gedi.add_argument("--gedi-weight", type=nonnegative_float, default=0.0,
                      help="weight of the GEDI terms next to the NeSy loss (default 0: off)")
    gedi.add_argument("--gedi-views", choices=("clean", "augmented"), default="clean",
                      help="GEDI's first view: the clean images (their NeSy forward, no extra forward; default) or "
                           "a second augmented copy (one more forward)")
    add_aug_warmup(gedi)
    add_dataclass_flags(groups, GEDIWeights)
    add_dataclass_flags(groups, SGLDConfig)
    add_dataclass_flags(groups, EstimatorConfig)
    experimental.add_argument("--estimate-sizes", type=nonnegative_int, default=None, metavar="STEPS",
                              help="after STEPS updates under the uniform prior, replace it by a KL to estimated "
                                   f"cluster sizes (hard-assignment fractions over the last {SIZE_PERIOD} updates, "
                                   f"each {SIZE_BOUNDS[0]}-{SIZE_BOUNDS[1]} times 1/K; for unbalanced digits such as "
                                   "EvenOdd's)")
    experimental.add_argument("--nesy-after", type=nonnegative_int, default=0, metavar="STEPS",
                              help="leave the NeSy loss out of the first STEPS updates, so that the other terms (GEDI) "
                                   "form the clusters before the program names them (default 0)")
    experimental.add_argument("--early-prior-weight", type=nonnegative_float, default=None, metavar="W",
                              help="GEDI's prior weight before --nesy-after (default: --prior-weight)")
    experimental.add_argument("--relabel-exhaustive", action="store_true",
                              help="with --relabel (N=1): also start from the best of all 10! renamings of the hard "
                                   "digit predictions; with --cluster-head, name the clusterer's clusters so (also "
                                   "just before the NeSy loss starts)")
    return parser


def load_pretrained(net: torch.nn.Module, path: str | Path, arch: str, keep_head: bool = False) -> None:
    """Load weights from a network file or checkpoint; unless ``keep_head``, re-initialise the last layer.

    GEDI clusters are digits up to an unknown permutation: a fresh head lets the
    program choose the cluster -> digit map instead of starting from a random one.
    A file written by a ``--cluster-head`` run loads into a :class:`ClusterPermutation`
    (whole) or into a plain network (its clusterer, with a fresh or kept head).
    """
    weights, meta = network_state(path, arch)
    if meta.get("head") == CLUSTER_HEAD and not isinstance(net, ClusterPermutation):
        weights = {k.removeprefix("clusterer."): v for k, v in weights.items() if k.startswith("clusterer.")}
    elif meta.get("head") != CLUSTER_HEAD and isinstance(net, ClusterPermutation):
        net = net.clusterer
        keep_head = True  # the clusters are what the cluster head names
    load_weights(net, weights, path, arch)
    if not keep_head and not isinstance(net, ClusterPermutation):
        net.classifier[-1].reset_parameters()


def run(args: argparse.Namespace) -> dict:
    """Train and evaluate one run (``--seeds``: one per seed, side by side); returns (and writes) its results."""
    return run_prepared(args, prepare, HEADLINE)


def prepare(args: argparse.Namespace) -> tuple[Trainer, Callable[[], dict]]:
    """The run's trainer (resumed where ``--resume`` says) and the function that evaluates and writes its results
    once it has trained."""
    args, checkpoint = begin_run(args, KIND)
    out = Path(args.out)
    if args.pairs != "all" and args.n_digits != 1:
        raise DataError("--pairs needs --n-digits 1")
    if args.relabel and args.n_digits > 2:
        raise DataError(f"--relabel supports --n-digits 1 or 2, not {args.n_digits}: each epoch it evaluates 2,175 "
                        f"renamings on {RELABEL_EXAMPLES} training examples (about 14 s per round already at N=2)")
    if args.relabel_exhaustive and not (args.relabel and args.n_digits == 1):
        raise DataError("--relabel-exhaustive needs --relabel and --n-digits 1")
    if args.early_prior_weight is not None and not (args.gedi_weight > 0 and args.nesy_after):
        raise DataError("--early-prior-weight needs --gedi-weight and --nesy-after")
    if args.nesy_after and not (args.gedi_weight > 0 or args.concept_labels or args.entropy_weight > 0):
        raise DataError("--nesy-after needs another loss term to train on before it (e.g. --gedi-weight 1)")
    if args.estimate_sizes is not None and not args.gedi_weight > 0:
        raise DataError("--estimate-sizes needs --gedi-weight")
    if args.estimate_sizes is not None and args.prior_floor > 0:
        raise DataError("--estimate-sizes and --prior-floor are two different priors; choose one")
    if args.split == "rsbench" and args.pairs not in RSBENCH_SETTINGS:
        raise DataError(f"--split rsbench needs --pairs {' or '.join(RSBENCH_SETTINGS)}")
    if args.gedi_weight > 0 and args.sgld_buffer_size < 2 * args.n_digits * args.batch_size:
        raise DataError(f"--gedi-weight with --batch-size {args.batch_size} and --n-digits {args.n_digits} needs "
                        f"{2 * args.n_digits * args.batch_size} SGLD chains, more than the replay buffer's "
                        f"{args.sgld_buffer_size}; use a smaller --batch-size or a larger --sgld-buffer-size")
    seed_everything(args.seed)
    device = torch.device(args.device)
    ranks = Distributed.from_environment(device)
    device = ranks.device  # under torchrun on GPUs: this process's GPU
    batch_means = (("--entropy-weight", args.entropy_weight > 0), ("--estimate-sizes", args.estimate_sizes is not None))
    for flag, on in batch_means:
        if ranks.active and on:
            raise DataError(f"{flag} under torchrun is not supported yet (it needs the batch-mean assignment over "
                            "all processes); run it in one process")
    train_split, test_split = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    concepts = n_concepts(args.pairs)
    test_ood = None
    if args.split == "rsbench":
        train = rsbench_split(args.pairs, "train", train_split).subset(args.train_size)
        test = rsbench_split(args.pairs, "test", test_split).subset(args.test_size)
        test_ood = rsbench_split(args.pairs, "test", test_split, in_distribution=False).subset(args.test_size)
    else:
        restrict = None if args.pairs == "all" else pair_filter(args.pairs)
        train = AdditionDataset(train_split, args.n_digits, args.seed, args.train_size, restrict)
        test = AdditionDataset(test_split, args.n_digits, args.seed, args.test_size, restrict)
        if args.pairs != "all":
            test_ood = AdditionDataset(test_split, 1, args.seed, args.test_size, pair_filter(args.pairs, False))
    ece_bins = 10 if args.split == "rsbench" else 15
    labelled = None
    if args.concept_labels:
        indices, labels = labelled_concepts(train_split, args.concept_labels, args.seed, concepts)
        labelled = train_split.normalized(indices, device), labels.to(device)

    base = build_network(args.arch, concepts).to(device)
    generator = torch.Generator().manual_seed(args.seed)
    # net: images -> digit logits (the neural predicate); base: the network that GEDI trains
    net = ClusterPermutation(base, concepts, generator=generator).to(device) if args.cluster_head else base
    if args.pretrained and checkpoint is None:
        load_pretrained(net, args.pretrained, args.arch, args.keep_head)
    model = build_model(args.n_digits, net, n_concepts=concepts)
    if ranks.active:  # each rank compiled its own circuit: the same one, or a clear stop
        ranks.same(f"the N={args.n_digits} addition circuit", model.compile(*addition_signature(args.n_digits)).digest())
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    uncaptured = [flag for flag, on in (("--relabel", args.relabel), ("--cluster-head", args.cluster_head),
                                        ("--estimate-sizes", args.estimate_sizes is not None),
                                        ("--sgld-until-data", args.sgld_until_data > 0)) if on]
    capture = capture_available(device) and not getattr(args, "no_compile", False) and not uncaptured
    if capture_available(device) and not getattr(args, "no_compile", False) and uncaptured:
        print(f"note: {', '.join(uncaptured)} runs every update eagerly (not as a CUDA graph)", file=sys.stderr)
    loop = LoopConfig(out=out, epochs=args.epochs, batch_size=args.batch_size, max_steps=args.max_steps,
                      checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                      progress=not args.no_progress, description=f"mnist_add N={args.n_digits}", capture=capture)
    steps = loop.total_steps(len(train))
    train_augment = DigitAugment().scaled(args.augment) if args.augment > 0 else None
    draws = device_generator(device, args.seed, generator) if capture else generator
    gedi = schedule = None
    extra = {}
    if args.gedi_weight > 0:
        weights = from_flags(GEDIWeights, args)
        sizes = None
        if args.estimate_sizes is not None:
            sizes = ClusterSizes(concepts, args.estimate_sizes, SIZE_PERIOD, *SIZE_BOUNDS)
            extra["cluster_sizes"] = sizes
        # several processes: a replay buffer and chains of their own each (the views are drawn alike everywhere)
        gedi = GEDIObjective(base, (1, 28, 28), weights, from_flags(SGLDConfig, args), device,
                             ranks.own_generator(args.seed, draws),
                             sizes=sizes, estimator=from_flags(EstimatorConfig, args), ranks=ranks)
        schedule = WeightSchedule(weights, early_prior=args.early_prior_weight, early_until=args.nesy_after)
        extra.update(gedi.checkpointed_state())
        for module in gedi.trained_modules().values():  # amortised: its generator trains beside the network
            optimizer.add_param_group({"params": module.parameters()})
    scheduler = None  # after every parameter group is known
    if args.schedule == "onecycle" and steps >= 20:  # too few steps for warm-up and decay: constant
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    loss = AdditionLoss(model, train, net, base, device, draws, args.nesy_after, train_augment, gedi, schedule,
                        args.gedi_weight, args.gedi_views, args.aug_warmup, labelled, args.concept_weight,
                        args.entropy_weight, capture=capture, ranks=ranks)

    relabelled: dict[int, dict] = {}  # step -> what relabelling did there (at most once per step)

    def relabel(step: int) -> dict | None:
        """Relabel once the NeSy loss is on (names only matter then), at most once per step."""
        if step < args.nesy_after or step in relabelled:
            return None
        relabelled[step] = relabel_by_training_sums(net, optimizer, train, device, concepts, args.relabel_exhaustive)
        return relabelled[step]

    def step(examples: torch.Tensor) -> dict[str, torch.Tensor]:
        if args.relabel_exhaustive and args.cluster_head and trainer.state.step == args.nesy_after:
            relabel(args.nesy_after)  # name the clusters before the first NeSy update (unless an epoch's end just did)
        return loss(examples, trainer.state.step)

    trainer: Trainer
    trained = gedi.trained_modules() if gedi is not None else {}
    trainer = Trainer(loop, len(train), loss if capture else step, {"net": net, **trained}, optimizer, generator,
                      scheduler, extra, run_info={"kind": KIND, "arch": args.arch, "args": dict(vars(args))},
                      on_epoch_end=(lambda state: relabel(state.step)) if args.relabel else None, device=device,
                      distributed=ranks)
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)

    def finish() -> dict:
        state = trainer.state
        metrics = evaluate_addition(net, test, device, concepts=True, ece_bins=ece_bins)
        results = {
            "args": dict(vars(args)),
            "world_size": ranks.world_size,
            "rank_batch_size": -(-args.batch_size // ranks.world_size),
            "steps": state.step,
            "train_examples": state.examples,
            "train_seconds": state.seconds,
            "train_examples_per_s": state.examples / max(state.seconds, 1e-9),
            "test_examples": len(test),
            "history": state.history,
            **metrics,
            "circuits": {key: c.stats for key, c in model.compiled.items()},
        }
        if test_ood is not None:
            results["ood"] = {"test_examples": len(test_ood),
                              **evaluate_addition(net, test_ood, device, concepts=True, ece_bins=ece_bins)}
        if gedi is not None and gedi.sizes is not None:
            results["cluster_size_estimates"] = gedi.sizes.history
        if args.relabel_exhaustive and args.cluster_head and args.nesy_after in relabelled:
            results["naming_at_nesy_start"] = relabelled[args.nesy_after]
        if isinstance(net, ClusterPermutation):
            results["cluster_to_digit"] = net.assignment()
        if ranks.is_main:  # one writer
            head = {"head": CLUSTER_HEAD} if isinstance(net, ClusterPermutation) else {}
            save_network(out / "mnist_net.pt", net, args.arch, KIND, **head)
            atomic_write_json(out / "results.json", results)
        return results

    return trainer, finish


def summary(results: dict) -> dict:
    """The headline numbers of a results dict (no circuits, confusion matrices or arguments)."""
    keep = {k: v for k, v in results.items() if k not in ("circuits", "args", "concepts", "ood", "history")}
    if "concepts" in results:
        keep.update({f"concept_{k}" if not k.startswith("concept") else k: v
                     for k, v in results["concepts"].items() if k != "confusion_matrix"})
    if "ood" in results:
        keep["ood_sum_accuracy"] = results["ood"]["sum_accuracy"]
        keep["ood_digit_accuracy"] = results["ood"]["digit_accuracy"]
    return keep


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``argv`` parsed with its ``--preset`` / ``--config`` applied."""
    return parse_with_presets(build_parser(), argv, COMMAND)


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse ``argv``, train, print the summary; returns the results dict."""
    results = run(parse_args(argv))
    shown = {k: results[k] for k in ("mean", "std")} if "per_seed" in results else summary(results)
    print(json.dumps(shown, indent=2), file=sys.stdout)
    return results
