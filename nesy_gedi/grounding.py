"""Grounding queries with ProbLog's engine, with errors in the user's terms."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from problog.engine import DefaultEngine, UnknownClause
from problog.errors import ProbLogError
from problog.formula import LogicDAG, LogicFormula
from problog.logic import Term

from .errors import GroundingTimeout, QueryError
from .program import Program, _evidence_of

# Prolog control constructs ProbLog's grounder does not have: a clear "not supported"
# instead of ProbLog's "no clauses found for '!/0'".
NOT_SUPPORTED = {
    "!/0": "the cut '!' (ProbLog has no Prolog cut; library(cut) offers cut/1 on indexed clauses)",
    "->/2": "if-then-else '->' (write two clauses, one with the condition negated by \\+)",
    "*->/2": "soft-cut '*->'",
    "assert/1": "assert/1 (ProbLog programs cannot change their own clauses)",
    "asserta/1": "asserta/1 (ProbLog programs cannot change their own clauses)",
    "assertz/1": "assertz/1 (ProbLog programs cannot change their own clauses)",
    "retract/1": "retract/1 (ProbLog programs cannot change their own clauses)",
}
# Predicates users often expect built in; ProbLog has them in a library.
LIBRARY_OF = {
    **{p: "lists" for p in ("member/2", "append/3", "nth0/3", "nth1/3", "reverse/2", "last/2", "select/3",
                             "sum_list/2", "sumlist/2", "max_list/2", "min_list/2", "list_to_set/2", "memberchk/2",
                             "exclude/3", "include/3", "permutation/2", "msort/2", "max_member/2", "min_member/2")},
    **{p: "apply" for p in ("maplist/2", "maplist/3", "maplist/4", "foldl/4", "foldl/5")},
    **{p: "aggregate" for p in ("aggregate_all/3",)},
}


@dataclass
class GroundProgram:
    """A ground, acyclic formula with the nodes of its queries and evidence.

    ``queries`` holds one ``(answer_term, node)`` per answer of each query:
    node ``0`` is *true*, ``None`` is *false* and a negative node is a negation.
    """

    formula: LogicDAG
    queries: list[tuple[Term, int | None]]
    evidence: list[tuple[Term, int | None, bool]]
    seconds: float


class Grounder:
    """Grounds queries against one program; the prepared clause database is reused."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.engine = DefaultEngine(label_all=True)
        try:
            self.db = self.engine.prepare(program.problog_program)
        except ProbLogError as exc:
            raise QueryError(f"cannot prepare {program.source}: {exc}") from None
        self.queries, self.evidence = list(program.queries), list(program.evidence)
        if program.query_rules:
            self._resolve_query_rules()

    def _resolve_query_rules(self) -> None:
        """Add the answers of ``query/1`` and ``evidence/1,2`` rules, as ProbLog's ``ground_all`` does."""
        db = self.db.extend()
        for rule in self.program.query_rules:
            db.add_statement(rule)
        try:
            for (query,) in self.engine.query(db, Term("query", None)):
                if query not in self.queries:
                    self.queries.append(query)
            found = self.engine.query(db, Term("evidence", None)) + self.engine.query(db, Term("evidence", None, None))
        except ProbLogError as exc:
            raise QueryError(f"cannot resolve the query/evidence rules of {self.program.source}: {exc}") from None
        for args in found:
            atom = _evidence_of(Term("evidence", *args), self.program.source)
            if atom not in self.evidence:
                self.evidence.append(atom)

    def ground(
        self, queries: list[Term], evidence: list[tuple[Term, bool]] | None = None, time_limit: float | None = None
    ) -> GroundProgram:
        """Ground ``queries`` with ``evidence``; ``time_limit`` seconds (main thread only) raise :class:`GroundingTimeout`."""
        start = time.perf_counter()
        evidence = evidence or []
        target = LogicFormula(keep_all=False)
        try:
            with _deadline(time_limit, queries):
                return self._ground(queries, evidence, target, start)
        except BaseException:
            # ProbLog's engine keeps its stack after an error ("Stack not empty" on the next call): start afresh
            self.engine = DefaultEngine(label_all=True)
            raise

    def _ground(self, queries: list[Term], evidence: list[tuple[Term, bool]], target: LogicFormula,
                start: float) -> GroundProgram:
        try:
            for query in queries:
                self.engine.ground(self.db, query, target=target, label=LogicFormula.LABEL_QUERY)
            for atom, value in evidence:
                label = LogicFormula.LABEL_EVIDENCE_POS if value else LogicFormula.LABEL_EVIDENCE_NEG
                self.engine.ground(self.db, atom, target=target, label=label)
        except UnknownClause as exc:
            signature = str(exc.signature).replace("'", "")
            what = NOT_SUPPORTED.get(signature)
            asked = ", ".join(map(str, queries)) + (" (with the evidence)" if evidence else "")
            if what is not None:
                raise QueryError(f"not supported: {what}; needed to ground {asked}") from None
            library = LIBRARY_OF.get(signature)
            hint = f"; {signature} is in ProbLog's library: add ':- use_module(library({library})).'" if library else ""
            raise QueryError(
                f"unknown predicate {signature} in grounding {asked}"
                f" (the program {self.program.source} defines "
                f"{', '.join(sorted(self.program.predicates())) or 'nothing'}){hint}"
            ) from None
        except ProbLogError as exc:
            raise QueryError(f"cannot ground {', '.join(map(str, queries))}: {exc}") from None
        except RecursionError:
            raise QueryError(
                f"grounding {', '.join(map(str, queries))} recursed too deeply; "
                "is the program's recursion bounded for this query?"
            ) from None
        dag = LogicDAG.create_from(target, label_all=True)
        answers = [(name, node) for name, node in dag.queries()]
        # evidence_all(), not labeled(): ProbLog leaves evidence out of labeled() by design
        found = [(name, node, value > 0) for name, node, value in dag.evidence_all() if value != 0]
        return GroundProgram(dag, answers, found, time.perf_counter() - start)


@contextmanager
def _deadline(seconds: float | None, queries: list[Term]) -> Iterator[None]:
    """Raise :class:`GroundingTimeout` after ``seconds`` (a timer signal; only in the main thread)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):  # noqa: ARG001
        raise GroundingTimeout(f"grounding {', '.join(map(str, queries))} took more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
