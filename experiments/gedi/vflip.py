"""How detectable are vertically flipped digits, and which score of an energy network detects them best?

    python -m experiments.gedi.vflip --runs runs/gedi /tmp/ck/run4/gen --out runs/gedi/vflip

Issue 11 asks GEDI for AUROC >= 0.90 on MNIST test vs the same images flipped upside
down.  A flipped 0, 1 or 8 is often still a plausible upright 0, 1 or 8, so no
detector can reach 1.  Two references, both trained here on MNIST train:

* the supervised judge CNN of ``experiments.gedi.unification``, scored by its energy
  (the OOD baseline there);
* an *oracle*: the same CNN trained to tell upright from flipped training
  digits.  It has seen the OOD set in training, so it is not an OOD detector;
  it measures how separable the two sets are at all (a ceiling for any score).

For each run folder ``RUNS/<config>/<seed>/mnist_net.pt`` (several ``--runs`` may
be given): AUROC, overall and per digit, of the energy score -E(x), of the
gradient-norm score -||dE/dx|| (JEM's "approximate mass") and of max-softmax.
Writes ``OUT/vflip.json`` and ``OUT/vflip.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from experiments.gedi.unification import find_runs, load_run, train_judge, train_supervised_cnn, vflip_by_digit
from nesy_gedi.commands import (add_common_arguments, existing_dir, nonnegative_int, output_dir, positive_int,
                                run_command)
from nesy_gedi.data import load_mnist
from nesy_gedi.gedi.ood import SCORES, auroc, energy_scores
from nesy_gedi.networks import MnistCNN

RUN_SCORES = ("energy", "gradient_norm", "max_softmax")


def train_oracle(train, device, steps: int, seed: int, out: Path) -> MnistCNN:
    """A MnistCNN with two outputs (upright, flipped) trained on MNIST train, each image flipped with chance 1/2
    (:func:`train_supervised_cnn`, as the judge)."""
    generator = torch.Generator().manual_seed(seed + 1)

    def flip_half(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = train.normalized(batch, device)
        flipped = torch.rand(len(batch), generator=generator) < 0.5
        images = torch.where(flipped.to(device).view(-1, 1, 1, 1), images.flip(-2), images)
        return images, flipped.long().to(device)

    return train_supervised_cnn(train, device, steps, seed, out, flip_half, n_classes=2, name="vflip_oracle")


@torch.no_grad()
def upright_scores(oracle: MnistCNN, images: torch.Tensor) -> torch.Tensor:
    """The oracle's log-odds of "upright" per image."""
    logits = torch.cat([oracle(chunk) for chunk in images.split(1000)])
    return (logits[:, 0] - logits[:, 1]).cpu()


def detection(inside: torch.Tensor, flipped: torch.Tensor, labels: torch.Tensor) -> dict:
    """Overall and per-digit AUROC of scores of the test images and of their flips (same order)."""
    return {"auroc": auroc(inside, flipped), "by_digit": vflip_by_digit(inside, flipped, labels)}


def markdown(rows: list[dict]) -> str:
    lines = ["| model | score | " + " | ".join(str(d) for d in range(10)) + " | all |",
             "|---|---|" + "---|" * 11]
    for row in rows:
        digits = " | ".join(f"{a:.2f}" for a in row["by_digit"])
        lines.append(f"| {row['model']} | {row['score']} | {digits} | **{row['auroc']:.3f}** |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m experiments.gedi.vflip", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=existing_dir, nargs="+", required=True,
                        help="folders of <config>/<seed>/ run folders")
    parser.add_argument("--judge-steps", type=positive_int, default=2000, help="updates of the judge and the oracle")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--out", type=output_dir, default="runs/gedi/vflip")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    runs = [run for folder in args.runs for run in find_runs(folder)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    inside = test.normalized(None, device)
    flipped = inside.flip(-2)

    judge = train_judge(train, device, args.judge_steps, args.seed, out / "judge")
    oracle = train_oracle(train, device, args.judge_steps, args.seed, out / "oracle")
    rows = [{"model": "oracle: supervised upright-vs-flipped CNN (sees flips)", "score": "log-odds upright",
             **detection(upright_scores(oracle, inside), upright_scores(oracle, flipped), test.labels)},
            {"model": "supervised digit CNN (the judge)", "score": "energy",
             **detection(energy_scores(judge, inside), energy_scores(judge, flipped), test.labels)}]
    for row in rows:
        print(json.dumps(row), flush=True)
    for run in runs:
        net, results = load_run(run, device)
        for score in RUN_SCORES:
            row = {"model": f"{run.parent.name} seed {results['args'].get('seed')}", "run": str(run),
                   "score": score, "nmi": results.get("nmi"),
                   **detection(SCORES[score](net, inside), SCORES[score](net, flipped), test.labels)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    (out / "vflip.json").write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=2))
    (out / "vflip.md").write_text(markdown(rows))
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    sys.exit(run_command(main))
