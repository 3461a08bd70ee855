"""The estimator comparison's summary: the judge's rows (``OUT/judged/unification.json``) with each run's training
facts (train seconds, the generative loss's mean over the last epoch, and for SGLD the share of the last 100 updates at the
loss's floor), as ``summary.json`` and ``summary.md`` in this folder.

    python -m experiments.gedi_estimators.summary [OUT]        # OUT: the folder of run.sh (runs/gedi_estimators)

A judged run replaces the row of the same config and seed; the config's other seeds keep theirs.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = [("nmi", "NMI"), ("matched_accuracy", "matched acc"), ("confident_fraction", "samples conf ≥ 0.9"),
           ("classes_covered", "classes"), ("largest_digit_share", "largest digit's share"), ("frechet", "Fréchet"),
           ("conditional_agreement", "cond. agreement"),
           ("auroc_fashion", "AUROC Fashion"), ("auroc_noise", "AUROC noise"), ("auroc_vflip", "AUROC vflip"),
           ("gen_last_epoch", "gen. loss, last epoch"), ("at_floor", "gen. at floor (last 100)"),
           ("train_seconds", "train s")]


def rows(out: Path) -> list[dict]:
    judged = json.loads((out / "judged" / "unification.json").read_text())
    found = []
    for row in judged["runs"]:
        results = json.loads((Path(row["run"]) / "results.json").read_text())
        saturation = results.get("gen_saturation") or {}
        found.append({**{k: v for k, v in row.items() if not k.endswith("by_digit")},
                      "at_floor": saturation.get("fraction_at_floor"), "train_seconds": results["train_seconds"],
                      "gen_last_epoch": results["history"][-1].get("gen"),
                      "estimator_config": results.get("estimator"), "weights": results["weights"]})
    return found


def cell(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def markdown(found: list[dict]) -> str:
    lines = ["| arm | seeds | " + " | ".join(name for _, name in COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
    arms: dict[str, list[dict]] = {}
    for r in found:
        arms.setdefault(r["config"], []).append(r)
    for arm, rs in arms.items():
        lines.append(f"| {arm} | {len(rs)} | " + " | ".join(cell([r.get(k) for r in rs]) for k, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    out = Path(argv[0] if argv else "runs/gedi_estimators")
    found = rows(out)
    if (HERE / "summary.json").exists():  # runs judged before (a config's other seeds) keep their rows
        again = {(r["config"], r["seed"]) for r in found}
        before = json.loads((HERE / "summary.json").read_text())
        found = [r for r in before if (r["config"], r["seed"]) not in again] + found
    (HERE / "summary.json").write_text(json.dumps(found, indent=1) + "\n")
    (HERE / "summary.md").write_text(markdown(found))
    print(markdown(found))


if __name__ == "__main__":
    main(sys.argv[1:])
