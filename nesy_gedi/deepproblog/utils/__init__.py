"""DeepProbLog's ``deepproblog.utils``: confusion matrices, loggers, stop conditions, standard networks (submodules),
and the helpers its example scripts call."""

from __future__ import annotations

import os
import sys
from configparser import ConfigParser, SectionProxy
from datetime import datetime, timezone
from itertools import islice
from statistics import mean, stdev
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


class TabularFormatter:
    @staticmethod
    def format(data: list[list], x: list | None = None, y: list | None = None) -> str:
        """``data`` rows as tab-separated, right-aligned text, with column labels ``x`` and row labels ``y``."""
        rows = [list(r) for r in data]
        if y is not None:
            rows = [[label] + row for label, row in zip(y, rows)]
            if x is not None:
                rows = [[""] + list(x)] + rows
        elif x is not None:
            rows = [list(x)] + rows
        widths = [max(len(str(row[c])) for row in rows) for c in range(len(rows[0]))]
        return "\n".join("\t".join(str(v).rjust(w) for v, w in zip(row, widths)) for row in rows)


class Table:
    """Results by named dimensions; :meth:`format` shows ``mean ± std`` of one dimension over two others."""

    class Dimension:
        def __init__(self, name: str) -> None:
            self.name, self.type, self.categories = name, "categorical", set()

        def add_value(self, value) -> None:
            self.categories.add(value)

        def __repr__(self) -> str:
            return self.name

    def __init__(self, *dimensions: str) -> None:
        self.data: list[tuple] = []
        self.dimensions = [Table.Dimension(d) for d in dimensions]

    def store(self, *args, **kwargs) -> None:
        """One row, by position or by dimension name."""
        row = args if args else tuple(kwargs[d.name] for d in self.dimensions)
        if len(row) != len(self.dimensions):
            raise ValueError(f"Data dimensions {len(row)} not equal to table dimensions {len(self.dimensions)}")
        self.data.append(tuple(row))
        for d, value in zip(self.dimensions, row):
            d.add_value(value)

    def get_dimension_index(self, dim) -> int:
        for i, d in enumerate(self.dimensions):
            if str(dim) == d.name:
                return i
        raise ValueError(f"{dim} not in dimensions")

    @staticmethod
    def aggregate(data: list) -> str:
        if not data:
            return ""
        spread = stdev(data) if len(data) > 1 else 0.0
        return f"{mean(data):.5f} ± {spread:.5f}"

    def format(self, x, y, val, **kwargs) -> str:
        """``val`` aggregated per (``y``, ``x``) category pair, over the rows whose other dimensions equal
        ``kwargs``."""
        fixed = [(self.get_dimension_index(k), v) for k, v in kwargs.items()]
        xi, yi, vi = (self.get_dimension_index(d) for d in (x, y, val))
        x_cats = sorted(self.dimensions[xi].categories, key=str)
        y_cats = sorted(self.dimensions[yi].categories, key=str)
        cells = [[[] for _ in x_cats] for _ in y_cats]
        for row in self.data:
            if all(row[k] == v for k, v in fixed):
                cells[y_cats.index(row[yi])][x_cats.index(row[xi])].append(row[vi])
        return TabularFormatter.format([[self.aggregate(c) for c in r] for r in cells], x_cats, y_cats)
