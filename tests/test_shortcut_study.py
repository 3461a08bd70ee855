"""tasks/shortcut_study.py: one folder per seed, and a finished run is reused, not repeated."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _study():
    spec = importlib.util.spec_from_file_location("shortcut_study", ROOT / "tasks" / "shortcut_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_single_seed_studies_into_one_folder_do_not_share_runs(tmp_path, capsys):
    study = _study()
    common = ["--settings", "evenodd", "--configs", "nesy", "--epochs", "1", "--test-size", "50",
              "--out", str(tmp_path), "--train-size", "96"]
    first = study.main([*common, "--seeds", "0"])
    second = study.main([*common, "--seeds", "1"])  # before: found seed 0's results.json and reported them
    assert [r["seed"] for r in first] == [0] and [r["seed"] for r in second] == [1]
    for seed in (0, 1):
        results = json.loads((tmp_path / "evenodd" / "nesy" / f"seed{seed}" / "results.json").read_text())
        assert results["args"]["seed"] == seed
    capsys.readouterr()
    again = study.main([*common, "--seeds", "0", "1"])
    assert "done before" in capsys.readouterr().out
    assert [r["concept_accuracy"] for r in again] == [first[0]["concept_accuracy"], second[0]["concept_accuracy"]]
