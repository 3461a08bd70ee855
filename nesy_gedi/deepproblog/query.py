"""``Query``: a query term, a substitution for its tensor arguments, a target probability (DeepProbLog's API)."""

from __future__ import annotations

from typing import Sequence

from problog.logic import Term, Var


class Query:
    """``Query(addition(p0, p1, 7), {p0: tensor(train(0)), p1: tensor(train(1))})``.

    ``p`` is the target probability of the query and ``output_ind`` the
    argument positions that are outputs (used to enumerate answers when testing).
    """

    def __init__(self, query: Term, substitution: dict | None = None, p: float = 1.0,
                 output_ind: Sequence[int] = (-1,)) -> None:
        self.query = query
        self.substitution = {} if substitution is None else substitution
        self.p = p
        self.output_ind = tuple(output_ind)

    def variable_output(self) -> "Query":
        """The same query with its output arguments replaced by variables ``X_i``."""
        args = list(self.query.args)
        for i in self.output_ind:
            args[i] = Var(f"X_{i % len(args)}")
        return Query(self.query(*args), self.substitution, self.p, self.output_ind)

    def replace_output(self, new_values: Sequence[Term]) -> "Query":
        args = list(self.query.args)
        for i, value in zip(self.output_ind, new_values):
            args[i] = value
        return Query(self.query(*args), self.substitution, self.p, self.output_ind)

    def output_values(self) -> list[Term]:
        return [self.query.args[i] for i in self.output_ind]

    def substitute(self, substitution: dict | None = None) -> "Query":
        """The query with ``substitution`` (default: its own) applied to its term."""
        substitution = self.substitution if substitution is None else substitution
        return Query(self.query.apply_term(substitution), None, self.p, self.output_ind)

    def to_text_query(self) -> str:
        pairs = sorted(([k, v] for k, v in self.substitution.items()), key=lambda kv: str(kv[0]))
        return f"{self.p}::subs({self.query}, {pairs})."

    def __repr__(self) -> str:
        return f"({self.p}::{self.query}, {self.substitution})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Query) and self.query == other.query and self.substitution == other.substitution
                and self.p == other.p and self.output_ind == other.output_ind)

    def __hash__(self) -> int:
        return hash((self.query, tuple(sorted(map(str, self.substitution.items()))), self.p, self.output_ind))
