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
from functools import cached_property

import torch
from pysdd.sdd import SddNode

from .kernels import circuit_kernels
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

    @cached_property
    def _native_plan(self) -> "_NativePlan":
        """The circuit in compressed rows for the C kernels (built on first CPU use only)."""
        return _compressed_rows(self._groups, self.roots)

    def forward(self, leaves: torch.Tensor, gather: torch.Tensor | None = None) -> torch.Tensor:
        """Root log-values ``[batch, n_roots]`` from leaf log-weights ``[n_leaves, batch]``.

        With ``gather`` (``[n_leaves, batch]`` indices), ``leaves`` is a flat tensor and leaf ``i`` of batch
        element ``b`` is ``leaves[gather[i, b]]`` (one copy, no intermediate table).
        """
        shape = tuple((leaves if gather is None else gather).shape)
        if len(shape) != 2 or shape[0] != self.n_leaves or (gather is not None and leaves.dim() != 1):
            raise ValueError(f"expected leaves of shape [{self.n_leaves}, batch], got {tuple(leaves.shape)}"
                             + ("" if gather is None else f" gathered by indices of shape {shape}"))
        if leaves.device.type == "cpu" and leaves.dtype in _NATIVE_TYPES:
            kernels = circuit_kernels()
            if kernels is not None:
                return _NativeCircuit.apply(leaves, gather, self, kernels).t()
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


def _run(values: torch.Tensor, groups: list[_Group], keep_terms: bool) -> list[torch.Tensor | None]:
    """Fill ``values`` group by group; returns each group's term values ``[nodes, terms, batch]`` if asked
    (the backward pass weighs a term by ``exp(term - node)``)."""
    batch = values.shape[1]
    kept: list[torch.Tensor | None] = []
    for group in groups:
        n, width, arity = group.children.shape
        out = values[group.start : group.start + n]
        gathered = values.index_select(0, group.children.view(-1)).view(n, width, arity, batch)
        if width == 1:  # a product: sum of its factors' log-values
            torch.sum(gathered.view(n, arity, batch), 1, out=out)
            kept.append(None)
            continue
        terms = gathered.sum(2) if arity > 1 else gathered.view(n, width, batch)
        torch.logsumexp(terms, 1, out=out)  # every term -inf: -inf (no NaN)
        kept.append(terms if keep_terms else None)
    return kept


def _leaf_values(leaves: torch.Tensor, gather: torch.Tensor | None, rows: int) -> torch.Tensor:
    """A ``[rows, batch]`` buffer whose first rows are the leaves (gathered from a flat source if asked)."""
    if gather is None:
        values = leaves.new_empty((rows, leaves.shape[1]))
        values[: leaves.shape[0]] = leaves
    else:
        values = leaves.new_empty((rows, gather.shape[1]))
        torch.index_select(leaves, 0, gather.view(-1), out=values[: gather.shape[0]].view(-1))
    return values


def _leaf_gradient(grads: torch.Tensor, gather: torch.Tensor | None, n_leaves: int, n_sources: int) -> torch.Tensor:
    if gather is None:
        return grads[:n_leaves]
    return grads.new_zeros(n_sources).index_add_(0, gather.view(-1), grads[:n_leaves].reshape(-1))


class _EvaluateCircuit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, leaves, gather, groups, roots, total):  # type: ignore[override]
        n_leaves = leaves.shape[0] if gather is None else gather.shape[0]
        values = _leaf_values(leaves, gather, total)
        terms = _run(values, groups, keep_terms=leaves.requires_grad)
        ctx.groups, ctx.terms, ctx.n_leaves = groups, terms, n_leaves
        ctx.gather, ctx.n_sources = gather, leaves.shape[0]
        ctx.save_for_backward(roots, values)
        return values.index_select(0, roots)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_roots):  # type: ignore[override]
        roots, values = ctx.saved_tensors
        batch = grad_roots.shape[1]
        # a captured CUDA graph uses index_add_ (cuSPARSE's matmul allocates its own workspace)
        capturing = values.is_cuda and torch.cuda.is_current_stream_capturing()
        grads = torch.zeros_like(values)
        grads.index_add_(0, roots, grad_roots)
        for group, terms in zip(reversed(ctx.groups), reversed(ctx.terms)):
            n, width, arity = group.children.shape
            grad_out = grads[group.start : group.start + n].unsqueeze(1)
            if terms is None:  # a product: every factor gets the node's gradient
                grad_terms = grad_out
            else:  # d node / d term = exp(term - node); 0 where node and term are both -inf
                node = values[group.start : group.start + n].unsqueeze(1)
                grad_terms = torch.sub(terms, node).exp_().nan_to_num_(0.0).mul_(grad_out)
            if group.scatter is not None and not capturing:  # children come first: no read of what is written
                grads[: group.start].addmm_(group.scatter, grad_terms.reshape(n * width, batch))
                continue
            # a copy where no product makes one: index_add_ must not read what it writes
            grad_terms = grad_terms.clone() if terms is None else grad_terms
            grads.index_add_(0, group.children.view(-1),
                             grad_terms.unsqueeze(2).expand(n, width, arity, batch).reshape(-1, batch))
        return _leaf_gradient(grads, ctx.gather, ctx.n_leaves, ctx.n_sources), None, None, None, None


_NATIVE_TYPES = {torch.float32: "f32", torch.float64: "f64"}


@dataclass
class _NativePlan:
    """The circuit in compressed rows for the C kernels: node ``i``'s terms are
    ``node_terms[i]:node_terms[i+1]``, term ``t``'s factor rows ``factors[term_factors[t]:term_factors[t+1]]``."""

    node_terms: torch.Tensor
    term_factors: torch.Tensor
    factors: torch.Tensor
    roots: torch.Tensor

    @property
    def n_nodes(self) -> int:
        return int(self.node_terms.shape[0]) - 1

    @property
    def n_terms(self) -> int:
        return int(self.term_factors.shape[0]) - 1

    @property
    def max_width(self) -> int:
        """Terms of the widest node (the scratch rows of a forward pass that keeps no weights)."""
        return int((self.node_terms[1:] - self.node_terms[:-1]).max()) if self.n_nodes else 0


def _compressed_rows(groups: list[tuple[int, list[list[tuple[int, ...]]]]], roots: list[int]) -> _NativePlan:
    node_terms, term_factors, factors = [0], [0], []
    for _, nodes in groups:
        for node in nodes:
            for term in node:
                factors.extend(term)
                term_factors.append(len(factors))
            node_terms.append(len(term_factors) - 1)
    as_tensor = lambda values: torch.tensor(values, dtype=torch.int64)  # noqa: E731
    return _NativePlan(as_tensor(node_terms), as_tensor(term_factors), as_tensor(factors), as_tensor(roots))


class _NativeCircuit(torch.autograd.Function):
    """The circuit as two C calls (``nesy_gedi/kernels/circuit.c``); same contract as :class:`_EvaluateCircuit`."""

    @staticmethod
    def forward(ctx, leaves, gather, circuit, kernels):  # type: ignore[override]
        plan, n_leaves = circuit._native_plan, circuit.n_leaves
        values = _leaf_values(leaves, gather, n_leaves + plan.n_nodes)
        batch = values.shape[1]
        keep = leaves.requires_grad  # the weights are kept for the backward pass only
        weights = leaves.new_empty((plan.n_terms if keep else plan.max_width, batch))
        scratch = leaves.new_empty(batch)
        suffix = _NATIVE_TYPES[leaves.dtype]
        getattr(kernels, f"circuit_forward_{suffix}")(
            values.data_ptr(), weights.data_ptr(), batch, n_leaves, plan.n_nodes,
            plan.node_terms.data_ptr(), plan.term_factors.data_ptr(), plan.factors.data_ptr(), scratch.data_ptr(),
            int(keep))
        ctx.circuit, ctx.kernels, ctx.gather, ctx.n_sources = circuit, kernels, gather, leaves.shape[0]
        ctx.save_for_backward(weights)
        return values.index_select(0, plan.roots)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_roots):  # type: ignore[override]
        (weights,) = ctx.saved_tensors
        circuit, plan = ctx.circuit, ctx.circuit._native_plan
        batch = grad_roots.shape[1]
        grads = weights.new_zeros((circuit.n_leaves + plan.n_nodes, batch))
        grads.index_add_(0, plan.roots, grad_roots)
        scratch = weights.new_empty(batch)  # held here: the C code writes to it
        getattr(ctx.kernels, f"circuit_backward_{_NATIVE_TYPES[weights.dtype]}")(
            grads.data_ptr(), weights.data_ptr(), batch, circuit.n_leaves, plan.n_nodes,
            plan.node_terms.data_ptr(), plan.term_factors.data_ptr(), plan.factors.data_ptr(),
            scratch.data_ptr())
        return _leaf_gradient(grads, ctx.gather, circuit.n_leaves, ctx.n_sources), None, None, None
