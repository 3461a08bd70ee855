"""How long should a fresh SGLD chain run when sampling?  Sample quality per chain length.

    python -m experiments.gedi.chain_length --runs RUNS --chain-steps 40,60,80 --out runs/gedi/chain_length

For every run folder ``RUNS/<config>/<seed>`` with a ``mnist_net.pt`` and every chain length: ``--samples``
chains from uniform noise (generator seeded with ``--seed`` for each pair, so lengths are compared on the same
starting noise), judged as in ``experiments.gedi.unification`` (a supervised CNN trained here on MNIST train): the
fraction classified with confidence >= 0.9, the classes they cover, the Fréchet distance of the judge's
features to MNIST test; and the mean energy of the samples next to that of MNIST test (a chain that stops far
above the data's energy is stuck in a spurious basin).  A short-run EBM is trained for one chain length;
longer chains at sampling time trade diversity (Fréchet) for confident digits.  Writes ``OUT/chain_length.json``.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from experiments.gedi.unification import (add_judged_sampling_arguments, judge_reference, load_run,
                                          open_judged_sampling, sample_quality)
from nesy_gedi.commands import positive_int, run_command
from nesy_gedi.gedi import SGLDConfig
from nesy_gedi.gedi.ood import energy_scores
from nesy_gedi.gedi.sgld import sample_from_noise


def step_list(text: str) -> list[int]:
    """``--chain-steps``: comma-separated positive integers."""
    return [positive_int(part) for part in text.split(",")]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m experiments.gedi.chain_length", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_judged_sampling_arguments(parser, out="runs/gedi/chain_length")
    parser.add_argument("--chain-steps", type=step_list, default=[40, 60, 80], help="chain lengths (default 40,60,80)")
    args = parser.parse_args(argv)
    device, runs, out, train, test = open_judged_sampling(args)
    judge, judge_acc, test_features, floor = judge_reference(train, test, device, args.judge_steps, args.seed,
                                                             out / "judge")
    sgld = SGLDConfig(step_size=args.sgld_step_size, noise=args.sgld_noise)
    rows = []
    for run in runs:
        net, _ = load_run(run, device)
        data_energy = -float(energy_scores(net, test.normalized(None)).mean())
        for steps in args.chain_steps:
            generator = torch.Generator().manual_seed(args.seed)
            samples = sample_from_noise(net, args.samples, (1, 28, 28), sgld, steps, generator, device)
            row = {"config": run.parent.name, "seed": run.name, "chain_steps": steps,
                   **sample_quality(judge, samples, test_features),
                   "sample_energy": -float(energy_scores(net, samples).mean()), "data_energy": data_energy}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {"judge_test_accuracy": judge_acc, "frechet_floor": floor, "rows": rows, "args": vars(args)}
    (out / "chain_length.json").write_text(json.dumps(summary, indent=2))
    return rows


if __name__ == "__main__":
    sys.exit(run_command(main))
