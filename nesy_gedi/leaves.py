"""The leaf table: log-weights of circuit literals as rows of one tensor.

Every literal of a compiled circuit reads one row of a ``[rows, batch]`` table
of log-weights.  A row is a constant (``log p`` of a numeric fact, ``0`` or
``-inf``), a log-probability that a network outputs, the log-sum of several
outputs of one network (the weight of "none of the grounded alternatives"), or
``log(c + sum_k s_k p_k)`` of the program's learnable probabilities ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from problog.logic import Term

from .learnable import learnable_log_weights, learnable_rows

ZERO_ROW = 0  # log 1
NEG_INF_ROW = 1  # log 0


@dataclass(frozen=True)
class NeuralCall:
    """One application of a network to (placeholders for) input tensors."""

    network: str
    inputs: tuple[Term, ...]
    is_fact: bool

    def __str__(self) -> str:
        return f"{self.network}({', '.join(map(str, self.inputs))})"


class LeafTable:
    """Collects the rows a circuit needs, then evaluates them for a batch.

    While a circuit is compiled, :meth:`const`, :meth:`neural` and
    :meth:`neural_sum` add rows and return their stable indices.  Neural
    outputs are indexed per call: column ``k`` of an annotated disjunction's
    log-probabilities, or column 0/1 (``log p``/``log 1-p``) of a neural fact.
    """

    def __init__(self) -> None:
        self.calls: list[NeuralCall] = []
        self._call_index: dict[NeuralCall, int] = {}
        self._consts: list[float] = []
        self._neural: list[tuple[int, int]] = []
        self._sums: list[tuple[int, tuple[int, ...]]] = []
        self._learnable: list[tuple[float, tuple[tuple[int, int], ...]]] = []
        self._rows: dict[tuple, int] = {}
        self._order: list[tuple[str, int]] = []
        self._cache: dict[tuple, tuple[torch.Tensor, ...]] = {}
        self.const(0.0)
        self.const(float("-inf"))

    def _row(self, kind: str, key: object, store: list) -> int:
        if (kind, key) not in self._rows:
            self._rows[(kind, key)] = len(self._order)
            self._order.append((kind, len(store)))
            store.append(key)
            self._cache.clear()
        return self._rows[(kind, key)]

    def call(self, call: NeuralCall) -> int:
        if call not in self._call_index:
            self._call_index[call] = len(self.calls)
            self.calls.append(call)
        return self._call_index[call]

    def const(self, log_weight: float) -> int:
        return self._row("const", float(log_weight), self._consts)

    def neural(self, call: NeuralCall, column: int) -> int:
        return self._row("neural", (self.call(call), column), self._neural)

    def neural_sum(self, call: NeuralCall, columns: tuple[int, ...]) -> int:
        """Row of ``log sum_{c in columns} p_c`` for one annotated-disjunction call."""
        columns = tuple(sorted(set(columns)))
        if not columns:
            return NEG_INF_ROW
        if len(columns) == 1:
            return self.neural(call, columns[0])
        return self._row("sum", (self.call(call), columns), self._sums)

    def learnable(self, parameter: int, negated: bool = False) -> int:
        """Row of ``log p`` (``log(1 - p)`` when ``negated``) of learnable probability ``parameter``."""
        return self._row("learnable", (1.0, ((parameter, -1),)) if negated else (0.0, ((parameter, 1),)),
                         self._learnable)

    def learnable_rest(self, fixed: float, parameters: tuple[int, ...]) -> int:
        """Row of ``log(1 - fixed - sum_k p_k)``: none of a disjunction's grounded alternatives."""
        return self._row("learnable", (1.0 - fixed, tuple((k, -1) for k in sorted(parameters))), self._learnable)

    @property
    def n_learnable(self) -> int:
        """How many learnable probabilities the rows read (one more than the largest index)."""
        return 1 + max((k for _, terms in self._learnable for k, _ in terms), default=-1)

    def __len__(self) -> int:
        return len(self._order)

    def _indices(self, device: torch.device, dtype: torch.dtype, layout: tuple[tuple[int, int], ...],
                 n_outputs: int, batch: int, n_parameters: int = 0):
        """Cached: the constants, the output elements of each "sum" row (``[columns * batch]``), one
        ``[rows, batch]`` gather index over ``[outputs; constants; sums; learnable]`` that puts every table
        entry in place, and the learnable rows' ``(c, S)``."""
        key = (device, dtype, layout, n_outputs, batch, n_parameters)
        if key not in self._cache:
            consts = torch.tensor(self._consts, dtype=dtype, device=device)
            b = torch.arange(batch, dtype=torch.long)

            def elements(call: int, column: int) -> torch.Tensor:
                offset, width = layout[call]
                return offset + column + b * width

            sums = [torch.cat([elements(c, col) for col in cols]).to(device) for c, cols in self._sums]
            source_of = {
                "const": lambda i: torch.full((batch,), n_outputs + i, dtype=torch.long),
                "neural": lambda i: elements(*self._neural[i]),
                "sum": lambda i: n_outputs + len(self._consts) + i * batch + b,
                "learnable": lambda i: torch.full((batch,), n_outputs + len(self._consts) + len(self._sums) * batch
                                                  + i, dtype=torch.long),
            }
            gather = torch.stack([source_of[kind](i) for kind, i in self._order]).to(device)
            rows = learnable_rows(self._learnable, n_parameters, device, torch.float64) if self._learnable else None
            self._cache[key] = (consts, sums, gather, rows)
        return self._cache[key]

    def sources(
        self, outputs: torch.Tensor | None, layout: tuple[tuple[int, int], ...], batch: int, device: torch.device,
        dtype: torch.dtype, learnable: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(source, gather)``: entry ``(r, b)`` of the ``[len(self), batch]`` table is ``source[gather[r, b]]``.

        ``outputs`` is the flat tensor of the networks' log-probabilities, call ``i``'s laid out as
        ``layout[i] = (offset, width)`` (element ``offset + b * width + c``: column ``c`` of batch element
        ``b``; ``None`` without calls), ``learnable`` the program's learnable probabilities ``[n]`` (needed when
        a row reads them); a circuit gathers its leaves itself (no intermediate table)."""
        n_outputs = 0 if outputs is None else int(outputs.shape[0])
        if self._learnable and (learnable is None or learnable.shape[0] < self.n_learnable):
            raise ValueError(f"this circuit reads {self.n_learnable} learnable probabilities; got "
                             f"{0 if learnable is None else learnable.shape[0]}")
        n_parameters = 0 if learnable is None or not self._learnable else int(learnable.shape[0])
        consts, sums, gather, rows = self._indices(device, dtype, layout, n_outputs, batch, n_parameters)
        parts = [consts]
        if outputs is not None:
            parts.insert(0, outputs)
            parts.extend(_logsumexp_rows(outputs.index_select(0, idx).view(-1, batch)).view(-1) for idx in sums)
        if rows is not None:
            c, signs = rows
            parts.append(learnable_log_weights(c.to(learnable.dtype), signs.to(learnable.dtype),
                                               learnable.to(device)).to(dtype))
        return torch.cat(parts), gather


def _logsumexp_rows(rows: torch.Tensor) -> torch.Tensor:
    """``log sum exp`` over dim 0 whose gradient stays finite (0) where every row is ``-inf``.

    ``torch.logsumexp`` back-propagates NaN through an all ``-inf`` column, e.g. a
    network that gives probability 0 to every value of a "none of these" row.
    Without a gradient to compute, ``torch.logsumexp`` is used (fewer ops).
    """
    if not rows.requires_grad:
        return torch.logsumexp(rows, dim=0, keepdim=True)
    top = rows.amax(dim=0, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top)).detach()
    total = torch.exp(rows - top).sum(dim=0, keepdim=True)
    positive = total > 0
    safe = torch.where(positive, total, torch.ones_like(total))
    return torch.where(positive, torch.log(safe) + top, torch.full_like(total, float("-inf")))
