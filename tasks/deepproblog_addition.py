"""MNIST addition written against ``nesy_gedi.deepproblog`` (DeepProbLog's API), as a DeepProbLog user would.

    python tasks/deepproblog_addition.py --n-digits 1 --epochs 1
    python tasks/deepproblog_addition.py --task list-sum --max-length 5

``--task addition`` (default) trains ``addition``/``multi_addition`` of
``programs/addition.pl`` on pairs of N-digit numbers; ``--task list-sum`` the
sum of a list of 1 to ``--max-length`` digit images (``programs/list_sum.pl``),
where every list length is its own query template.  Prints DeepProbLog's log
lines and writes ``results.json`` (and ``model.pth``, DeepProbLog's
``save_state`` format) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from nesy_gedi.programs import program_path
from nesy_gedi.commands import add_common_arguments, output_dir, positive_float, positive_int, run_command
from nesy_gedi.deepproblog.dataset import DataLoader
from nesy_gedi.deepproblog.engines import ExactEngine
from nesy_gedi.deepproblog.evaluate import get_confusion_matrix
from nesy_gedi.deepproblog.examples.MNIST.data import MNIST_test, MNIST_train, MNISTListSum, addition
from nesy_gedi.deepproblog.examples.MNIST.network import MNIST_Net
from nesy_gedi.deepproblog.model import Model
from nesy_gedi.deepproblog.network import Network
from nesy_gedi.deepproblog.train import train_model



def run(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("addition", "list-sum"), default="addition")
    parser.add_argument("--n-digits", type=positive_int, default=1, help="digits per number (addition)")
    parser.add_argument("--max-length", type=positive_int, default=5, help="longest list (list-sum)")
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--batch-size", type=positive_int, default=2, help="DeepProbLog's example uses 2")
    parser.add_argument("--lr", type=positive_float, default=1e-3)
    parser.add_argument("--train-size", type=positive_int, default=None, help="first examples only (default: all)")
    parser.add_argument("--test-size", type=positive_int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-iter", type=positive_int, default=1000)
    parser.add_argument("--out", type=output_dir, default=Path("runs/deepproblog_addition"))
    add_common_arguments(parser, device=True, data=True)
    args = parser.parse_args(argv)
    args.out = Path(args.out)
    if args.data_dir is not None:
        os.environ["NESY_GEDI_DATA"] = str(args.data_dir)
    torch.manual_seed(args.seed)
    if args.task == "addition":
        train_set, test_set, program = addition(args.n_digits, "train"), addition(args.n_digits, "test"), "addition.pl"
    else:
        train_set, test_set = MNISTListSum("train", args.max_length, args.seed), MNISTListSum("test", args.max_length, args.seed)
        program = "list_sum.pl"
    if args.train_size:
        train_set = train_set.subset(args.train_size)
    if args.test_size:
        test_set = test_set.subset(args.test_size)
    network = MNIST_Net().to(args.device)
    net = Network(network, "mnist_net", batching=True)
    net.optimizer = torch.optim.Adam(network.parameters(), lr=args.lr)
    model = Model(program_path(program), [net])
    model.set_engine(ExactEngine(model), cache=True)
    model.add_tensor_source("train", MNIST_train)
    model.add_tensor_source("test", MNIST_test)
    loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed)
    start = time.perf_counter()
    train_model(model, loader, args.epochs, log_iter=args.log_iter, out=args.out)
    train_s = time.perf_counter() - start
    model.save_state(args.out / "model.pth")
    start = time.perf_counter()
    accuracy = get_confusion_matrix(model, test_set).accuracy()
    test_s = time.perf_counter() - start
    results = {"task": args.task, "n_digits": args.n_digits, "max_length": args.max_length, "epochs": args.epochs,
               "batch_size": args.batch_size, "train_examples": len(train_set), "test_examples": len(test_set),
               "train_seconds": train_s, "train_examples_per_s": args.epochs * len(train_set) / train_s,
               "test_seconds": test_s, "test_examples_per_s": len(test_set) / test_s, "test_accuracy": accuracy,
               "templates": len(model.nesy.compiled)}
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    sys.exit(run_command(run))
