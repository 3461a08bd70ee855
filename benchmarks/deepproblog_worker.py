"""Train and evaluate DeepProbLog 2.1.0 on MNIST addition; prints one JSON line.

Runs inside the separate DeepProbLog venv made by ``python -m benchmarks.run`` (it
imports only deepproblog, torch and the standard library).  Uses DeepProbLog's
own example program, network, data and training loop (Adam, lr 1e-3, batch 2,
exact engine with its circuit cache), timing training, circuit construction
(ground + compile, inside ``Solver.build_ac``) and test evaluation separately.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-digits", type=int, default=1)
    parser.add_argument("--train-examples", type=int, default=None, help="default: one epoch")
    parser.add_argument("--test-examples", type=int, default=None, help="default: the whole test set")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    import deepproblog
    from deepproblog.dataset import DataLoader
    from deepproblog.engines import ExactEngine
    from deepproblog.evaluate import get_confusion_matrix
    from deepproblog.examples.MNIST.data import MNIST_test, MNIST_train, addition
    from deepproblog.examples.MNIST.network import MNIST_Net
    from deepproblog.model import Model
    from deepproblog.network import Network
    from deepproblog.solver import Solver
    from deepproblog.train import TrainObject

    compile_seconds = [0.0]
    build_ac = Solver.build_ac

    def timed_build_ac(self, q):
        start = time.perf_counter()
        try:
            return build_ac(self, q)
        finally:
            compile_seconds[0] += time.perf_counter() - start

    Solver.build_ac = timed_build_ac

    train_set = addition(args.n_digits, "train", seed=args.seed)
    test_set = addition(args.n_digits, "test", seed=args.seed)
    if args.train_examples:
        train_set = train_set.subset(min(args.train_examples, len(train_set)))
    if args.test_examples:
        test_set = test_set.subset(min(args.test_examples, len(test_set)))

    network = MNIST_Net()
    net = Network(network, "mnist_net", batching=True)
    net.optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    program = Path(deepproblog.__file__).parent / "examples" / "MNIST" / "models" / "addition.pl"
    model = Model(str(program), [net])
    model.set_engine(ExactEngine(model), cache=True)
    model.add_tensor_source("train", MNIST_train)
    model.add_tensor_source("test", MNIST_test)

    loader = DataLoader(train_set, args.batch_size, False)
    trainer = TrainObject(model)
    start = time.perf_counter()
    trainer.train(loader, 1, verbose=0, log_iter=10**9)
    train_seconds = time.perf_counter() - start
    train_compile = compile_seconds[0]

    start = time.perf_counter()
    accuracy = get_confusion_matrix(model, test_set, verbose=0).accuracy()
    test_seconds = time.perf_counter() - start
    print(json.dumps({
        "system": "deepproblog",
        "version": "2.1.0",
        "n_digits": args.n_digits,
        "train_examples": len(train_set),
        "train_seconds": train_seconds,
        "train_examples_per_s": len(train_set) / train_seconds,
        "compile_seconds": train_compile,
        "test_examples": len(test_set),
        "test_seconds": test_seconds,
        "test_examples_per_s": len(test_set) / test_seconds,
        "test_compile_seconds": compile_seconds[0] - train_compile,
        "sum_accuracy": accuracy,
    }))


if __name__ == "__main__":
    main()
