"""What every command (``nesy-gedi``, ``tasks/*.py``, ``python -m benchmarks.*``, ``experiments.*``) shares.

* argument types that validate when parsed (positive counts, finite learning
  rates, existing files, output directories, devices), so a bad flag is one
  ``argparse`` usage line and exit code 2;
* :func:`run_command`: runs a command's ``main`` and turns every
  :class:`~nesy_gedi.errors.NesyError` into one ``error: ...`` line and exit
  code 1 (an interruption: 130), with the traceback only under ``--debug``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

import torch

from .errors import Interrupted, NesyError
from .exit_state import leaving_on_error


def _checked(kind: type, accept, requirement: str):
    """An argparse type: parse ``kind`` (finite), then require ``accept(value)``."""
    def parse(text: str):
        value = _number(text, kind)
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value
    parse.__name__ = requirement.replace(" ", "_")
    return parse


positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: v > 0, "a finite number > 0")
nonnegative_float = _checked(float, lambda v: v >= 0, "a finite number >= 0")
probability = _checked(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
unit_fraction = _checked(float, lambda v: 0 < v <= 1, "a number in (0, 1]")


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def existing_file(text: str) -> str:
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    return str(path)


def existing_dir(text: str) -> str:
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return str(path)


def output_dir(text: str) -> str:
    """A directory to write into: it may not exist yet, but must not be a file."""
    path = Path(text).expanduser()
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{parent} exists and is not a directory")
            if not os.access(parent, os.W_OK):
                raise argparse.ArgumentTypeError(f"{parent} is not writable")
            break
    return str(path)


def device_name(text: str) -> str:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, checked on this machine."""
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise argparse.ArgumentTypeError(f"{text}: MPS is not available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise argparse.ArgumentTypeError(f"unsupported device {text!r}; use auto, cpu, cuda or cuda:N")
    return text


def add_common_arguments(parser: argparse.ArgumentParser, device: bool = True, data: bool = True,
                         compile: bool = False) -> None:
    """``--device``, ``--data-dir`` and ``--debug``, the same in every command (and ``--no-compile`` in the
    training commands)."""
    if device:
        parser.add_argument("--device", type=device_name, default="auto",
                            help="auto (CUDA when present), cpu, cuda or cuda:N (default: auto)")
    if compile:
        parser.add_argument("--no-compile", action="store_true",
                            help="on a GPU, run every update eagerly instead of replaying it as a CUDA graph "
                                 "(slower; stops at the first non-finite loss)")
    if data:
        parser.add_argument("--data-dir", type=existing_dir, default=None,
                            help="folder with MNIST/raw and FashionMNIST/raw (default: $NESY_GEDI_DATA, "
                                 "else a download into ~/.cache/nesy_gedi)")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")


def run_command(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; print a user's mistake as one ``error:`` line. Returns the exit code."""
    code = _run_command(main, list(sys.argv[1:] if argv is None else argv))
    if code:
        leaving_on_error()  # under torchrun: leave without waiting for the other ranks
    return code


def _run_command(main: Callable[[Sequence[str] | None], object], args: list[str]) -> int:
    debug = "--debug" in args
    try:
        main(args)
    except Interrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return 130
    except NesyError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; try a smaller --batch-size", file=sys.stderr)
        return 1
    except Exception as exc:  # disk full, device errors, or a bug: still one line unless --debug
        if debug:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"error: {type(exc).__name__}: {first} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0
