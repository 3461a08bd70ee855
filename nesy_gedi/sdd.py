"""Compiling ground formulas into sentential decision diagrams (PySDD).

Weighted model counting semantics: every SDD variable ``v`` carries a
positive and a negative log-weight, each a row of a :class:`LeafTable`.

* an independent probabilistic fact (or a neural fact) has weights ``(p, 1-p)``;
* the ``k >= 2`` grounded alternatives of an annotated disjunction (neural or
  not) have weights ``(p_i, 1)``, together with an *exactly-one* constraint
  over them plus, when they do not cover the whole disjunction, an extra
  variable of weight ``(1 - sum_i p_i, 1)``;
* an alternative grounded alone behaves like an independent fact;
* a learnable label ``'$t'(I)`` gives rows of the table's learnable kind (``log p_I``, ``log(1 - p_I)``, or
  ``log(1 - fixed - sum of the grounded alternatives' p)``), read from the model's parameters at evaluation.

Each query root is ``query AND evidence AND constraints``; with evidence one
more root ``evidence AND constraints`` normalises.  Under the exactly-one
constraint every model mentions all variables of a disjunction, so evaluating
the (unsmoothed) SDD gives the exact weighted model count.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from problog.logic import Constant, Term, term2list
from pysdd.sdd import SddManager, SddNode, Vtree

from .errors import ProgramError, QueryError
from .grounding import GroundProgram
from .leaves import ZERO_ROW, LeafTable, NeuralCall
from .program import LEARNABLE, NN_AD, NN_FACT


@dataclass
class CompiledSdd:
    """SDD roots for every query answer, and the leaf rows of every literal."""

    manager: SddManager
    roots: list[SddNode]
    answers: list[Term]
    evidence_root: SddNode | None
    literal_rows: dict[int, int]  # signed SDD literal -> leaf table row
    table: LeafTable
    n_vars: int
    seconds: float
    stats: dict = field(default_factory=dict)


def _log(p: float) -> float:
    return math.log(p) if p > 0 else float("-inf")


def _numeric(probability: Term, where: Term) -> float:
    try:
        value = float(probability.compute_value())
    except Exception:
        raise ProgramError(f"probability label {probability} of {where} is not a number") from None
    if not 0.0 <= value <= 1.0 + 1e-12:
        raise ProgramError(f"probability {value} of {where} is outside [0, 1]")
    return min(value, 1.0)


class _Weights:
    """Assigns SDD variables and leaf rows to the atoms of a formula."""

    def __init__(self, domain_sizes: dict[str, int]) -> None:
        self.domain_sizes = domain_sizes
        self.table = LeafTable()
        self.var_of_atom: dict[int, int] = {}
        self.pos: list[int] = []
        self.neg: list[int] = []
        self.groups: dict[object, list[int]] = {}

    def new_var(self, pos_row: int, neg_row: int) -> int:
        self.pos.append(pos_row)
        self.neg.append(neg_row)
        return len(self.pos)

    def call_of(self, label: Term) -> tuple[NeuralCall, int | None]:
        inputs = tuple(term2list(label.args[1], deep=False))
        if label.functor == NN_FACT:
            return NeuralCall(str(label.args[0]), inputs, True), None
        index = label.args[2]
        return NeuralCall(str(label.args[0]), inputs, False), int(index.value if isinstance(index, Constant) else index)

    def add_atoms(self, formula, atoms: list[int]) -> None:
        """Create a variable for each atom, the alternatives of a disjunction side by side."""
        grouped: dict[object, list[int]] = {}
        for key in atoms:
            node = formula.get_node(key)
            if node.group is not None:
                grouped.setdefault(node.group, []).append(key)
        ordered, placed = [], set()
        for key in atoms:
            group = formula.get_node(key).group
            members = grouped[group] if group is not None else [key]
            for k in members:
                if k not in placed:
                    placed.add(k)
                    ordered.append(k)
        for key in ordered:
            node = formula.get_node(key)
            label, name = node.probability, node.name
            if node.group is not None and len(grouped[node.group]) > 1:
                pos = self._row(label, name)
                self.var_of_atom[key] = self.new_var(pos, ZERO_ROW)
            else:
                pos, neg = self._rows_independent(label, name)
                self.var_of_atom[key] = self.new_var(pos, neg)
        for group, keys in grouped.items():
            if len(keys) > 1:
                members = [self.var_of_atom[k] for k in keys]
                rest = self._rest_row([formula.get_node(k) for k in keys])
                if rest is not None:
                    members.append(self.new_var(rest, ZERO_ROW))
                self.groups[group] = members

    def _row(self, label: Term, name: Term) -> int:
        if isinstance(label, Term) and label.functor == NN_AD:
            call, index = self.call_of(label)
            return self.table.neural(call, index)
        if _is_learnable(label):
            return self.table.learnable(_parameter(label))
        return self.table.const(_log(_numeric(label, name)))

    def _rows_independent(self, label: Term, name: Term) -> tuple[int, int]:
        if label is None or label is True:
            return ZERO_ROW, self.table.const(float("-inf"))
        if isinstance(label, Term) and label.functor == NN_FACT:
            call, _ = self.call_of(label)
            return self.table.neural(call, 0), self.table.neural(call, 1)
        if isinstance(label, Term) and label.functor == NN_AD:
            call, index = self.call_of(label)
            others = tuple(i for i in range(self.domain_sizes[call.network]) if i != index)
            return self.table.neural(call, index), self.table.neural_sum(call, others)
        if _is_learnable(label):
            return self.table.learnable(_parameter(label)), self.table.learnable(_parameter(label), negated=True)
        p = _numeric(label, name)
        return self.table.const(_log(p)), self.table.const(_log(1.0 - p))

    def _rest_row(self, nodes) -> int | None:
        """Row for "none of these alternatives", or None when they cover the disjunction."""
        labels = [n.probability for n in nodes]
        if all(isinstance(lb, Term) and lb.functor == NN_AD for lb in labels):
            calls = [self.call_of(lb) for lb in labels]
            call = calls[0][0]
            present = {index for _, index in calls}
            missing = tuple(i for i in range(self.domain_sizes[call.network]) if i not in present)
            return self.table.neural_sum(call, missing) if missing else None
        learnable = [_parameter(lb) for lb in labels if _is_learnable(lb)]
        total = sum(_numeric(lb, n.name) for lb, n in zip(labels, nodes) if not _is_learnable(lb))
        if learnable and total <= 1.0 + 1e-9:
            return self.table.learnable_rest(total, tuple(learnable))
        if total > 1.0 + 1e-9:
            raise ProgramError(
                f"probabilities of annotated disjunction {', '.join(str(n.name) for n in nodes)} sum to {total} > 1"
            )
        return None if total >= 1.0 - 1e-12 else self.table.const(_log(1.0 - total))


def _is_learnable(label) -> bool:
    return isinstance(label, Term) and label.functor == LEARNABLE


def _parameter(label: Term) -> int:
    return int(label.args[0].value)


def _reachable_atoms(formula, roots: list[int | None]) -> list[int]:
    """Atoms reachable from the roots, in depth-first order of first visit."""
    seen: set[int] = set()
    atoms: list[int] = []
    stack = [abs(r) for r in reversed(roots) if r]
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        node = formula.get_node(key)
        kind = type(node).__name__
        if kind == "atom":
            atoms.append(key)
        else:
            stack.extend(abs(c) for c in reversed(node.children) if c)
    return atoms


def _only(manager: SddManager, variable: int, group: list[int]) -> SddNode:
    """``variable`` true and every other alternative of its disjunction false."""
    term = manager.literal(variable)
    for other in group:
        if other != variable:
            term = term & manager.literal(-other)
    return term


def _exactly_one(manager: SddManager, group: list[int]) -> SddNode:
    result = manager.false()
    for v in group:
        result = result | _only(manager, v, group)
    return result


def _literal(manager: SddManager, variable: int, group_of: dict[int, list[int]]) -> SddNode:
    """An atom's SDD.  An alternative of a disjunction is compiled as "this one and
    no other": equal under the exactly-one constraint, but it keeps intermediate
    SDDs small (residual functions no longer range over subsets of alternatives)."""
    group = group_of.get(variable)
    return manager.literal(variable) if group is None else _only(manager, variable, group)


def _compile_node(manager: SddManager, formula, root: int | None, var_of_atom, group_of, memo) -> SddNode:
    """SDD of a formula node, iteratively (programs can nest deeply)."""
    if root is None:
        return manager.false()
    if root == 0:
        return manager.true()
    stack = [abs(root)]
    while stack:
        key = stack[-1]
        if key in memo:
            stack.pop()
            continue
        node = formula.get_node(key)
        kind = type(node).__name__
        if kind == "atom":
            memo[key] = _literal(manager, var_of_atom[key], group_of)
            stack.pop()
            continue
        pending = [abs(c) for c in node.children if c and abs(c) not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        children = []
        for c in node.children:
            if c is None:
                children.append(manager.false())
            elif c == 0:
                children.append(manager.true())
            else:
                children.append(memo[abs(c)] if c > 0 else ~memo[abs(c)])
        if kind == "conj":
            result = manager.true()
            for c in children:
                result = result & c
        else:
            result = manager.false()
            for c in children:
                result = result | c
        memo[key] = result
    value = memo[abs(root)]
    return value if root > 0 else ~value


def compile_sdd(ground: GroundProgram, domain_sizes: dict[str, int], vtree: str = "balanced") -> CompiledSdd:
    """Compile every query answer of ``ground`` into one shared SDD manager.

    The SDD library recurses deeply on large formulas; compiling runs in a
    thread with a large stack so that this cannot overflow the C stack.
    """
    result: list = []

    def work() -> None:
        try:
            result.append(_compile_sdd(ground, domain_sizes, vtree))
        except BaseException as exc:  # re-raised in the caller's thread
            result.append(exc)

    previous = threading.stack_size(_STACK_BYTES)
    try:
        thread = threading.Thread(target=work, name="sdd-compile")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


_STACK_BYTES = 512 * 1024 * 1024

# SDDs larger than this are shrunk by a limited vtree search after compilation
# (multi_add.pl, N=15: 110k -> 14k nodes in 3 s; N=30: 206k -> 27k in 8 s).
MINIMIZE_ABOVE = 20_000


def _minimize(manager: SddManager, keep: list[SddNode]) -> None:
    """Garbage-collect everything but ``keep`` and search a smaller vtree (nodes stay valid)."""
    for node in keep:
        node.ref()
    manager.garbage_collect()
    manager.minimize_limited()


def _compile_sdd(ground: GroundProgram, domain_sizes: dict[str, int], vtree: str) -> CompiledSdd:
    start = time.perf_counter()
    formula = ground.formula
    query_nodes = [node for _, node in ground.queries]
    evidence_nodes = [node for _, node, _ in ground.evidence]
    weights = _Weights(domain_sizes)
    atoms = _reachable_atoms(formula, query_nodes + [n for n in evidence_nodes if n is not None])
    weights.add_atoms(formula, atoms)
    n_vars = max(len(weights.pos), 1)
    manager = SddManager.from_vtree(Vtree(var_count=n_vars, vtree_type=vtree))
    memo: dict[int, SddNode] = {}
    group_of = {v: members for members in weights.groups.values() for v in members}
    constraint = manager.true()
    for members in weights.groups.values():
        constraint = constraint & _exactly_one(manager, members)
    evidence = constraint
    for name, node, value in ground.evidence:
        observed = _compile_node(manager, formula, node, weights.var_of_atom, group_of, memo)
        evidence = evidence & (observed if value else ~observed)
    if ground.evidence and evidence.is_false():
        raise QueryError("the evidence " + ", ".join(f"{n}={str(v).lower()}" for n, _, v in ground.evidence) + " is impossible")
    roots = [_compile_node(manager, formula, node, weights.var_of_atom, group_of, memo) & evidence for node in query_nodes]
    compiled_size = int(sum(r.size() for r in roots))
    minimized = compiled_size > MINIMIZE_ABOVE
    if minimized:
        memo.clear()  # PySDD keeps nodes with live Python wrappers: drop the intermediates first
        constraint = observed = None
        _minimize(manager, roots + ([evidence] if ground.evidence else []))
    literal_rows = {}
    for v in range(1, len(weights.pos) + 1):
        literal_rows[v] = weights.pos[v - 1]
        literal_rows[-v] = weights.neg[v - 1]
    seconds = time.perf_counter() - start
    return CompiledSdd(
        manager=manager,
        roots=roots,
        answers=[name for name, _ in ground.queries],
        evidence_root=evidence if ground.evidence else None,
        literal_rows=literal_rows,
        table=weights.table,
        n_vars=len(weights.pos),
        seconds=seconds,
        stats={
            "sdd_size": int(sum(r.size() for r in roots)),
            "sdd_size_compiled": compiled_size,
            "minimized": minimized,
            "sdd_vars": len(weights.pos),
            "ground_nodes": len(formula),
        },
    )
