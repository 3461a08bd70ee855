"""Reasoning shortcuts: plain NeSy vs GEDI pretraining, GEDI loss and an entropy regulariser.

    python tasks/gedi_pretrain.py --out runs/gedi_pretrain          # once
    python tasks/shortcut_study.py --pretrained runs/gedi_pretrain/mnist_net.pt

Settings: ``evenodd`` and ``restricted`` (digit-pair restrictions, see
``nesy_gedi.data.shortcuts``) and ``few`` (all pairs, ``--few-size`` examples).
Each run is ``tasks/mnist_add.py`` with one regulariser; results go to
``OUT/<setting>/<config>/results.json`` and a Markdown table to ``OUT/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import mnist_add  # noqa: E402

CONFIGS = {
    "nesy": [],
    "nesy+pretrained": ["--pretrained", "{pretrained}"],
    "nesy+gedi": ["--gedi-weight", "{gedi_weight}"],
    "nesy+pretrained+gedi": ["--pretrained", "{pretrained}", "--gedi-weight", "{gedi_weight}"],
    "nesy+entropy": ["--entropy-weight", "{entropy_weight}"],
}


def setting_args(setting: str, few_size: int) -> list[str]:
    if setting == "few":
        return ["--train-size", str(few_size)]
    return ["--pairs", setting]


def row(setting: str, config: str, seed: int, r: dict) -> dict:
    c = r["concepts"]
    out = {"setting": setting, "config": config, "seed": seed, "sum_accuracy": r["sum_accuracy"],
           "concept_accuracy": c["concept_accuracy"], "macro_f1": c["macro_f1"], "collapse": c["collapse"],
           "ece": c["ece"], "nmi": c["nmi"], "matched_accuracy": c["matched_accuracy"]}
    if "ood" in r:
        out["ood_sum_accuracy"] = r["ood"]["sum_accuracy"]
        out["ood_concept_accuracy"] = r["ood"]["digit_accuracy"]
    return out


def markdown(rows: list[dict]) -> str:
    cols = ["sum_accuracy", "concept_accuracy", "macro_f1", "collapse", "ece", "nmi", "ood_sum_accuracy", "ood_concept_accuracy"]
    lines = ["| setting | config | seeds | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 3)]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["config"]), []).append(r)
    for (setting, config), rs in groups.items():
        cells = []
        for col in cols:
            values = [r[col] for r in rs if col in r]
            cells.append(f"{sum(values) / len(values):.3f}" if values else "-")
        lines.append(f"| {setting} | {config} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["evenodd", "restricted", "few"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--few-size", type=int, default=1000)
    parser.add_argument("--pretrained", default="runs/gedi_pretrain/mnist_net.pt")
    parser.add_argument("--gedi-weight", type=float, default=1.0)
    parser.add_argument("--entropy-weight", type=float, default=1.0)
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/shortcuts")
    args, extra = parser.parse_known_args(argv)  # extra arguments go to mnist_add.py

    rows = []
    out = Path(args.out)
    values = {"pretrained": args.pretrained, "gedi_weight": str(args.gedi_weight), "entropy_weight": str(args.entropy_weight)}
    for setting in args.settings:
        for config in args.configs:
            for seed in args.seeds:
                run_dir = out / setting / (config if len(args.seeds) == 1 else f"{config}/seed{seed}")
                argv_run = ["--epochs", str(args.epochs), "--seed", str(seed), "--device", args.device,
                            "--out", str(run_dir), "--no-progress", *setting_args(setting, args.few_size),
                            *[a.format(**values) for a in CONFIGS[config]], *extra]
                if args.test_size:
                    argv_run += ["--test-size", str(args.test_size)]
                if args.data_dir:
                    argv_run += ["--data-dir", args.data_dir]
                print(f"== {setting} / {config} / seed {seed}", flush=True)
                rows.append(row(setting, config, seed, mnist_add.main(argv_run)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    (out / "summary.md").write_text(markdown(rows))
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
