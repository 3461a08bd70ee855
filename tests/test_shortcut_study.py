"""tasks/shortcut_study.py: one folder per seed, and a finished run is reused, not repeated."""

import json

from .scripts import load_script


def test_single_seed_studies_into_one_folder_do_not_share_runs(tmp_path, capsys):
    study = load_script("tasks/shortcut_study.py")
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
