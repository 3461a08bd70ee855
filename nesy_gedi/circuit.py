"""SDDs as layered sum-of-products circuits, evaluated in the log semiring with torch.

An SDD decision node ``OR_i (prime_i AND sub_i)`` becomes one *sum-of-products*
node: ``log sum_i exp(v[prime_i] + v[sub_i])``.  Conjunctions are inlined into
their parents (an AND kept only where a root needs it, as a one-term node), so a
decision is one gather, one add and one log-sum-exp, and the circuit has half the
layers of its AND/OR form.  Nodes are sorted into layers by depth; a layer is
split into groups of similar width only where padding would waste work.  A group
is evaluated for the whole batch at once from one padded
``[nodes, terms, factors]`` index tensor.

The backward pass is written by hand (:class:`_EvaluateCircuit`): one
``[nodes, batch]`` value buffer instead of an autograd graph per layer; each
term's weight ``exp(term - node)`` is kept from the forward and sent down to
every factor of the term.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from pysdd.sdd import SddNode

from .leaves import NEG_INF_ROW, ZERO_ROW

AND, OR = 0, 1
PAD_SLACK = 1024  # index cells a group may pad before it is split by width


@dataclass
class _Group:
    start: int  # index of the group's first node in the value buffer
    children: torch.Tensor  # [nodes, terms, factors]: rows, padded with NEG_INF_ROW terms and ZERO_ROW factors
    # [start, nodes * terms] sparse CSR: how often each earlier row is a factor of each term; the backward
    # pass sends the terms' gradients to their factors with one sparse matmul (None: index_add_)
    scatter: torch.Tensor | None = None


def _sum_of_products(n_leaves: int, nodes: list[tuple[int, tuple[int, ...]]], roots: list[int]
                     ) -> tuple[list[list[tuple[int, ...]]], list[int]]:
    """AND/OR nodes -> nodes that are lists of terms (tuples of rows), ANDs inlined; returns (nodes, roots).

    Row numbers below ``n_leaves`` are leaves; the returned nodes are numbered
    from ``n_leaves`` in an order where children come first.
    """
    factors_memo: dict[int, tuple[int, ...]] = {}

    def factors(row: int) -> tuple[int, ...]:
        """The rows whose product ``row`` is: an AND node flattened, anything else itself."""
        if row < n_leaves or nodes[row - n_leaves][0] != AND:
            return (row,)
        if row not in factors_memo:
            factors_memo[row] = tuple(f for c in nodes[row - n_leaves][1] for f in factors(c))
        return factors_memo[row]

    def terms(row: int) -> list[tuple[int, ...]]:
        kind, children = nodes[row - n_leaves]
        return [factors(c) for c in children] if kind == OR else [factors(row)]

    # keep the OR nodes reachable from the roots (through inlined ANDs) and the AND roots
    kept: dict[int, int] = {}
    out: list[list[tuple[int, ...]]] = []
    for root in roots:
        if root < n_leaves or root in kept:
            continue
        stack = [root]
        while stack:
            row = stack[-1]
            if row in kept:
                stack.pop()
                continue
            pending = [f for t in terms(row) for f in t if f >= n_leaves and f not in kept]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            out.append([tuple(f if f < n_leaves else kept[f] for f in t) for t in terms(row)])
            kept[row] = n_leaves + len(out) - 1
    return out, [r if r < n_leaves else kept[r] for r in roots]


class TensorCircuit:
    """A multi-rooted circuit over the rows of a leaf table.

    ``n_leaves`` is the number of leaf-table rows; ``nodes`` are AND/OR nodes
    ``(kind, children)`` numbered from ``n_leaves``.  :meth:`forward` maps leaf
    log-weights ``[n_leaves, batch]`` to root log-values ``[batch, n_roots]``.
    ``n_nodes``/``n_edges`` count the AND/OR circuit; ``n_layers`` the layers evaluated.
    """

    def __init__(self, n_leaves: int, nodes: list[tuple[int, tuple[int, ...]]], roots: list[int]):
        self.n_leaves = n_leaves
        self.n_nodes = len(nodes)
        self.n_edges = sum(len(children) for _, children in nodes)
        sop, sop_roots = _sum_of_products(n_leaves, nodes, roots)
        depth = [0] * (n_leaves + len(sop))
        for i, node in enumerate(sop):
            depth[n_leaves + i] = 1 + max(depth[f] for t in node for f in t)
        self.n_layers = max(depth, default=0)
        # new order: by layer, then by shape; a layer is cut where padding would waste work
        order = sorted(range(len(sop)), key=lambda n: (depth[n_leaves + n], len(sop[n]), max(map(len, sop[n]))))
        new_index = list(range(n_leaves)) + [0] * len(sop)
        for position, n in enumerate(order):
            new_index[n_leaves + n] = n_leaves + position
        self.roots = [new_index[r] for r in sop_roots]
        self._groups: list[tuple[int, list[list[tuple[int, ...]]]]] = []
        layer, cells, width, arity = -1, 0, 0, 0
        for position, n in enumerate(order):
            node = [tuple(new_index[f] for f in t) for t in sop[n]]
            w, a = len(node), max(map(len, node))
            count = len(self._groups[-1][1]) if self._groups else 0
            padded = (count + 1) * max(w, width) * max(a, arity)
            if depth[n_leaves + n] != layer or padded > 2 * (cells + w * a) + PAD_SLACK:
                self._groups.append((n_leaves + position, []))
                layer, cells, width, arity = depth[n_leaves + n], 0, 0, 0
            self._groups[-1][1].append(node)
            cells, width, arity = cells + w * a, max(width, w), max(arity, a)
        self.n_groups = len(self._groups)
        self._device_cache: dict[tuple[torch.device, torch.dtype], tuple[list[_Group], torch.Tensor]] = {}

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

    def _plan(self, device: torch.device, dtype: torch.dtype) -> tuple[list[_Group], torch.Tensor]:
        if (device, dtype) not in self._device_cache:
            groups = []
            for start, nodes in self._groups:
                width = max(len(node) for node in nodes)
                arity = max(len(t) for node in nodes for t in node)
                pad_term = (NEG_INF_ROW,) + (ZERO_ROW,) * (arity - 1)
                padded = [[t + (ZERO_ROW,) * (arity - len(t)) for t in node] + [pad_term] * (width - len(node))
                          for node in nodes]
                children = torch.tensor(padded, dtype=torch.long, device=device)
                groups.append(_Group(start, children, _scatter_matrix(children, start, dtype)))
            roots = torch.tensor(self.roots, dtype=torch.long, device=device)
            self._device_cache[(device, dtype)] = (groups, roots)
        return self._device_cache[(device, dtype)]

    def forward(self, leaves: torch.Tensor, gather: torch.Tensor | None = None) -> torch.Tensor:
        """Root log-values ``[batch, n_roots]`` from leaf log-weights ``[n_leaves, batch]``.

        With ``gather``, leaf ``i`` is row ``gather[i]`` of ``leaves`` (one copy, no intermediate table).
        """
        rows = None if leaves.dim() != 2 else int(leaves.shape[0] if gather is None else gather.shape[0])
        if rows != self.n_leaves:
            raise ValueError(f"expected leaves of shape [{self.n_leaves}, batch], got {tuple(leaves.shape)}"
                             + ("" if gather is None else f" gathered by {rows} indices"))
        groups, roots = self._plan(leaves.device, leaves.dtype)
        return _EvaluateCircuit.apply(leaves, gather, groups, roots, self.n_leaves + self.n_nodes).t()

    __call__ = forward

    def __repr__(self) -> str:
        return (
            f"TensorCircuit(leaves={self.n_leaves}, nodes={self.n_nodes}, edges={self.n_edges}, "
            f"layers={self.n_layers}, groups={self.n_groups}, roots={len(self.roots)})"
        )


def _scatter_matrix(children: torch.Tensor, rows: int, dtype: torch.dtype) -> torch.Tensor | None:
    """Sparse CSR ``[rows, nodes * terms]``: entry ``(r, t)`` counts the factors of term ``t`` that are row ``r``.

    ``None`` where sparse CSR matmul is not available (devices other than CPU and CUDA).
    """
    if children.device.type not in ("cpu", "cuda") or dtype not in (torch.float32, torch.float64):
        return None
    n, width, arity = children.shape
    terms = torch.arange(n * width, device=children.device).repeat_interleave(arity)
    indices = torch.stack([children.reshape(-1), terms])
    ones = torch.ones(indices.shape[1], dtype=dtype, device=children.device)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the one op used here is tested
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(indices, ones, (rows, n * width), check_invariants=False)
        return coo.coalesce().to_sparse_csr()


def _run(values: torch.Tensor, groups: list[_Group], keep_weights: bool) -> list[torch.Tensor | None]:
    """Fill ``values`` group by group; returns each group's term weights ``exp(term - node)`` if asked."""
    batch = values.shape[1]
    weights: list[torch.Tensor | None] = []
    for group in groups:
        n, width, arity = group.children.shape
        gathered = values.index_select(0, group.children.view(-1)).view(n, width, arity, batch)
        terms = gathered.sum(2) if arity > 1 else gathered.squeeze(2)
        if width == 1:
            out = terms.squeeze(1)
            weights.append(None)
        else:
            top = terms.amax(1, keepdim=True).clamp_min(torch.finfo(terms.dtype).min)  # all -inf: stays finite
            scaled = (terms - top).exp_()
            total = scaled.sum(1, keepdim=True)
            out = (total.log() + top).squeeze(1)
            # total >= 1 unless every term is -inf (then every weight is 0)
            weights.append(scaled.div_(total.clamp_min(1.0)) if keep_weights else None)
        values[group.start : group.start + n] = out
    return weights


class _EvaluateCircuit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, leaves, gather, groups, roots, total):  # type: ignore[override]
        n_leaves = leaves.shape[0] if gather is None else gather.shape[0]
        values = leaves.new_empty((total, leaves.shape[1]))
        if gather is None:
            values[:n_leaves] = leaves
        else:
            torch.index_select(leaves, 0, gather, out=values[:n_leaves])
        weights = _run(values, groups, keep_weights=leaves.requires_grad)
        ctx.groups, ctx.weights, ctx.n_leaves = groups, weights, n_leaves
        ctx.gather, ctx.n_sources = gather, leaves.shape[0]
        ctx.save_for_backward(roots)
        ctx.total = total
        return values.index_select(0, roots)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_roots):  # type: ignore[override]
        (roots,) = ctx.saved_tensors
        batch = grad_roots.shape[1]
        grads = grad_roots.new_zeros((ctx.total, batch))
        grads.index_add_(0, roots, grad_roots)
        for group, weight in zip(reversed(ctx.groups), reversed(ctx.weights)):
            n, width, arity = group.children.shape
            grad_out = grads[group.start : group.start + n].unsqueeze(1)
            if group.scatter is not None:  # children are rows before the group: no read of what is written
                grad_terms = grad_out if weight is None else grad_out * weight
                grads[: group.start] += group.scatter @ grad_terms.reshape(n * width, batch)
                continue
            # a copy where no product makes one: index_add_ must not read what it writes
            grad_terms = grad_out.clone() if weight is None else grad_out * weight
            grads.index_add_(0, group.children.view(-1),
                             grad_terms.unsqueeze(2).expand(n, width, arity, batch).reshape(-1, batch))
        if ctx.gather is None:
            return grads[: ctx.n_leaves], None, None, None, None
        grad_leaves = grads.new_zeros((ctx.n_sources, batch)).index_add_(0, ctx.gather, grads[: ctx.n_leaves])
        return grad_leaves, None, None, None, None
