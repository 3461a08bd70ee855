"""MNIST addition of N-digit numbers through a ProbLog program (``tasks/mnist_add.py``).

    python tasks/mnist_add.py --n-digits 1 --epochs 1 --batch-size 32

Reasoning-shortcut settings (N=1): ``--pairs evenodd`` or ``--pairs restricted``
trains on a subset of digit pairs and tests in and out of distribution;
``--train-size`` keeps few examples.  Regularisers: ``--pretrained CKPT``
(e.g. from ``tasks/gedi_pretrain.py``), ``--gedi-weight W`` (loss = NeSy NLL + W *
GEDI terms on the same images: the clean view is the NeSy forward, the second an
augmented copy of the same image; ``--gedi-views augmented``: two augmented copies)
and ``--entropy-weight W`` (Marconato et al.: W * KL(batch-mean concept distribution || uniform)) and ``--concept-labels K``
(K labelled training images per digit, a supervised cross-entropy term on a
fresh augmented copy of them each step, weight ``--concept-weight``, next to the
NeSy loss).  ``--cluster-head`` maps the network's outputs (e.g. pretrained GEDI
clusters) onto digits through a learned doubly-stochastic matrix
(:class:`nesy_gedi.cluster_head.ClusterPermutation`); the GEDI terms then act on
the clusters and the NeSy loss names them.

Writes to ``--out``: ``checkpoint.pt`` (every ``--checkpoint-every`` steps and
each epoch; ``--resume`` continues from it), ``metrics.jsonl`` (one line per
step), and at the end ``mnist_net.pt`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ..augment import DigitAugment
from ..cluster_head import ClusterPermutation, mix_logits
from ..commands import (add_common_arguments, existing_file, nonnegative_float, nonnegative_int, output_dir,
                        positive_float, positive_int, probability, unit_fraction)
from ..data import AdditionDataset, load_mnist
from ..data.addition import addition_query
from ..data.concept_labels import labelled_concepts
from ..data.rsbench import SETTINGS as RSBENCH_SETTINGS, rsbench_split
from ..data.shortcuts import PAIR_SETS, n_concepts, pair_filter
from ..errors import DataError
from ..gedi import ClusterSizes, GEDIObjective, GEDIWeights, SGLDConfig
from ..model import NeSyModel
from ..networks import ARCHITECTURES, OneHot, build_network
from ..relabel import (best_renamings_by_counts, relabel_outputs, search_relabelling, set_cluster_permutation,
                       sum_counts)
from ..train.checkpoint import atomic_write_json, load_weights, network_state, save_network
from ..train.evaluate import evaluate_addition
from ..train.losses import entropy_regulariser, nesy_nll
from ..train.loop import LoopConfig, Trainer
from .common import begin_run, seed_everything

KIND = "mnist_add"
CLUSTER_HEAD = "cluster_permutation"
PROGRAMS = Path(__file__).resolve().parents[2] / "programs"


def build_model(n_digits: int, net: torch.nn.Module, programs: Path = PROGRAMS, n_concepts: int = 10) -> NeSyModel:
    """``mnist_add.pl`` for N=1, ``multi_add.pl`` (sum digits observed through ``OneHot``) for N>1;
    with ``n_concepts`` < 10 (N=1), ``mnist_add.pl`` with digits ``0..n_concepts-1``."""
    if n_digits == 1:
        program = programs / "mnist_add.pl"
        if n_concepts != 10:
            if not 1 <= n_concepts < 10:
                raise ValueError(f"n_concepts must be in 1..10, got {n_concepts}")
            program = program.read_text().replace("[0..9]", f"[0..{n_concepts - 1}]")
        return NeSyModel(program, {"mnist_net": net})
    if n_concepts != 10:
        raise ValueError("fewer than 10 digit values need --n-digits 1")
    return NeSyModel(programs / "multi_add.pl", {"mnist_net": net, "sum_digit": OneHot(10)})


def addition_inputs(data: AdditionDataset, examples: torch.Tensor, device,
                    images: torch.Tensor | None = None) -> tuple[str, dict[str, torch.Tensor]]:
    """The query and its input tensors for a batch of addition examples."""
    if images is None:
        images = data.images(examples, device)
    if data.n_digits == 1:
        return "addition(X, Y, Z)", {"X": images[:, 0, 0], "Y": images[:, 1, 0]}
    query, xs, ys, zs = addition_query(data.n_digits)
    inputs = {x: images[:, 0, i] for i, x in enumerate(xs)}
    inputs.update({y: images[:, 1, i] for i, y in enumerate(ys)})
    sum_digits = data.sum_digits[examples].to(images.device)
    inputs.update({z: sum_digits[:, i] for i, z in enumerate(zs)})
    return query, inputs


def batch_forward(model: NeSyModel, data: AdditionDataset, examples: torch.Tensor, device,
                  images: torch.Tensor | None = None):
    """``([batch] log P(observed sum), QueryResult, inputs)`` of one forward (``images``: e.g. augmented ones)."""
    query, inputs = addition_inputs(data, examples, device, images)
    result = model(query, inputs)
    if data.n_digits == 1:
        return result.select(observed_sum_indices(model, data, examples)), result, inputs
    return result.log_probs[:, 0], result, inputs


def observed_sum_indices(model: NeSyModel, data: AdditionDataset, examples: torch.Tensor) -> torch.Tensor:
    """N=1: the index of each example's observed sum among the answers of ``addition(X, Y, Z)``."""
    return model.answer_indices("addition(X, Y, Z)", ("X", "Y"), [int(s) for s in data.sums[examples]])


RELABEL_EXAMPLES = 1000
SIZE_PERIOD = 100  # --gedi-estimate-sizes: updates per estimate of the cluster sizes
SIZE_BOUNDS = (0.5, 1.5)  # ... and each size between these multiples of 1 / K


def training_sum_objective(data: AdditionDataset, examples: torch.Tensor, logits: torch.Tensor, device,
                           n_concepts: int = 10, max_batch: int = 200_000):
    """``orders [M, K] -> [M]`` mean log P(observed sum) of ``examples``, with their digit logits
    ``[n, 2, N, K]`` renamed by each order (all orders through one circuit, in chunks of ``max_batch``)."""
    scorer = build_model(data.n_digits, torch.nn.Identity(), n_concepts=n_concepts)
    n = len(examples)
    answers = observed_sum_indices(scorer, data, examples) if data.n_digits == 1 else None

    def mean_log_likelihood(orders: torch.Tensor) -> torch.Tensor:
        values = []
        with torch.no_grad():
            for chunk in orders.to(logits.device).split(max(1, max_batch // n)):
                renamed = logits[..., chunk].movedim(-2, 0).reshape(len(chunk) * n, *logits.shape[1:])
                query, inputs = addition_inputs(data, examples.repeat(len(chunk)), device, renamed)
                result = scorer(query, inputs)
                log_p = result.select(answers.repeat(len(chunk))) if answers is not None else result.log_probs[:, 0]
                values.append(log_p.view(len(chunk), n).mean(1).cpu())
        return torch.cat(values)

    return mean_log_likelihood


def relabel_by_training_sums(net: torch.nn.Module, optimizer: torch.optim.Optimizer | None, data: AdditionDataset,
                             device, n_concepts: int = 10, exhaustive: bool = False) -> dict:
    """Rename ``net``'s digits where that raises the mean log-likelihood of the sums of the first
    :data:`RELABEL_EXAMPLES` training examples (:func:`nesy_gedi.relabel.search_relabelling`).

    With ``exhaustive`` (single digits only) the search also starts from the best of all k! renamings
    of the hard predictions (:func:`nesy_gedi.relabel.best_renamings_by_counts`), so it is not trapped
    where every move of up to 4 names first loses likelihood."""
    examples = torch.arange(min(len(data), RELABEL_EXAMPLES))
    images = data.images(examples, device)
    info = {}
    if exhaustive and isinstance(net, ClusterPermutation):
        info = name_clusters_by_training_sums(net, optimizer, data, examples, images, device, n_concepts)
    logits = _digit_logits(net, images)
    objective = training_sum_objective(data, examples, logits, device, n_concepts)
    starts = None
    if exhaustive:  # also the best of all k! renamings of the hard predictions, counted
        predicted = logits[:, :, 0].argmax(-1)
        counts = sum_counts(predicted[:, 0], predicted[:, 1], data.sums[examples].long(), n_concepts)
        starts = best_renamings_by_counts(counts)
    order, before, after = search_relabelling(objective, n_concepts, starts=starts)
    if not torch.equal(order, torch.arange(n_concepts)):
        relabel_outputs(net, order, optimizer)
    return {"relabel_order": order.tolist(), "relabel_loglik_before": before, "relabel_loglik_after": after, **info}


def _digit_logits(net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``net``'s logits ``[n, 2, N, K]`` of addition images ``[n, 2, N, 1, 28, 28]``, in eval mode."""
    was_training = net.training
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(chunk) for chunk in images.view(-1, 1, 28, 28).split(4000)])
    net.train(was_training)
    return logits.view(*images.shape[:3], -1)


def name_clusters_by_training_sums(head: ClusterPermutation, optimizer: torch.optim.Optimizer | None,
                                   data: AdditionDataset, examples: torch.Tensor, images: torch.Tensor, device,
                                   n_concepts: int = 10) -> dict:
    """Name the clusterer's clusters directly (single digits): the best of all k! namings of its hard
    clusters, counted by the training sums they explain and rescored exactly on the cluster logits.
    Where that naming differs from the head's current map and explains the sums better (e.g. than the
    near-uniform map of a head that the NeSy loss has not trained yet), the head is set to it."""
    cluster_logits = _digit_logits(head.clusterer, images)
    predicted = cluster_logits[:, :, 0].argmax(-1)
    starts = best_renamings_by_counts(sum_counts(predicted[:, 0], predicted[:, 1], data.sums[examples].long(),
                                                 n_concepts))
    values = training_sum_objective(data, examples, cluster_logits, device, n_concepts)(starts)
    best = int(values.argmax())
    with torch.no_grad():  # the head's logits, from the same cluster logits (no second forward)
        head_logits = mix_logits(cluster_logits.flatten(0, 2), head.log_mixing()).view_as(cluster_logits)
    current = float(training_sum_objective(data, examples, head_logits, device, n_concepts)(
        torch.arange(n_concepts).unsqueeze(0))[0])
    names = torch.argsort(starts[best]).tolist()  # cluster c -> concept names[c]
    applied = names != head.assignment() and float(values[best]) > current + 1e-4
    if applied:
        set_cluster_permutation(head, starts[best], optimizer)
    return {"cluster_naming": starts[best].tolist(), "cluster_naming_loglik": float(values[best]),
            "head_loglik_before_naming": current, "cluster_naming_applied": applied}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist_add.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-digits", type=positive_int, default=1, help="digits per number (default 1)")
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many updates")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--lr", type=positive_float, default=5e-3, help="(peak) learning rate of Adam")
    parser.add_argument("--schedule", choices=("onecycle", "constant"), default="onecycle",
                        help="learning-rate schedule over all steps")
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default="mnist_cnn",
                        help="digit network: mnist_cnn (DeepProbLog's LeNet), ebm (EnergyCNN) or cnn_large (LargeCNN)")
    parser.add_argument("--augment", type=probability, default=0.0, metavar="S",
                        help="train on randomly augmented digit images (DigitAugment at strength S in (0, 1]; default 0: none)")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--train-size", type=positive_int, default=None, help="use only this many training examples")
    parser.add_argument("--test-size", type=positive_int, default=None)
    parser.add_argument("--pairs", choices=("all", *PAIR_SETS), default="all",
                        help="train on a restricted set of digit pairs (N=1); test in and out of distribution "
                             "(half: digits 0-4 only, a 5-way digit network)")
    parser.add_argument("--split", choices=("ours", "rsbench"), default="ours",
                        help="ours: disjoint random pairs of MNIST images, filtered; rsbench: rsbench's pool, uniform "
                             "over digit pairs (--pairs evenodd or half; metrics with rsbench's 10-bin ECE)")
    parser.add_argument("--pretrained", type=existing_file, default=None,
                        help="initial network weights (mnist_net.pt of gedi_pretrain.py)")
    parser.add_argument("--keep-head", action="store_true", help="keep the pretrained last layer (cluster order)")
    parser.add_argument("--cluster-head", action="store_true",
                        help="digits = a learned doubly-stochastic map (Sinkhorn) of the network's outputs; with "
                             "--pretrained the pretrained clusters are kept and only named")
    parser.add_argument("--relabel", action="store_true",
                        help="after each epoch, rename digits (permutations of up to 4 digits) where that "
                             "raises the likelihood of the training sums: a label-free repair of a wrong map")
    parser.add_argument("--relabel-exhaustive", action="store_true",
                        help="with --relabel (N=1): also start the search from the best of all 10! renamings of "
                             "the hard digit predictions, scored by the training sums they explain; with "
                             "--cluster-head, of the clusterer's own clusters (the head is set to the best "
                             "naming), also once just before the NeSy loss starts (--nesy-after)")
    parser.add_argument("--gedi-weight", type=nonnegative_float, default=0.0,
                        help="weight of the GEDI terms next to the NeSy loss")
    parser.add_argument("--gedi-gen-weight", type=nonnegative_float, default=GEDIWeights.gen)
    parser.add_argument("--gedi-prior-weight", type=nonnegative_float, default=GEDIWeights.prior)
    parser.add_argument("--gedi-prior-floor", type=unit_fraction, default=None, metavar="F",
                        help="replace GEDI's uniformity prior by a floor: each cluster must hold at least F/10 of a "
                             "batch, larger clusters cost nothing (default: uniform). Measured on EvenOdd: GEDI "
                             "stalls at a constant assignment at the floor (README)")
    parser.add_argument("--gedi-estimate-sizes", type=nonnegative_int, default=None, metavar="STEPS",
                        help="after STEPS updates under the uniform prior, replace it by a KL to estimated cluster "
                             f"sizes: the clusters' hard-assignment fractions over the last {SIZE_PERIOD} updates, "
                             f"each between {SIZE_BOUNDS[0]} and {SIZE_BOUNDS[1]} times 1/K, re-estimated every "
                             f"{SIZE_PERIOD} updates (for unbalanced digits such as EvenOdd's 1:2, where "
                             "1000 put GEDI-from-scratch at the ceiling on 5 of 5 seeds, README; default: uniform)")
    parser.add_argument("--sgld-steps", type=positive_int, default=10)
    parser.add_argument("--gedi-views", choices=("clean", "augmented"), default="clean",
                        help="GEDI's first view: the clean images (their NeSy forward, no extra forward; default) or "
                             "a second augmented copy (two augmented views, as gedi_pretrain.py; one more forward)")
    parser.add_argument("--gedi-aug-warmup", type=nonnegative_int, default=0, metavar="STEPS",
                        help="ramp the GEDI view's augmentation strength from 0 to 1 over the first STEPS updates "
                             "(as gedi_pretrain.py's --aug-warmup; default 0: full strength from the start)")
    parser.add_argument("--nesy-after", type=nonnegative_int, default=0, metavar="STEPS",
                        help="leave the NeSy loss out of the first STEPS updates, so that the other terms (GEDI) "
                             "form the clusters before the program names them (default 0)")
    parser.add_argument("--gedi-early-prior-weight", type=nonnegative_float, default=None, metavar="W",
                        help="the GEDI uniformity prior's weight before --nesy-after (default: --gedi-prior-weight); "
                             "e.g. 1 where the training digits are not uniform (EvenOdd: 1:2), 5 once the program "
                             "must not merge clusters")
    parser.add_argument("--entropy-weight", type=nonnegative_float, default=0.0,
                        help="weight of the concept entropy regulariser")
    parser.add_argument("--concept-labels", type=nonnegative_int, default=0, metavar="K",
                        help="K labelled training images per digit, learned with cross-entropy (default 0: none)")
    parser.add_argument("--concept-weight", type=nonnegative_float, default=1.0,
                        help="weight of the --concept-labels cross-entropy")
    parser.add_argument("--out", type=output_dir, default="runs/mnist_add", help="directory of the run")
    parser.add_argument("--checkpoint-every", type=positive_int, default=None,
                        help="steps between checkpoints (default: every epoch)")
    parser.add_argument("--resume", action="store_true", help="continue the run found in --out")
    parser.add_argument("--log-every", type=positive_int, default=100, help="steps between log lines off a terminal")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    add_common_arguments(parser)
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
    """Train and evaluate; returns (and writes) the results dict."""
    args, checkpoint = begin_run(args, KIND)
    out = Path(args.out)
    if args.pairs != "all" and args.n_digits != 1:
        raise DataError("--pairs needs --n-digits 1")
    if args.relabel and args.n_digits > 2:
        raise DataError(f"--relabel supports --n-digits 1 or 2, not {args.n_digits}: each epoch it evaluates 2,175 "
                        f"renamings on {RELABEL_EXAMPLES} training examples (about 14 s per round already at N=2)")
    if args.relabel_exhaustive and not (args.relabel and args.n_digits == 1):
        raise DataError("--relabel-exhaustive needs --relabel and --n-digits 1")
    if args.gedi_early_prior_weight is not None and not (args.gedi_weight > 0 and args.nesy_after):
        raise DataError("--gedi-early-prior-weight needs --gedi-weight and --nesy-after")
    if args.nesy_after and not (args.gedi_weight > 0 or args.concept_labels or args.entropy_weight > 0):
        raise DataError("--nesy-after needs another loss term to train on before it (e.g. --gedi-weight 1)")
    if args.gedi_estimate_sizes is not None and not args.gedi_weight > 0:
        raise DataError("--gedi-estimate-sizes needs --gedi-weight")
    if args.gedi_estimate_sizes is not None and args.gedi_prior_floor is not None:
        raise DataError("--gedi-estimate-sizes and --gedi-prior-floor are two different priors; choose one")
    if args.split == "rsbench" and args.pairs not in RSBENCH_SETTINGS:
        raise DataError(f"--split rsbench needs --pairs {' or '.join(RSBENCH_SETTINGS)}")
    if args.gedi_weight > 0 and SGLDConfig.buffer_size < 2 * args.n_digits * args.batch_size:
        raise DataError(f"--gedi-weight with --batch-size {args.batch_size} and --n-digits {args.n_digits} needs "
                        f"{2 * args.n_digits * args.batch_size} SGLD chains, more than the replay buffer's "
                        f"{SGLDConfig.buffer_size}; use a smaller --batch-size")
    seed_everything(args.seed)
    device = torch.device(args.device)
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
    labelled = label_augment = None
    if args.concept_labels:
        label_augment = DigitAugment()
        indices, labels = labelled_concepts(train_split, args.concept_labels, args.seed, concepts)
        labelled = train_split.normalized(indices, device), labels.to(device)

    base = build_network(args.arch, concepts).to(device)
    generator = torch.Generator().manual_seed(args.seed)
    # net: images -> digit logits (the neural predicate); base: the network that GEDI trains
    net = ClusterPermutation(base, concepts, generator=generator).to(device) if args.cluster_head else base
    if args.pretrained and checkpoint is None:
        load_pretrained(net, args.pretrained, args.arch, args.keep_head)
    model = build_model(args.n_digits, net, n_concepts=concepts)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    loop = LoopConfig(out=out, epochs=args.epochs, batch_size=args.batch_size, max_steps=args.max_steps,
                      checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                      progress=not args.no_progress, description=f"mnist_add N={args.n_digits}")
    steps = loop.total_steps(len(train))
    scheduler = None
    if args.schedule == "onecycle" and steps >= 20:  # too few steps for warm-up and decay: constant
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    train_augment = DigitAugment().scaled(args.augment) if args.augment > 0 else None
    gedi = augment = None
    extra = {}
    if args.gedi_weight > 0:
        weights = GEDIWeights(gen=args.gedi_gen_weight, prior=args.gedi_prior_weight,
                              prior_floor=args.gedi_prior_floor or 0.0)
        sizes = None
        if args.gedi_estimate_sizes is not None:
            sizes = ClusterSizes(concepts, args.gedi_estimate_sizes, SIZE_PERIOD, *SIZE_BOUNDS)
            extra["cluster_sizes"] = sizes
        gedi = GEDIObjective(base, (1, 28, 28), weights, SGLDConfig(steps=args.sgld_steps), device, generator,
                             sizes=sizes)
        augment = DigitAugment()
        extra["replay_buffer"] = gedi.sampler.buffer

    relabelled: dict[int, dict] = {}  # step -> what relabelling did there (at most once per step)

    def relabel(step: int) -> dict | None:
        """Relabel once the NeSy loss is on (names only matter then), at most once per step."""
        if step < args.nesy_after or step in relabelled:
            return None
        relabelled[step] = relabel_by_training_sums(net, optimizer, train, device, concepts, args.relabel_exhaustive)
        return relabelled[step]

    def step(examples: torch.Tensor) -> dict[str, torch.Tensor]:
        images = None
        if train_augment is not None:
            images = train.images(examples, device)
            images = train_augment(images.view(-1, 1, 28, 28), generator).view_as(images)
        if args.relabel_exhaustive and args.cluster_head and trainer.state.step == args.nesy_after:
            relabel(args.nesy_after)  # name the clusters before the first NeSy update (unless an epoch's end just did)
        log_prob, result, inputs = batch_forward(model, train, examples, device, images)
        logits = result.logits["mnist_net"]
        t = trainer.state.step
        nll = nesy_nll(log_prob)
        terms = {"nll": nll.detach()}
        loss = nll if t >= args.nesy_after else nll.new_zeros(())  # the NLL is still logged (and checked)
        if gedi is not None:
            early = t < args.nesy_after and args.gedi_early_prior_weight is not None
            gedi.weights.prior = args.gedi_early_prior_weight if early else args.gedi_prior_weight
            # view 1: the clean images (their NeSy logits, no second forward); view 2: an augmented copy
            # of the same images, in the same row order as the logits
            clean = result.network_inputs("mnist_net", inputs)
            cluster_logits = logits if net is base else None  # a cluster head: GEDI forwards the clusters itself
            views = augment.warmed_up(t, args.gedi_aug_warmup)
            if args.gedi_views == "augmented":  # two augmented copies; the clean logits serve as data energy
                gedi_terms = gedi(views(clean, generator), views(clean, generator), cluster_logits)
            else:
                gedi_terms = gedi(clean, views(clean, generator), cluster_logits, view1_logits=cluster_logits)
            terms.update({f"gedi_{k}": v for k, v in gedi_terms.items().items()})
            loss = loss + args.gedi_weight * gedi_terms.total
        if labelled is not None:
            # a fresh augmented copy each step: a handful of images must not just be memorised
            concept_ce = F.cross_entropy(net(label_augment(labelled[0], generator)), labelled[1])
            terms["concept_ce"] = concept_ce.detach()
            loss = loss + args.concept_weight * concept_ce
        if args.entropy_weight > 0:
            entropy = entropy_regulariser(logits)
            terms["entropy"] = entropy.detach()
            loss = loss + args.entropy_weight * entropy
        return {"loss": loss, **terms}

    trainer: Trainer
    trainer = Trainer(loop, len(train), step, {"net": net}, optimizer, generator, scheduler, extra,
                      run_info={"kind": KIND, "arch": args.arch, "args": dict(vars(args))},
                      on_epoch_end=(lambda state: relabel(state.step)) if args.relabel else None)
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)
    state = trainer.fit()

    metrics = evaluate_addition(net, test, device, concepts=True, ece_bins=ece_bins)
    results = {
        "args": dict(vars(args)),
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
        save_network(out / "mnist_net.pt", net, args.arch, KIND, head=CLUSTER_HEAD)
    else:
        save_network(out / "mnist_net.pt", net, args.arch, KIND)
    atomic_write_json(out / "results.json", results)
    return results


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


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse ``argv``, train, print the summary; returns the results dict."""
    results = run(build_parser().parse_args(argv))
    print(json.dumps(summary(results), indent=2), file=sys.stdout)
    return results
