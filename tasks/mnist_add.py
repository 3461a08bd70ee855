"""Train MNIST addition (N-digit numbers) through a ProbLog program.

    python tasks/mnist_add.py --n-digits 1 --epochs 1 --batch-size 32 --device cpu
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nesy_gedi import NeSyModel  # noqa: E402
from nesy_gedi.data import AdditionDataset, load_mnist  # noqa: E402
from nesy_gedi.data.addition import add_digit_lists, addition_query  # noqa: E402
from nesy_gedi.networks import MnistCNN, OneHot  # noqa: E402


def build_model(n_digits: int, net: MnistCNN) -> NeSyModel:
    if n_digits == 1:
        return NeSyModel(ROOT / "programs" / "mnist_add.pl", {"mnist_net": net})
    return NeSyModel(ROOT / "programs" / "multi_add.pl", {"mnist_net": net, "sum_digit": OneHot(10)})


def batch_log_prob(model: NeSyModel, data: AdditionDataset, examples: torch.Tensor, device) -> torch.Tensor:
    images = data.images(examples, device)
    n = data.n_digits
    if n == 1:
        query, inputs = "addition(X, Y, Z)", {"X": images[:, 0, 0], "Y": images[:, 1, 0]}
        sums = [int(s) for s in data.sums[examples]]
        return model.log_prob(query, inputs, model.answer_indices(query, ("X", "Y"), sums))
    query, xs, ys, zs = addition_query(n)
    inputs = {x: images[:, 0, i] for i, x in enumerate(xs)}
    inputs.update({y: images[:, 1, i] for i, y in enumerate(ys)})
    sum_digits = data.sum_digits[examples].to(device)
    inputs.update({z: sum_digits[:, i] for i, z in enumerate(zs)})
    return model.log_prob(query, inputs)


@torch.no_grad()
def evaluate(net: MnistCNN, data: AdditionDataset, device, batch_size: int = 1000) -> dict:
    """Sum accuracy (sum of the predicted digits) and digit (concept) accuracy."""
    net.eval()
    correct_sum = correct_digit = 0
    for examples in data.batches(batch_size, shuffle=False):
        images = data.images(examples, device)
        pred = net(images.view(-1, 1, 28, 28)).argmax(1).view(len(examples), 2, data.n_digits).cpu()
        digits = data.digits[examples]
        correct_digit += int((pred == digits).sum())
        correct_sum += int((add_digit_lists(pred[:, 0], pred[:, 1]) == data.sum_digits[examples]).all(1).sum())
    net.train()
    return {"sum_accuracy": correct_sum / len(data), "digit_accuracy": correct_digit / (len(data) * 2 * data.n_digits)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-digits", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3, help="(peak) learning rate of Adam")
    parser.add_argument("--schedule", choices=("onecycle", "constant"), default="onecycle", help="learning-rate schedule over all epochs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=None, help="use only this many training examples")
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--out", default="runs/mnist_add", help="directory for checkpoint and results JSON")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    train = AdditionDataset(load_mnist("train", args.data_dir), args.n_digits, args.seed, args.train_size)
    test = AdditionDataset(load_mnist("test", args.data_dir), args.n_digits, args.seed, args.test_size)
    net = MnistCNN().to(device)
    model = build_model(args.n_digits, net)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    steps = args.epochs * -(-len(train) // args.batch_size)
    scheduler = None
    if args.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.1)

    start = time.perf_counter()
    seen = 0
    for epoch in range(args.epochs):
        bar = tqdm(list(train.batches(args.batch_size, shuffle=True, generator=generator)), desc=f"epoch {epoch + 1}", disable=args.no_progress)
        for examples in bar:
            loss = -batch_log_prob(model, train, examples, device).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            seen += len(examples)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    train_seconds = time.perf_counter() - start
    metrics = evaluate(net, test, device)
    compiled = {key: c.stats for key, c in model.compiled.items()}
    results = {
        "args": vars(args),
        "train_examples": seen,
        "train_seconds": train_seconds,
        "train_examples_per_s": seen / train_seconds,
        **metrics,
        "circuits": compiled,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out / "mnist_net.pt")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps({k: v for k, v in results.items() if k not in ("circuits", "args")}, indent=2))
    return results


if __name__ == "__main__":
    main()
