"""How long should a fresh SGLD chain run when sampling?  Sample quality per chain length.

    python -m experiments.gedi.chain_length --runs RUNS --chain-steps 40,60,80 --out runs/gedi/chain_length

For every run folder ``RUNS/<config>/<seed>`` with a ``mnist_net.pt`` and every chain length: ``--samples``
chains from uniform noise (generator seeded with ``--seed`` for each pair, so lengths are compared on the same
starting noise), judged as in ``experiments.gedi.unification`` (a supervised CNN trained here on MNIST train): the
fraction classified with confidence >= 0.9, the classes they cover and how many of the confident samples fall
in each (``class_counts``), the Fréchet distance of the judge's features to MNIST test; and the mean energy of the
samples next to that of MNIST test (a chain that stops far above the data's energy is stuck in a spurious basin).
A short-run EBM is trained for one chain length; longer chains at sampling time trade diversity (Fréchet) for
confident digits.  Every row's starts and Langevin noise come from a generator seeded with ``--seed`` for that row,
so a row does not depend on the rows before it.

``--from-buffer`` also starts chains from the run's replay buffer (``checkpoint.pt``; ``--samples`` of its
chains, drawn with the seeded generator), at length 0 (the buffer as training left it) and at every
``--chain-steps``: rows with ``"start": "buffer"`` beside the ``"noise"`` ones.  Writes ``OUT/chain_length.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from experiments.gedi.unification import (add_judged_sampling_arguments, confident_counts, judge_reference,
                                          judged_digits, load_run, open_judged_sampling, sample_quality)
from nesy_gedi.commands import positive_int, run_command
from nesy_gedi.errors import DataError
from nesy_gedi.gedi import SGLDConfig
from nesy_gedi.gedi.ood import energy_scores
from nesy_gedi.gedi.sgld import langevin, network_energy, sample_from_noise
from nesy_gedi.train.checkpoint import load_checkpoint


def step_list(text: str) -> list[int]:
    """``--chain-steps``: comma-separated positive integers."""
    return [positive_int(part) for part in text.split(",")]


def replay_buffer(run: Path, n: int) -> torch.Tensor:
    """The run's replay buffer (its ``checkpoint.pt``), checked to hold at least ``n`` chains."""
    state = load_checkpoint(run / "checkpoint.pt", "gedi_pretrain")
    samples = state.get("extra", {}).get("replay_buffer", {}).get("samples")
    if samples is None:
        raise DataError(f"{run / 'checkpoint.pt'} holds no replay buffer (a run without SGLD chains)")
    if n > len(samples):
        raise DataError(f"--samples {n} is more than the {len(samples)} chains of {run}'s replay buffer")
    return samples


def class_counts(judge, samples: torch.Tensor) -> list[int]:
    """How many of the samples the judge names as each digit with confidence >= 0.9."""
    return confident_counts(*judged_digits(judge, samples)).tolist()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m experiments.gedi.chain_length", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_judged_sampling_arguments(parser, out="runs/gedi/chain_length")
    parser.add_argument("--chain-steps", type=step_list, default=[40, 60, 80], help="chain lengths (default 40,60,80)")
    parser.add_argument("--from-buffer", action="store_true",
                        help="also start chains from each run's replay buffer (its checkpoint.pt), at length 0 too")
    args = parser.parse_args(argv)
    device, runs, out, train, test = open_judged_sampling(args)
    judge, judge_acc, test_features, floor = judge_reference(train, test, device, args.judge_steps, args.seed,
                                                             out / "judge")
    sgld = SGLDConfig(step_size=args.sgld_step_size, noise=args.sgld_noise)
    rows = []
    for run in runs:
        net, _ = load_run(run, device)
        data_energy = -float(energy_scores(net, test.normalized(None)).mean())
        starts = [("noise", steps) for steps in args.chain_steps]
        if args.from_buffer:
            buffer = replay_buffer(run, args.samples)
            starts += [("buffer", steps) for steps in [0, *args.chain_steps]]
        for start, steps in starts:
            generator = torch.Generator().manual_seed(args.seed)
            torch.manual_seed(args.seed)  # any other draw: the same for every row, whatever ran before
            if start == "noise":
                samples = sample_from_noise(net, args.samples, (1, 28, 28), sgld, steps, generator, device)
            else:
                chosen = buffer[torch.randperm(len(buffer), generator=generator)[:args.samples]].to(device)
                samples = langevin(lambda x: network_energy(net, x), chosen, sgld, steps, generator)
            row = {"config": run.parent.name, "seed": run.name, "start": start, "chain_steps": steps,
                   **sample_quality(judge, samples, test_features), "class_counts": class_counts(judge, samples),
                   "sample_energy": -float(energy_scores(net, samples).mean()), "data_energy": data_energy}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {"judge_test_accuracy": judge_acc, "frechet_floor": floor, "rows": rows, "args": vars(args)}
    (out / "chain_length.json").write_text(json.dumps(summary, indent=2))
    return rows


if __name__ == "__main__":
    sys.exit(run_command(main))
