"""NeSy overhead: time per training step through the program vs plain supervised cross-entropy.

Both train the same MnistCNN with Adam on the same images (2 * N * batch digits per
step); the NeSy step adds the leaf table, circuit forward and backward.

    python -m benchmarks.overhead --n-digits 1 --batch-size 32 --steps 200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nesy_gedi.commands import add_common_arguments, positive_int, run_command
from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.networks import MnistCNN
from nesy_gedi.recipes.addition_model import batch_forward, build_model

ROOT = Path(__file__).resolve().parents[1]


def time_steps(steps: dict, batches: list[torch.Tensor], warmup: int = 20) -> dict[str, float]:
    """Median seconds per call of each ``steps[name](batch)`` after warm-up.

    The steps take turns on every batch, so a machine that speeds up or slows down
    during the measurement affects all of them alike (their ratio stays fair).
    """
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i, examples in enumerate(batches):
        for name, step in steps.items():
            start = time.perf_counter()
            step(examples)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def measure(n_digits: int, batch_size: int, steps: int, device: str, data_dir: str | None = None,
            compile_networks: bool = False) -> dict:
    torch.manual_seed(0)
    data = AdditionDataset(load_mnist("train", data_dir), n_digits, seed=0)
    generator = torch.Generator().manual_seed(0)
    full = [b for b in data.batches(batch_size, shuffle=True, generator=generator) if len(b) == batch_size]
    if not full:
        raise ValueError(f"--batch-size {batch_size} is larger than the {len(data)} examples of N={n_digits}")
    batches = [full[i % len(full)] for i in range(steps + 20)]  # as many as asked, repeating the epoch if needed

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    net = MnistCNN().to(device)
    model = build_model(n_digits, torch.compile(net) if compile_networks else net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def nesy_step(examples: torch.Tensor) -> None:
        loss = -batch_forward(model, data, examples, device)[0].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()

    sup_net = MnistCNN().to(device)
    sup_optimizer = torch.optim.Adam(sup_net.parameters(), lr=1e-3)
    sup_call = torch.compile(sup_net) if compile_networks else sup_net

    def supervised_step(examples: torch.Tensor) -> None:
        images = data.images(examples, device).view(-1, 1, 28, 28)
        labels = data.digits[examples].reshape(-1).to(device)
        loss = F.cross_entropy(sup_call(images), labels)
        sup_optimizer.zero_grad()
        loss.backward()
        sup_optimizer.step()
        sync()

    timed = time_steps({"nesy": nesy_step, "supervised": supervised_step}, batches)
    nesy, supervised = timed["nesy"], timed["supervised"]
    return {
        "n_digits": n_digits,
        "batch_size": batch_size,
        "device": device,
        "compiled_networks": compile_networks,
        "nesy_ms_per_batch": nesy * 1e3,
        "supervised_ms_per_batch": supervised * 1e3,
        "ratio": nesy / supervised,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="overhead.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-digits", type=positive_int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--steps", type=positive_int, default=200)
    parser.add_argument("--compile", action="store_true",
                        help="both networks through torch.compile (what it gains on this device; eager steps)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    rows = [measure(n, args.batch_size, args.steps, args.device, args.data_dir, args.compile) for n in args.n_digits]
    for row in rows:
        print(json.dumps(row))
    return rows


if __name__ == "__main__":
    sys.exit(run_command(main))
