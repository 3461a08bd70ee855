"""``Logger``: named series indexed by iteration, comments, CSV-like ``.log`` files (DeepProbLog's format)."""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any, Iterable

import numpy as np


class Logger:
    def __init__(self) -> None:
        self.log_data: dict[str, dict[int, Any]] = {}
        self.indices: list[int] = []
        self.comments: list[str] = []

    def clear(self) -> None:
        self.log_data.clear()
        self.indices.clear()
        self.comments.clear()

    def log(self, name: str, index: int, value: Any) -> None:
        series = self.log_data.setdefault(name, {})
        i = bisect.bisect_left(self.indices, index)
        if i >= len(self.indices) or self.indices[i] != index:
            self.indices.insert(i, index)
        series[index] = value

    def log_list(self, i: int, data: Iterable | None) -> None:
        for name, value in data or ():
            self.log(name, i, value)

    def comment(self, comment: str) -> None:
        self.comments += comment.split("\n")

    def get_attribute(self, attribute: str, include_indices: bool = False):
        series = self.log_data.get(attribute, {})
        indices = [i for i in self.indices if i in series]
        values = [series[i] for i in indices]
        return (indices, values) if include_indices else values

    def __getitem__(self, item: str):
        return self.get_attribute(item, True)

    def get_union(self, att1: str, att2: str) -> tuple[list[int], list[tuple[Any, Any]]]:
        """The indices where both series have a value, and the value pairs there."""
        first, second = self.log_data.get(att1, {}), self.log_data.get(att2, {})
        indices = [i for i in self.indices if i in first and i in second]
        return indices, [(first[i], second[i]) for i in indices]

    def has_attribute(self, attribute: str) -> bool:
        return attribute in self.log_data

    def __str__(self) -> str:
        columns = list(self.log_data)
        lines = [f"#{c}" for c in self.comments] + ["i," + ",".join(columns)]
        for i in self.indices:
            lines.append(",".join([str(i)] + [str(self.log_data[c].get(i, "")) for c in columns]))
        return "\n".join(lines)

    def write_to_file(self, name: str) -> None:
        path = Path(name + ".log")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(self))

    def read_from_file(self, filename: str | Path) -> None:
        """Add the comments and series of a file written by :meth:`write_to_file` (values as floats)."""
        headers = None
        for line in Path(filename).read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                self.comments.append(line[1:])
            elif headers is None:
                headers = line.split(",")
            else:
                cells = dict(zip(headers, line.split(",")))
                index = int(cells.pop("i"))
                for name, value in cells.items():
                    if value:
                        self.log(name, index, float(value))


def equalize(data: list[tuple[list[int], list]]) -> tuple[list[int], list[list]]:
    """Series ``(indices, values)`` brought onto the union of their indices; a missing value repeats the series'
    previous one (0 before its first)."""
    indices = sorted({i for series_indices, _ in data for i in series_indices})
    aligned = []
    for series_indices, values in data:
        by_index, previous, row = dict(zip(series_indices, values)), 0, []
        for i in indices:
            previous = by_index.get(i, previous)
            row.append(previous)
        aligned.append(row)
    return indices, aligned


def aggregate(data: list[list[float]], percentiles) -> np.ndarray:
    """The ``percentiles`` (0-100) across series, index by index: ``[len(percentiles), len(series)]``."""
    return np.percentile(np.array(data, dtype=float).T, percentiles, 1)


def aggregate_loggers(loggers: list[Logger], x: str, y: str, percentiles=(0.5,)) -> tuple[list, np.ndarray]:
    """``y`` against ``x`` over several runs' loggers, aligned and summarised by ``percentiles``."""
    pairs = [tuple(equalize([logger[x], logger[y]])[1]) for logger in loggers]
    t, values = equalize(pairs)
    return t, aggregate(values, percentiles)
