"""SDDs as layered arithmetic circuits, evaluated in the log semiring with torch.

An SDD decision node ``OR_i (prime_i AND sub_i)`` becomes a log-sum-exp node
over product (log: sum) nodes.  Nodes are sorted into layers by depth and,
inside a layer, into groups of equal kind and similar fan-in.  A group is
evaluated for the whole batch at once: one gather of its children's values
into a padded ``[nodes, fan_in, batch]`` tensor and one reduction.

The backward pass is written by hand (:class:`_EvaluateCircuit`): it keeps one
``[nodes, batch]`` value buffer instead of an autograd graph per layer and
sends ``d out / d child`` = 1 (AND) or ``exp(child - out)`` (OR) down.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pysdd.sdd import SddNode

from .leaves import NEG_INF_ROW, ZERO_ROW

AND, OR = 0, 1


@dataclass
class _Group:
    kind: int
    start: int  # index of the group's first node in the value buffer
    children: torch.Tensor  # [nodes, fan_in], padded with the neutral row


class TensorCircuit:
    """A multi-rooted circuit over the rows of a leaf table.

    ``n_leaves`` is the number of leaf-table rows.  :meth:`forward` maps leaf
    log-weights ``[n_leaves, batch]`` to root log-values ``[batch, n_roots]``.
    """

    def __init__(self, n_leaves: int, nodes: list[tuple[int, tuple[int, ...]]], roots: list[int]):
        self.n_leaves = n_leaves
        self.n_nodes = len(nodes)
        self.n_edges = sum(len(children) for _, children in nodes)
        depth = [0] * (n_leaves + len(nodes))
        for i, (_, children) in enumerate(nodes):
            depth[n_leaves + i] = 1 + max(depth[c] for c in children)
        self.n_layers = max(depth, default=0)
        # New order: by layer, then kind, then fan-in bucket.
        def bucket(n: int) -> int:
            return max(1, (len(nodes[n][1]) - 1).bit_length())

        order = sorted(range(len(nodes)), key=lambda n: (depth[n_leaves + n], nodes[n][0], bucket(n)))
        new_index = list(range(n_leaves)) + [0] * len(nodes)
        for position, n in enumerate(order):
            new_index[n_leaves + n] = n_leaves + position
        self.roots = [new_index[r] for r in roots]
        self._groups: list[tuple[int, int, list[list[int]]]] = []
        position = n_leaves
        for n in order:
            kind, children = nodes[n]
            key = (depth[n_leaves + n], kind, bucket(n))
            if not self._groups or self._groups[-1][0] != key:
                self._groups.append((key, position, []))
            self._groups[-1][2].append([new_index[c] for c in children])
            position += 1
        self._device_cache: dict[torch.device, tuple[list[_Group], torch.Tensor]] = {}

    @classmethod
    def from_sdd(cls, roots: list[SddNode], literal_rows: dict[int, int], n_leaves: int) -> "TensorCircuit":
        """Translate SDD roots (sharing one manager) into a circuit."""
        nodes: list[tuple[int, tuple[int, ...]]] = []
        structural: dict[tuple[int, ...], int] = {}
        memo: dict[int, int] = {}

        def add(kind: int, children: list[int]) -> int:
            neutral, absorbing = (ZERO_ROW, NEG_INF_ROW) if kind == AND else (NEG_INF_ROW, None)
            if absorbing is not None and absorbing in children:
                return absorbing
            children = [c for c in children if c != neutral]
            if not children:
                return neutral
            if len(children) == 1:
                return children[0]
            key = (kind, *sorted(children))
            if key not in structural:
                nodes.append((kind, tuple(children)))
                structural[key] = n_leaves + len(nodes) - 1
            return structural[key]

        def leaf(node: SddNode) -> int | None:
            if node.is_true():
                return ZERO_ROW
            if node.is_false():
                return NEG_INF_ROW
            if node.is_literal():
                return literal_rows[node.literal]
            return None

        for root in roots:
            stack = [root]
            while stack:
                node = stack[-1]
                if node.id in memo:
                    stack.pop()
                    continue
                value = leaf(node)
                if value is not None:
                    memo[node.id] = value
                    stack.pop()
                    continue
                elements = node.elements()
                pending = [x for pair in elements for x in pair if x.id not in memo and leaf(x) is None]
                if pending:
                    stack.extend(pending)
                    continue
                stack.pop()

                def index(x: SddNode) -> int:
                    value = leaf(x)
                    return memo[x.id] if value is None else value

                terms = [add(AND, [index(p), index(s)]) for p, s in elements]
                memo[node.id] = add(OR, terms)
        root_rows = [memo[r.id] if leaf(r) is None else leaf(r) for r in roots]
        return cls(n_leaves, nodes, root_rows)

    def _plan(self, device: torch.device) -> tuple[list[_Group], torch.Tensor]:
        if device not in self._device_cache:
            groups = []
            for (_, kind, _), start, children in self._groups:
                width = max(len(c) for c in children)
                pad = ZERO_ROW if kind == AND else NEG_INF_ROW
                padded = [c + [pad] * (width - len(c)) for c in children]
                groups.append(_Group(kind, start, torch.tensor(padded, dtype=torch.long, device=device)))
            roots = torch.tensor(self.roots, dtype=torch.long, device=device)
            self._device_cache[device] = (groups, roots)
        return self._device_cache[device]

    def forward(self, leaves: torch.Tensor) -> torch.Tensor:
        """Root log-values ``[batch, n_roots]`` from leaf log-weights ``[n_leaves, batch]``."""
        if leaves.dim() != 2 or leaves.shape[0] != self.n_leaves:
            raise ValueError(f"expected leaves of shape [{self.n_leaves}, batch], got {tuple(leaves.shape)}")
        groups, roots = self._plan(leaves.device)
        return _EvaluateCircuit.apply(leaves, groups, roots, self.n_leaves + self.n_nodes).t()

    __call__ = forward

    def __repr__(self) -> str:
        return (
            f"TensorCircuit(leaves={self.n_leaves}, nodes={self.n_nodes}, edges={self.n_edges}, "
            f"layers={self.n_layers}, roots={len(self.roots)})"
        )


def _run(values: torch.Tensor, groups: list[_Group]) -> None:
    batch = values.shape[1]
    for group in groups:
        n, width = group.children.shape
        gathered = values.index_select(0, group.children.view(-1)).view(n, width, batch)
        out = gathered.sum(1) if group.kind == AND else torch.logsumexp(gathered, dim=1)
        values[group.start : group.start + n] = out


class _EvaluateCircuit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, leaves, groups, roots, total):  # type: ignore[override]
        values = leaves.new_empty((total, leaves.shape[1]))
        values[: leaves.shape[0]] = leaves
        _run(values, groups)
        ctx.groups, ctx.n_leaves = groups, leaves.shape[0]
        ctx.save_for_backward(values, roots)
        return values.index_select(0, roots)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_roots):  # type: ignore[override]
        values, roots = ctx.saved_tensors
        grads = torch.zeros_like(values)
        grads.index_add_(0, roots, grad_roots)
        batch = values.shape[1]
        for group in reversed(ctx.groups):
            n, width = group.children.shape
            grad_out = grads[group.start : group.start + n].unsqueeze(1)
            if group.kind == AND:
                grad_children = grad_out.expand(n, width, batch)
            else:
                out = values[group.start : group.start + n].unsqueeze(1)
                children = values.index_select(0, group.children.view(-1)).view(n, width, batch)
                weight = torch.exp(children - out)
                weight = torch.where(torch.isfinite(out), weight, torch.zeros_like(weight))
                grad_children = grad_out * weight
            grads.index_add_(0, group.children.view(-1), grad_children.reshape(n * width, batch))
        return grads[: ctx.n_leaves], None, None, None
