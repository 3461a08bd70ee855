"""Peer systems for side-by-side benchmarks, each in its own venv (never in ours).

``dpl_python(venv)`` creates a venv with DeepProbLog 2.1.0 next to our torch
pair on first use; ``install_mnist`` copies MNIST where DeepProbLog's example
data module reads it.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

from .data.mnist import FILES, find_idx
from .errors import DataError

DPL_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1", "deepproblog==2.1.0"]


def dpl_python(venv: Path) -> Path:
    """The venv's python, creating the venv and installing DeepProbLog on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} and installing {' '.join(DPL_PACKAGES)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *DPL_PACKAGES], check=True)
    return python


def install_mnist(python: Path, data_dir: Path) -> None:
    """Copy MNIST (plain IDX) to where DeepProbLog's example data module reads it."""
    site = subprocess.run([str(python), "-c", "import deepproblog, os; print(os.path.dirname(deepproblog.__file__))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    raw = Path(site) / "examples" / "MNIST" / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in (stem for stems in FILES.values() for stem in stems):
        target = raw / name
        if target.exists():
            continue
        source = find_idx(data_dir, name)
        if source is None:
            raise DataError(f"{name}(.gz) not found under {data_dir}")
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)




def deepproblog_with_mnist(venv: Path, data_dir: Path) -> Path:
    """The DeepProbLog venv's python (made on first use) with MNIST where its example data module reads it."""
    python = dpl_python(venv)
    install_mnist(python, data_dir)
    return python
