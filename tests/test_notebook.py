"""notebooks/concept_quality.ipynb runs headless on a small real run."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_concept_quality_notebook_executes(tmp_path, monkeypatch):
    from nesy_gedi.recipes import addition

    addition.main(["--train-size", "600", "--test-size", "300", "--pairs", "evenodd", "--no-progress",
               "--out", str(tmp_path / "evenodd_nesy")])
    monkeypatch.setenv("NESY_GEDI_RUNS", str(tmp_path))
    notebook = nbformat.read(ROOT / "notebooks" / "concept_quality.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert "1 runs with concept metrics" in outputs
    assert "| evenodd_nesy |" in outputs
    assert (tmp_path / "confusion_matrices.png").stat().st_size > 1000
