"""notebooks/concept_quality.ipynb runs headless on small real runs laid out as shortcut_study writes them, shows its
figures and tables inline, and is committed with the outputs of experiments/concept_quality."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "concept_quality.ipynb"


def _outputs(notebook, mime: str) -> list[str]:
    return [o["data"][mime] for cell in notebook.cells for o in cell.get("outputs", [])
            if mime in o.get("data", {})]


def _text(notebook) -> str:
    return "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))


def test_concept_quality_notebook_executes_and_shows_its_results_inline(tmp_path, monkeypatch):
    from nesy_gedi.recipes import addition

    runs = tmp_path / "runs"
    for seed in (0, 1):
        addition.main(["--train-size", "600", "--test-size", "300", "--pairs", "evenodd", "--no-progress",
                       "--seed", str(seed), "--out", str(runs / "evenodd" / "nesy" / f"seed{seed}")])
    monkeypatch.setenv("NESY_GEDI_RUNS", str(runs))
    monkeypatch.setenv("NESY_GEDI_FIGURES", str(tmp_path / "figures"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    assert "2 runs with concept metrics" in _text(notebook) and "settings: evenodd" in _text(notebook)
    tables = _outputs(notebook, "text/markdown")
    assert len(tables) == 2 and "| evenodd | nesy | 2 |" in tables[0]
    assert "| evenodd | nesy | seed0 |" in tables[1] and "| evenodd | nesy | seed1 |" in tables[1]
    assert len(_outputs(notebook, "image/png")) == 2  # the accuracy bars and the confusion matrices, inline
    for figure in ("concept_vs_task_evenodd.png", "confusion_evenodd.png"):
        assert (tmp_path / "figures" / figure).stat().st_size > 1000


def test_the_committed_notebook_reads_without_running():
    """Its outputs are those of the committed study: rendered tables and inline figures, no errors."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    study = ROOT / "experiments" / "concept_quality" / "results"
    n_runs = len(list(study.rglob("results.json")))
    assert n_runs >= 4 and f"{n_runs} runs with concept metrics under results" in _text(notebook)
    tables = _outputs(notebook, "text/markdown")
    assert len(tables) == 2 and all(t.startswith("| setting |") for t in tables)
    assert len(_outputs(notebook, "image/png")) == 2
    assert not [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
