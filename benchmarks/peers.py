"""Peer systems for side-by-side benchmarks, each in its own venv (never in ours).

``dpl_python(venv)`` creates a venv with DeepProbLog 2.1.0 next to our torch
pair on first use; ``install_mnist`` copies MNIST where DeepProbLog's example
data module reads it.  ``dsl_python(venv)`` does the same for DeepStochLog
0.0.1, which needs three repairs to run on today's Python and torch (see
``DSL_REPAIRS``) and the ``swipl`` binary.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from nesy_gedi.data.mnist import FILES, find_idx
from nesy_gedi.errors import DataError

DPL_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1", "deepproblog==2.1.0"]
TORCH_PAIR = ["torch==2.14.1", "torchvision==0.29.1"]
# DeepStochLog 0.0.1 pins torch~=1.5.1, numpy~=1.18 and dgl: installed with --no-deps, its
# runtime imports added by hand (pyparsing 3 breaks its parser).
DSL_PACKAGES = ["pandas", "pyparsing<3"]
DSL_COMMIT = "aed95319411b8b5190b5b418b65b523b1436bcfd"
DSL_META_PROGRAM = "_meta_program_suffix.pl"
DSL_META_URL = f"https://raw.githubusercontent.com/ML-KULeuven/deepstochlog/{DSL_COMMIT}/deepstochlog/{DSL_META_PROGRAM}"
DSL_REPAIRS = (
    "1. its PyPI sdist lacks the data file deepstochlog/_meta_program_suffix.pl (unchanged in the project's "
    "repository since its first commit): copied from --dsl-meta-program or downloaded from the repository; "
    "2. deepstochlog/logic.py imports Sized from collections (moved to collections.abc in Python 3.10); "
    "3. its pins on torch 1.5 / numpy 1.18 / dgl: installed with --no-deps next to our torch pair."
)


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


def _site_packages(python: Path, package: str) -> Path:
    done = subprocess.run([str(python), "-c", f"import importlib.util as u; print(u.find_spec('{package}').origin)"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise DataError(f"{package} is not importable in {python}: {done.stderr.strip().splitlines()[-1:]}")
    return Path(done.stdout.strip()).parent


def dsl_python(venv: Path, meta_program: Path | None = None) -> Path:
    """The DeepStochLog venv's python, created, installed and repaired on first use (see ``DSL_REPAIRS``)."""
    if shutil.which("swipl") is None:
        raise DataError("DeepStochLog needs SWI-Prolog's swipl binary on PATH (Debian/Ubuntu: apt install "
                        "swi-prolog-nox); or pass --skip-deepstochlog")
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} and installing deepstochlog 0.0.1 (--no-deps) next to {' '.join(TORCH_PAIR)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, *TORCH_PAIR, *DSL_PACKAGES], check=True)
        subprocess.run([*pip, "--no-deps", "deepstochlog==0.0.1"], check=True)
    package = _site_packages(python, "deepstochlog")
    logic = package / "logic.py"
    text = logic.read_text()
    if re.search(r"^from collections import Sized$", text, re.M):
        logic.write_text(re.sub(r"^from collections import Sized$", "from collections.abc import Sized", text, flags=re.M))
    target = package / DSL_META_PROGRAM
    if not target.exists():
        if meta_program is not None:
            if not Path(meta_program).is_file():
                raise DataError(f"--dsl-meta-program {meta_program}: no such file")
            shutil.copyfile(meta_program, target)
        else:
            try:
                with urllib.request.urlopen(DSL_META_URL, timeout=30) as response:
                    target.write_bytes(response.read())
            except OSError as error:
                raise DataError(f"DeepStochLog's PyPI package lacks {DSL_META_PROGRAM} and downloading it from "
                                f"{DSL_META_URL} failed ({error}); save that file and pass --dsl-meta-program PATH, "
                                f"or pass --skip-deepstochlog") from None
    return python

