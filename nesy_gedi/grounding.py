"""Grounding queries with ProbLog's engine, with errors in the user's terms."""

from __future__ import annotations

import time
from dataclasses import dataclass

from problog.engine import DefaultEngine, UnknownClause
from problog.errors import ProbLogError
from problog.formula import LogicDAG, LogicFormula
from problog.logic import Term

from .errors import QueryError
from .program import Program


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

    def ground(
        self, queries: list[Term], evidence: list[tuple[Term, bool]] | None = None
    ) -> GroundProgram:
        start = time.perf_counter()
        evidence = evidence or []
        target = LogicFormula(keep_all=False)
        try:
            for query in queries:
                self.engine.ground(self.db, query, target=target, label=LogicFormula.LABEL_QUERY)
            for atom, value in evidence:
                label = LogicFormula.LABEL_EVIDENCE_POS if value else LogicFormula.LABEL_EVIDENCE_NEG
                self.engine.ground(self.db, atom, target=target, label=label)
        except UnknownClause as exc:
            raise QueryError(
                f"unknown predicate in query {', '.join(map(str, queries))}: {exc}"
                f" (the program {self.program.source} defines "
                f"{', '.join(sorted(self.program.predicates())) or 'nothing'})"
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
