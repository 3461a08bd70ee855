"""Train and evaluate DeepStochLog 0.0.1 on MNIST addition; prints one JSON line.

Runs inside the separate DeepStochLog venv made by ``python -m benchmarks.run`` (it
imports only deepstochlog, torch, numpy and the standard library).  Set up as
DeepStochLog's own ``examples/addition``: the grammar of
``deepstochlog_addition.pl``, its MNISTNet (the LeNet of DeepProbLog's
MNIST_Net, softmax output), Adam with lr 1e-3, its trainer's loss
(-log P(example)), batch 32, and its exact test accuracy (``calculate_accuracy``
scores every candidate sum of each example).  The examples are the ones
nesy_gedi trains on, passed as MNIST indices in ``--examples`` (a JSON file).
Grounding (SWI-Prolog, inside ``DeepStochLogModel.from_file``), training and
testing are timed separately.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent


class MNISTNet(nn.Module):
    """LeNet as in DeepStochLog's examples/models.py (and DeepProbLog's MNIST_Net)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.MaxPool2d(2, 2), nn.ReLU(True),
            nn.Conv2d(6, 16, 5), nn.MaxPool2d(2, 2), nn.ReLU(True),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 4 * 4, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.encoder(x).view(-1, 16 * 4 * 4)), 1)


def read_images(data_dir: Path, split: str) -> torch.Tensor:
    """MNIST images of a split from IDX files (.gz or plain), normalised as DeepStochLog's examples do."""
    stem = "train-images-idx3-ubyte" if split == "train" else "t10k-images-idx3-ubyte"
    for path in (data_dir / "MNIST" / "raw" / f"{stem}.gz", data_dir / "MNIST" / "raw" / stem):
        if path.exists():
            raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
            images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)
            return (torch.from_numpy(images.astype(np.float32)) / 255 - 0.5) / 0.5
    raise SystemExit(f"error: {stem}(.gz) not found under {data_dir / 'MNIST' / 'raw'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-digits", type=int, required=True)
    parser.add_argument("--examples", type=Path, required=True,
                        help="JSON: {train: [[indices a..., indices b...], sum], ...], test: [...]}")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    from deepstochlog.context import Context, ContextualizedTerm
    from deepstochlog.dataloader import DataLoader
    from deepstochlog.model import DeepStochLogModel
    from deepstochlog.network import Network, NetworkStore
    from deepstochlog.term import List, Term
    from deepstochlog.trainer import DeepStochLogLogger, DeepStochLogTrainer
    from deepstochlog.utils import calculate_accuracy

    n = args.n_digits
    tokens = [Term(f"t{i}") for i in range(1, 2 * n + 1)]
    # Columns alternate between the numbers: [a1, b1, a2, b2, ...].
    token_list = List(*[tokens[k * n + i] for i in range(n) for k in range(2)])

    def terms(split: str, examples: list) -> list:
        images = read_images(args.data_dir, split)
        return [ContextualizedTerm(context=Context({tokens[j]: images[index] for j, index in enumerate(indices)}),
                                   term=Term("multi_addition", Term(str(total)), Term(str(n)), token_list))
                for indices, total in examples]

    examples = json.loads(args.examples.read_text())
    train, test = terms("train", examples["train"]), terms("test", examples["test"])

    networks = NetworkStore(Network("number", MNISTNet(), index_list=[Term(str(d)) for d in range(10)]))
    start = time.perf_counter()
    model = DeepStochLogModel.from_file(file_location=str(HERE / "deepstochlog_addition.pl"),
                                        query=Term("multi_addition", Term("_"), Term(str(n)), token_list),
                                        networks=networks, device=torch.device("cpu"))
    ground_seconds = time.perf_counter() - start
    optimizer = torch.optim.Adam(model.get_all_net_parameters(), lr=args.lr)

    class Quiet(DeepStochLogLogger):
        def log(self, *args) -> None:
            pass

    trainer = DeepStochLogTrainer(logger=Quiet(), log_freq=10**9, accuracy_tester=("", lambda: ""))
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=False)
    start = time.perf_counter()
    trainer.train(model=model, optimizer=optimizer, dataloader=loader, epochs=1)
    train_seconds = time.perf_counter() - start

    start = time.perf_counter()
    accuracy = calculate_accuracy(model, DataLoader(test, batch_size=100, shuffle=False))[0]
    test_seconds = time.perf_counter() - start
    print(json.dumps({
        "system": "deepstochlog",
        "version": "0.0.1",
        "n_digits": n,
        "batch_size": args.batch_size,
        "train_examples": len(train),
        "updates": len(loader.dataset) // args.batch_size + bool(len(loader.dataset) % args.batch_size),
        "train_seconds": train_seconds,
        "train_examples_per_s": len(train) / train_seconds,
        "compile_seconds": ground_seconds,
        "test_examples": len(test),
        "test_seconds": test_seconds,
        "test_examples_per_s": len(test) / test_seconds,
        "sum_accuracy": accuracy,
    }))


if __name__ == "__main__":
    main()
