"""Native CPU kernels, compiled from C at first use with the system's C compiler.

The circuit evaluator (:mod:`nesy_gedi.circuit`) runs each circuit as a few
dozen small torch ops per group; on the CPU, at training batch sizes, their
dispatch costs more than their arithmetic.  :func:`circuit_kernels` returns the
forward and backward of a whole circuit as two C functions (``circuit.c``),
called through :mod:`ctypes` on the tensors' memory.  The shared library is
built once per machine into ``$NESY_GEDI_CACHE`` (default
``~/.cache/nesy_gedi``), keyed by the source's hash.

Without a C compiler, or with ``NESY_GEDI_NATIVE=0``, :func:`circuit_kernels`
returns ``None`` and the evaluator keeps its torch path (same results).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

SOURCE = Path(__file__).with_name("circuit.c")
_NOT_LOADED = object()
_library: object = _NOT_LOADED


def cache_dir() -> Path:
    return Path(os.environ.get("NESY_GEDI_CACHE") or Path.home() / ".cache" / "nesy_gedi") / "kernels"


def enabled() -> bool:
    """``NESY_GEDI_NATIVE=0`` turns the native kernels off (the torch path is used)."""
    return os.environ.get("NESY_GEDI_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _build(compiler: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / target.name
        # no -ffast-math: the kernels compute with -inf
        command = [compiler, "-O3", "-shared", "-fPIC", "-std=c99", str(SOURCE), "-o", str(out), "-lm"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise OSError(f"{' '.join(command)} failed: {result.stderr.strip()[:500]}")
        os.replace(out, target)  # atomic: concurrent builders each write a whole file


def _load() -> ctypes.CDLL | None:
    compiler = _compiler()
    if compiler is None:
        warnings.warn("no C compiler found (cc, gcc, clang; or $CC): circuits run as torch ops on the CPU, "
                      "which is slower at small batch sizes", RuntimeWarning, stacklevel=3)
        return None
    digest = hashlib.sha256(SOURCE.read_bytes() + compiler.encode() + sys.platform.encode()).hexdigest()[:16]
    target = cache_dir() / f"circuit-{digest}.so"
    try:
        if not target.exists():
            _build(compiler, target)
        library = ctypes.CDLL(str(target))
    except OSError as exc:
        warnings.warn(f"native circuit kernels unavailable ({exc}); circuits run as torch ops",
                      RuntimeWarning, stacklevel=3)
        return None
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    for suffix in ("f32", "f64"):
        for name in ("forward", "backward"):
            function = getattr(library, f"circuit_{name}_{suffix}")
            function.argtypes = [pointer, pointer, size, size, size, pointer, pointer, pointer, pointer] + (
                [size] if name == "forward" else [])
            function.restype = None
    return library


def circuit_kernels() -> ctypes.CDLL | None:
    """The loaded kernel library (built if needed), or ``None`` where unavailable or turned off."""
    global _library
    if not enabled():
        return None
    if _library is _NOT_LOADED:
        _library = _load()
    return _library  # type: ignore[return-value]
