"""Reasoning shortcuts: plain NeSy vs GEDI pretraining, GEDI loss and an entropy regulariser.

    python tasks/gedi_pretrain.py --out runs/gedi_pretrain          # once
    python tasks/shortcut_study.py --pretrained runs/gedi_pretrain/mnist_net.pt

Configurations: plain NeSy, GEDI pretraining, the GEDI loss, both, the entropy
regulariser (the default five), and with ``--configs nesy+labels nesy+gedi+labels``
K labelled images per digit (``--concept-labels K``), and with ``+clusterhead``
the digits as a learned permutation of the network's outputs (``--cluster-head``), and with ``+relabel``
a label-free repair of that permutation after each epoch (``--relabel``).  Each table cell is mean ±
std over ``--seeds``; "digit maps" says per seed whether the learned digits are
the identity, EvenOdd's other permutation d -> d+5, another permutation or none.

Settings: ``evenodd`` and ``restricted`` (digit-pair restrictions, see
``nesy_gedi.data.shortcuts``), ``few`` (all pairs, ``--few-size`` examples), and
``rsbench-evenodd`` / ``rsbench-half``: MNAdd-EvenOdd and MNAdd-Half with rsbench's
splits (``nesy_gedi.data.rsbench``; Half has 5 digit values, so the 10-cluster
``--pretrained`` network does not fit it).
Each run is the ``mnist_add`` recipe with one regulariser; results go to
``OUT/<setting>/<config>/seed<S>/results.json`` and a Markdown table to ``OUT/summary.md``.
Runs are resumable: a run with a results.json is not repeated, a run with
only a checkpoint continues from it, so the same command picks up where an
interrupted study stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nesy_gedi.commands import add_common_arguments, nonnegative_float, nonnegative_int, output_dir, positive_int, \
    run_command
from nesy_gedi.errors import DataError
from nesy_gedi.metrics import digit_map
from nesy_gedi.recipes import addition

CONFIGS = {
    "nesy": [],
    "nesy+pretrained": ["--pretrained", "{pretrained}"],
    "nesy+gedi": ["--gedi-weight", "{gedi_weight}"],
    "nesy+pretrained+gedi": ["--pretrained", "{pretrained}", "--gedi-weight", "{gedi_weight}"],
    "nesy+entropy": ["--entropy-weight", "{entropy_weight}"],
    "nesy+labels": ["--concept-labels", "{concept_labels}"],
    "nesy+gedi+labels": ["--gedi-weight", "{gedi_weight}", "--concept-labels", "{concept_labels}"],
    "nesy+clusterhead": ["--cluster-head"],
    "nesy+pretrained+clusterhead": ["--pretrained", "{pretrained}", "--cluster-head"],
    "nesy+gedi+clusterhead": ["--gedi-weight", "{gedi_weight}", "--cluster-head"],
    "nesy+pretrained+gedi+clusterhead": ["--pretrained", "{pretrained}", "--gedi-weight", "{gedi_weight}",
                                         "--cluster-head"],
    "nesy+gedi+clusterhead+relabel": ["--gedi-weight", "{gedi_weight}", "--cluster-head", "--relabel"],
    "nesy+pretrained+gedi+clusterhead+relabel": ["--pretrained", "{pretrained}", "--gedi-weight", "{gedi_weight}",
                                                 "--cluster-head", "--relabel"],
}
# the combined loss as the study measured it: full-strength GEDI views from the first update (flags in the
# study's command line come later and override it)
GEDI_STUDY_DEFAULTS = ["--aug-warmup", "0"]
DEFAULT_CONFIGS = ["nesy", "nesy+pretrained", "nesy+gedi", "nesy+pretrained+gedi", "nesy+entropy"]


SETTINGS = ["evenodd", "restricted", "few", "rsbench-evenodd", "rsbench-half"]


def setting_args(setting: str, few_size: int) -> list[str]:
    if setting == "few":
        return ["--train-size", str(few_size)]
    if setting.startswith("rsbench-"):
        return ["--pairs", setting.removeprefix("rsbench-"), "--split", "rsbench"]
    return ["--pairs", setting]


def row(setting: str, config: str, seed: int, r: dict) -> dict:
    c = r["concepts"]
    out = {"setting": setting, "config": config, "seed": seed, "sum_accuracy": r["sum_accuracy"],
           "sum_macro_f1": r.get("sum_macro_f1"),
           "concept_accuracy": c["concept_accuracy"], "macro_f1": c["macro_f1"], "collapse": c["collapse"],
           "ece": c["ece"], "nmi": c["nmi"], "matched_accuracy": c["matched_accuracy"],
           "digit_map": digit_map(c["confusion_matrix"]), "train_seconds": r["train_seconds"]}
    if "ood" in r:
        out["ood_sum_accuracy"] = r["ood"]["sum_accuracy"]
        out["ood_concept_accuracy"] = r["ood"]["digit_accuracy"]
    return out


def mean_std(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.3f}"
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.3f} ± {std:.3f}"


def markdown(rows: list[dict]) -> str:
    cols = ["sum_accuracy", "sum_macro_f1", "concept_accuracy", "matched_accuracy", "macro_f1", "collapse", "ece", "nmi",
            "ood_sum_accuracy", "ood_concept_accuracy"]
    lines = ["| setting | config | seeds | " + " | ".join(cols) + " | digit maps | train s |",
             "|" + "---|" * (len(cols) + 5)]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["config"]), []).append(r)
    for (setting, config), rs in groups.items():
        cells = []
        for col in cols:
            values = [r[col] for r in rs if r.get(col) is not None]
            cells.append(mean_std(values) if values else "-")
        maps = ", ".join(r.get("digit_map", "?") for r in rs)
        seconds = [r["train_seconds"] for r in rs if "train_seconds" in r]
        cells += [maps, f"{sum(seconds) / len(seconds):.0f}" if seconds else "-"]
        lines.append(f"| {setting} | {config} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="shortcut_study.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["evenodd", "restricted", "few"], choices=SETTINGS)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    parser.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=positive_int, default=3)
    parser.add_argument("--few-size", type=positive_int, default=1000)
    parser.add_argument("--pretrained", default="runs/gedi_pretrain/mnist_net.pt")
    parser.add_argument("--gedi-weight", type=nonnegative_float, default=1.0)
    parser.add_argument("--entropy-weight", type=nonnegative_float, default=1.0)
    parser.add_argument("--concept-labels", type=positive_int, default=1, metavar="K",
                        help="labelled images per digit in the +labels configurations")
    parser.add_argument("--test-size", type=positive_int, default=None)
    parser.add_argument("--out", type=output_dir, default="runs/shortcuts")
    add_common_arguments(parser)
    args, extra = parser.parse_known_args(argv)  # extra arguments go to the mnist_add recipe
    if any("pretrained" in c for c in args.configs) and not Path(args.pretrained).is_file():
        raise DataError(f"--pretrained {args.pretrained} does not exist (make it with tasks/gedi_pretrain.py, "
                        "or leave out the nesy+pretrained configurations)")

    rows = []
    out = Path(args.out)
    values = {"pretrained": args.pretrained, "gedi_weight": str(args.gedi_weight),
              "entropy_weight": str(args.entropy_weight), "concept_labels": str(args.concept_labels)}
    for setting in args.settings:
        for config in args.configs:
            for seed in args.seeds:
                name = config.replace("labels", f"labels{args.concept_labels}")
                run_dir = out / setting / name / f"seed{seed}"  # one folder per seed: runs never share one
                done = run_dir / "results.json"
                if done.exists():
                    print(f"== {setting} / {config} / seed {seed}: done before, {done}", flush=True)
                    rows.append(row(setting, name, seed, json.loads(done.read_text())))
                    continue
                argv_run = ["--epochs", str(args.epochs), "--seed", str(seed), "--device", args.device,
                            "--out", str(run_dir), "--no-progress", *setting_args(setting, args.few_size),
                            *[a.format(**values) for a in CONFIGS[config]], *GEDI_STUDY_DEFAULTS, *extra]
                if args.test_size:
                    argv_run += ["--test-size", str(args.test_size)]
                if args.data_dir:
                    argv_run += ["--data-dir", args.data_dir]
                if (run_dir / "checkpoint.pt").exists():
                    argv_run.append("--resume")
                print(f"== {setting} / {config} / seed {seed}", flush=True)
                rows.append(row(setting, name, seed, addition.main(argv_run)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    (out / "summary.md").write_text(markdown(rows))
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    sys.exit(run_command(main))
