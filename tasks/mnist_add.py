"""Train MNIST addition (N-digit numbers) through a ProbLog program.

    python tasks/mnist_add.py --n-digits 1 --epochs 1 --batch-size 32 --device cpu

Reasoning-shortcut settings (N=1): ``--pairs evenodd`` or ``--pairs restricted``
trains on a subset of digit pairs and tests in and out of distribution;
``--train-size`` keeps few examples.  Regularisers: ``--pretrained CKPT``
(e.g. from ``tasks/gedi_pretrain.py``), ``--gedi-weight W`` (loss = NeSy NLL + W *
GEDI terms on the same images, with the clean and an augmented view) and ``--entropy-weight W`` (the baseline of
Marconato et al.: W * KL(batch-mean concept distribution || uniform)).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nesy_gedi import NeSyModel  # noqa: E402
from nesy_gedi.augment import DigitAugment  # noqa: E402
from nesy_gedi.data import AdditionDataset, load_mnist  # noqa: E402
from nesy_gedi.data.addition import add_digit_lists, addition_query  # noqa: E402
from nesy_gedi.data.shortcuts import PAIR_SETS, pair_filter  # noqa: E402
from nesy_gedi.errors import DataError  # noqa: E402
from nesy_gedi.gedi import GEDIObjective, GEDIWeights, SGLDConfig  # noqa: E402
from nesy_gedi.metrics import concept_report  # noqa: E402
from nesy_gedi.networks import MnistCNN, OneHot  # noqa: E402


def build_model(n_digits: int, net: MnistCNN) -> NeSyModel:
    if n_digits == 1:
        return NeSyModel(ROOT / "programs" / "mnist_add.pl", {"mnist_net": net})
    return NeSyModel(ROOT / "programs" / "multi_add.pl", {"mnist_net": net, "sum_digit": OneHot(10)})


def batch_forward(model: NeSyModel, data: AdditionDataset, examples: torch.Tensor, device,
                  images: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``[batch]`` log P(observed sum) and the digit logits ``[batch * 2N, 10]`` of the same forward."""
    if images is None:
        images = data.images(examples, device)
    n = data.n_digits
    if n == 1:
        query, inputs = "addition(X, Y, Z)", {"X": images[:, 0, 0], "Y": images[:, 1, 0]}
        sums = [int(s) for s in data.sums[examples]]
        result = model(query, inputs)
        return result.select(model.answer_indices(query, ("X", "Y"), sums)), result.logits["mnist_net"]
    query, xs, ys, zs = addition_query(n)
    inputs = {x: images[:, 0, i] for i, x in enumerate(xs)}
    inputs.update({y: images[:, 1, i] for i, y in enumerate(ys)})
    sum_digits = data.sum_digits[examples].to(device)
    inputs.update({z: sum_digits[:, i] for i, z in enumerate(zs)})
    result = model(query, inputs)
    return result.log_probs[:, 0], result.logits["mnist_net"]


def batch_log_prob(model: NeSyModel, data: AdditionDataset, examples: torch.Tensor, device) -> torch.Tensor:
    return batch_forward(model, data, examples, device)[0]


@torch.no_grad()
def predict_digits(net: MnistCNN, data: AdditionDataset, device, batch_size: int = 1000) -> torch.Tensor:
    """Concept probabilities ``[E, 2, N, 10]`` for every digit image."""
    net.eval()
    out = []
    for examples in data.batches(batch_size, shuffle=False):
        images = data.images(examples, device)
        out.append(net(images.view(-1, 1, 28, 28)).softmax(1).view(len(examples), 2, data.n_digits, -1).cpu())
    net.train()
    return torch.cat(out) if out else torch.zeros(0, 2, data.n_digits, 10)


def evaluate(net: MnistCNN, data: AdditionDataset, device, batch_size: int = 1000, concepts: bool = False) -> dict:
    """Sum accuracy (sum of the predicted digits) and digit (concept) accuracy; all concept metrics if asked."""
    probs = predict_digits(net, data, device, batch_size)
    pred = probs.argmax(-1)
    result = {
        "sum_accuracy": float((add_digit_lists(pred[:, 0], pred[:, 1]) == data.sum_digits).all(1).float().mean()),
        "digit_accuracy": float((pred == data.digits).float().mean()),
    }
    if concepts:
        result["concepts"] = concept_report(probs.reshape(-1, 10), data.digits.reshape(-1), 10)
    return result


def entropy_regulariser(logits: torch.Tensor) -> torch.Tensor:
    """KL(batch-mean p(c|x) || uniform) = log K - H(mean p): Marconato et al.'s concept entropy term."""
    mean = logits.softmax(1).mean(0)
    return math.log(logits.shape[1]) + (mean * mean.clamp_min(1e-12).log()).sum()


def load_pretrained(net: MnistCNN, path: str | Path, keep_head: bool = False) -> None:
    """Load a checkpoint; unless ``keep_head``, re-initialise the last layer.

    GEDI clusters are digits up to an unknown permutation: a fresh head lets the
    program choose the cluster -> digit map instead of starting from a random one.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pretrained checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu")
    net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    if not keep_head:
        net.classifier[-1].reset_parameters()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-digits", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3, help="(peak) learning rate of Adam")
    parser.add_argument("--schedule", choices=("onecycle", "constant"), default="onecycle",
                        help="learning-rate schedule over all epochs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=None, help="use only this many training examples")
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--pairs", choices=("all", *PAIR_SETS), default="all",
                        help="train on a restricted set of digit pairs (N=1); test in and out of distribution")
    parser.add_argument("--pretrained", default=None, help="initial network weights (checkpoint of gedi_pretrain.py)")
    parser.add_argument("--keep-head", action="store_true", help="keep the pretrained last layer (cluster order)")
    parser.add_argument("--gedi-weight", type=float, default=0.0, help="weight of the GEDI terms next to the NeSy loss")
    parser.add_argument("--gedi-gen-weight", type=float, default=GEDIWeights.gen)
    parser.add_argument("--gedi-prior-weight", type=float, default=GEDIWeights.prior)
    parser.add_argument("--sgld-steps", type=int, default=10)
    parser.add_argument("--entropy-weight", type=float, default=0.0, help="weight of the concept entropy regulariser")
    parser.add_argument("--out", default="runs/mnist_add", help="directory for checkpoint and results JSON")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.pairs != "all" and args.n_digits != 1:
        parser.error("--pairs needs --n-digits 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    train_split, test_split = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    restrict = None if args.pairs == "all" else pair_filter(args.pairs)
    train = AdditionDataset(train_split, args.n_digits, args.seed, args.train_size, restrict)
    test = AdditionDataset(test_split, args.n_digits, args.seed, args.test_size, restrict)
    test_ood = None
    if args.pairs != "all":
        test_ood = AdditionDataset(test_split, 1, args.seed, args.test_size, pair_filter(args.pairs, False))

    net = MnistCNN().to(device)
    if args.pretrained:
        load_pretrained(net, args.pretrained, args.keep_head)
    model = build_model(args.n_digits, net)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    steps = args.epochs * -(-len(train) // args.batch_size)
    scheduler = None
    if args.schedule == "onecycle" and steps >= 20:  # too few steps for warm-up and decay: constant
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    gedi = augment = None
    if args.gedi_weight > 0:
        weights = GEDIWeights(gen=args.gedi_gen_weight, prior=args.gedi_prior_weight)
        gedi = GEDIObjective(net, (1, 28, 28), weights, SGLDConfig(steps=args.sgld_steps), device, generator)
        augment = DigitAugment()

    start, seen, history = time.perf_counter(), 0, []
    for epoch in range(args.epochs):
        sums: dict[str, float] = {}
        bar = tqdm(list(train.batches(args.batch_size, shuffle=True, generator=generator)),
                   desc=f"epoch {epoch + 1}", disable=args.no_progress)
        for examples in bar:
            images = train.images(examples, device)
            log_prob, logits = batch_forward(model, train, examples, device, images)
            loss = -log_prob.mean()
            terms = {"nll": loss.item()}
            if gedi is not None:
                flat = images.view(-1, 1, 28, 28)
                # views: the clean images (their NeSy logits, no second forward) and an augmented copy
                gedi_terms = gedi(flat, augment(flat, generator), logits, view1_logits=logits)
                terms.update({f"gedi_{k}": v for k, v in gedi_terms.items().items()})
                loss = loss + args.gedi_weight * gedi_terms.total
            if args.entropy_weight > 0:
                entropy = entropy_regulariser(logits)
                terms["entropy"] = entropy.item()
                loss = loss + args.entropy_weight * entropy
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            seen += len(examples)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        history.append({"epoch": epoch + 1, **{k: v / max(len(bar), 1) for k, v in sums.items()}})
    train_seconds = time.perf_counter() - start

    metrics = evaluate(net, test, device, concepts=True)
    results = {
        "args": vars(args),
        "train_examples": seen,
        "train_seconds": train_seconds,
        "train_examples_per_s": seen / train_seconds,
        "test_examples": len(test),
        "history": history,
        **metrics,
        "circuits": {key: c.stats for key, c in model.compiled.items()},
    }
    if test_ood is not None:
        results["ood"] = {"test_examples": len(test_ood), **evaluate(net, test_ood, device, concepts=True)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out / "mnist_net.pt")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(summary(results), indent=2))
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


if __name__ == "__main__":
    main()
