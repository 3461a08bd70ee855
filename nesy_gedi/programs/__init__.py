"""The ProbLog programs the recipes use, shipped inside the package.

``program_path("mnist_add.pl")`` finds one wherever nesy_gedi is installed (a wheel or a checkout).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..errors import DataError


def program_path(name: str) -> Path:
    """The file of the shipped program ``name`` (e.g. ``"mnist_add.pl"``)."""
    path = Path(str(files(__name__).joinpath(name)))
    if not path.is_file():
        shipped = sorted(p.name for p in available())
        raise DataError(f"no shipped program {name!r}; the package has {', '.join(shipped)}")
    return path


def available() -> list[Path]:
    """Every shipped ``.pl`` program."""
    return sorted(p for p in Path(str(files(__name__))).iterdir() if p.suffix == ".pl")
