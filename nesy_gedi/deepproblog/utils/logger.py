"""``Logger``: named series indexed by iteration, comments, CSV-like ``.log`` files (DeepProbLog's format)."""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any, Iterable


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
