"""DeepProbLog's ``deepproblog.utils``: confusion matrices, loggers, stop conditions, standard networks (submodules),
and the helpers its example scripts call."""

from __future__ import annotations

import os
import sys
from configparser import ConfigParser, SectionProxy
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from time import strftime
from typing import Any, Iterable, Iterator

from problog.logic import Term, is_variable
from problog.parser import PrologParser
from problog.program import ExtendedPrologFactory

parser = PrologParser(ExtendedPrologFactory())
cred, cend, cgreen = "\033[91m", "\033[0m", "\033[92m"  # terminal colours


def count_parameters(model) -> int:
    """The number of trainable parameters of a torch module (or anything with ``parameters()``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def nth(iterable: Iterable, n: int, default: Any = None) -> Any:
    """The ``n``-th item of ``iterable``, or ``default``."""
    return next(islice(iterable, n, None), default)


def log_exists(location: str | os.PathLike, name: str) -> Iterator[Path]:
    """The files in ``location`` whose names start with ``name``."""
    return Path(location).glob(name + "*")


def check_path(path: str | os.PathLike) -> None:
    """Create the folder ``path`` will be written in."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)


def get_top_path(pattern: str, reverse: bool = True) -> Path | None:
    """The last (or, with ``reverse=False``, first) path matching ``pattern`` under the current folder, by name."""
    paths = sorted(Path(".").glob(pattern), reverse=reverse)
    return paths[0] if paths else None


def split(text: str, splitchar: str, lb: str = "(", rb: str = ")") -> list[str]:
    """``text`` split at the characters of ``splitchar`` that are outside brackets."""
    depth, parts = 0, [""]
    for c in text:
        if c in splitchar and depth == 0:
            parts.append("")
            continue
        depth += (c in lb) - (c in rb)
        parts[-1] += c
    return parts


def get_configuration(parameters: dict, i: int) -> dict:
    """The ``i``-th combination of a grid of ``parameters`` (name -> list of values; the first name varies fastest)."""
    config = {}
    for name, values in parameters.items():
        i, j = divmod(i, len(values))
        config[name] = values[j]
    return config


def config_to_string(configuration: dict[str, Any]) -> str:
    """``name_value`` pairs joined by ``_``, e.g. for a log file name."""
    return "_".join(f"{name}_{value}" for name, value in configuration.items())


def parse(string: str) -> Term:
    """The first term of ``string`` in ProbLog syntax."""
    return next(iter(parser.parseString(string)))


def term2list2(term: Term) -> list:
    """The items of a fixed ProbLog list term; ``ValueError`` for a partial list."""
    items = []
    while not is_variable(term) and term.functor == "." and term.arity == 2:
        items.append(term.args[0])
        term = term.args[1]
    if term != Term("[]"):
        raise ValueError("Expected fixed list.")
    return items


def format_time() -> str:
    """The local time as ``_yymmdd_HHMM``, for file names."""
    return strftime("_%y%m%d_%H%M")


def format_time_precise() -> str:
    """The UTC time to the microsecond as ``yymmdd_HHMMSSffffff``, for file names."""
    return datetime.now(timezone.utc).strftime("%y%m%d_%H%M%S%f")


class NoConfigException(Exception):
    def __str__(self) -> str:
        return "No config file specified as an argument."


def load_config(filename: str | None = None) -> SectionProxy:
    """The ``[Default]`` section of an INI file (default: the first command-line argument)."""
    if filename is None:
        if len(sys.argv) < 2:
            raise NoConfigException()
        filename = sys.argv[1]
    config = ConfigParser()
    config.read(filename)
    return config["Default"]
