"""notebooks/concept_quality.ipynb runs headless on small real runs laid out as shortcut_study writes them."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_concept_quality_notebook_executes(tmp_path, monkeypatch):
    from nesy_gedi.recipes import addition

    for seed in (0, 1):
        addition.main(["--train-size", "600", "--test-size", "300", "--pairs", "evenodd", "--no-progress",
                       "--seed", str(seed), "--out", str(tmp_path / "evenodd" / "nesy" / f"seed{seed}")])
    monkeypatch.setenv("NESY_GEDI_RUNS", str(tmp_path))
    notebook = nbformat.read(ROOT / "notebooks" / "concept_quality.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert "2 runs with concept metrics" in outputs and "settings: evenodd" in outputs
    assert "| evenodd | nesy | 2 |" in outputs
    assert "nesy seed0: " in outputs and "nesy seed1: " in outputs
    for figure in ("concept_vs_task_evenodd.png", "confusion_evenodd.png"):
        assert (tmp_path / figure).stat().st_size > 1000
