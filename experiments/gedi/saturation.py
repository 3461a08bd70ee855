"""When did the generative term stop teaching? The saturated fraction of finished runs, window by window.

For every ``metrics.jsonl`` under the given run folders, from the first update with a non-zero
generative loss on: the fraction of updates whose loss lies within 5% of its floor
(``nesy_gedi.gedi.gen_floor``; see ``nesy_gedi/gedi/saturation.py``), per window of ``--window``
updates, and the first update from which every later window is at least half saturated
(``WARN_FRACTION``, the fraction at which ``gedi_pretrain.py`` warns).

    python -m experiments.gedi.saturation --runs runs/gedi_ebm --energy-l2 0.1 --out runs/gedi/saturation.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from nesy_gedi.commands import nonnegative_float, positive_int, run_command
from nesy_gedi.errors import DataError
from nesy_gedi.gedi import SaturationMonitor, gen_floor
from nesy_gedi.gedi.saturation import WARN_FRACTION


def saturation_row(metrics: Path, floor: float, window: int) -> dict:
    """Per-window saturated fractions of one run's ``metrics.jsonl`` (lines without ``gen`` are skipped)."""
    try:
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"{metrics} is not a metrics.jsonl of a run: {exc}") from None
    rows = [r for r in rows if "gen" in r and "step" in r]
    first = next((r["step"] for r in rows if r["gen"] != 0), None)
    if first is None:
        return {"run": str(metrics.parent), "first_gen_update": None, "windows": []}
    monitors: dict[int, SaturationMonitor] = {}  # window start -> that window's updates, in one pass
    for r in rows:
        if r["step"] >= first:
            start = first + (r["step"] - first) // window * window
            monitors.setdefault(start, SaturationMonitor(floor, window)).observe(
                r["gen"], r.get("data_energy", float("nan")), r.get("sample_energy", float("nan")))
    windows = [{"from": start, **monitor.summary()} for start, monitor in sorted(monitors.items())]
    saturated_from = None
    for w in reversed(windows):
        if w["fraction_at_floor"] < WARN_FRACTION:
            break
        saturated_from = w["from"]
    return {"run": str(metrics.parent), "first_gen_update": first, "saturated_from": saturated_from,
            "last_fraction_at_floor": windows[-1]["fraction_at_floor"], "windows": windows}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, type=Path, help="run folders (searched for metrics.jsonl)")
    parser.add_argument("--energy-l2", type=nonnegative_float, default=0.1, help="the runs' penalty on E^2")
    parser.add_argument("--sample-energy-l2", type=nonnegative_float, default=None, help="default: --energy-l2")
    parser.add_argument("--window", type=positive_int, default=100)
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    return parser


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    files = sorted(p for root in args.runs for p in ([root] if root.is_file() else root.rglob("metrics.jsonl")))
    if not files:
        raise DataError(f"no metrics.jsonl under {' '.join(map(str, args.runs))}")
    floor = gen_floor(args.energy_l2, args.sample_energy_l2)
    rows = [saturation_row(f, floor, args.window) for f in files]
    for r in rows:
        print(f"{r['run']}: generative term from update {r['first_gen_update']}, saturated from "
              f"{r.get('saturated_from')}, last window {r.get('last_fraction_at_floor', 0):.2f} at the floor {floor:g}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"floor": floor, "window": args.window, "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    sys.exit(run_command(main))
