"""Query templates: queries with their tensor arguments abstracted.

``addition(X, Y, Z)`` with tensor inputs ``X`` and ``Y`` becomes the template
``addition('$in'(0), '$in'(1), Z)``: every batch of images shares it, so it is
grounded and compiled once.  Variables that are not inputs (``Z``) are
*outputs*: the compiled circuit has one root per answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from problog.errors import ProbLogError
from problog.logic import Constant, Term, Var
from problog.program import PrologString

from .errors import InputError, QueryError

PLACEHOLDER = "$in"


def parse_term(text: str) -> Term:
    """Parse one Prolog term, e.g. ``"addition(X, Y, 7)"``."""
    text = text.strip().rstrip(".")
    try:
        statements = list(PrologString(text + "."))
    except ProbLogError as exc:
        raise QueryError(f"cannot parse query {text!r}: {exc}") from None
    if len(statements) != 1 or not isinstance(statements[0], Term) or statements[0].probability is not None:
        raise QueryError(f"query {text!r} must be a single atom such as addition(X, Y, Z)")
    return statements[0]


def _variables(term: Term) -> list[str]:
    found: list[str] = []

    def walk(t: Term) -> None:
        if isinstance(t, Var):
            if t.name not in found:
                found.append(t.name)
        elif isinstance(t, Term):
            for a in t.args:
                walk(a)

    walk(term)
    return found


def to_python(term: Term) -> object:
    """Constants to int/float, lists to tuples, other terms to their text."""
    if isinstance(term, Constant):
        return term.value
    if isinstance(term, Term) and term.functor == "." and term.arity == 2:
        items, t = [], term
        while isinstance(t, Term) and t.functor == "." and t.arity == 2:
            items.append(to_python(t.args[0]))
            t = t.args[1]
        return tuple(items)
    return str(term)


@dataclass(frozen=True)
class QueryTemplate:
    """A query whose input variables are replaced by placeholders ``'$in'(k)``."""

    term: Term
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @classmethod
    def create(cls, query: str | Term, inputs: list[str] | tuple[str, ...]) -> "QueryTemplate":
        term = parse_term(query) if isinstance(query, str) else query
        names = _variables(term)
        missing = [name for name in inputs if name not in names]
        if missing:
            raise InputError(
                f"input(s) {', '.join(missing)} do not appear in query {term}; "
                f"its variables are {', '.join(names) or 'none'}"
            )
        order = [name for name in names if name in inputs]
        substitution = {name: Term(PLACEHOLDER, Constant(k)) for k, name in enumerate(order)}
        outputs = tuple(name for name in names if name not in substitution)
        substitution.update({name: Var(name) for name in outputs})
        return cls(term.apply(substitution), tuple(order), outputs)

    @property
    def key(self) -> str:
        return str(self.term)

    def answer_values(self, answer: Term) -> tuple:
        """Values of the output variables in a ground answer of this template."""
        values: dict[str, object] = {}

        def walk(t: Term, a: Term) -> None:
            if isinstance(t, Var):
                values.setdefault(t.name, to_python(a))
            elif isinstance(t, Term) and t.args:
                for x, y in zip(t.args, a.args):
                    walk(x, y)

        walk(self.term, answer)
        return tuple(values[name] for name in self.outputs)

    def input_name(self, placeholder: Term) -> str:
        if isinstance(placeholder, Term) and placeholder.functor == PLACEHOLDER and placeholder.arity == 1:
            return self.inputs[int(placeholder.args[0].value)]
        raise InputError(
            f"network input {placeholder} in query {self.term} is not a tensor input; "
            "pass it in the inputs of the query"
        )
