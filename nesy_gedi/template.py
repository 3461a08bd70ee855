"""Query templates: queries with their tensor arguments abstracted.

``addition(X, Y, Z)`` with tensor inputs ``X`` and ``Y`` becomes the template
``addition('$in'(0), '$in'(1), Z)``: every batch of images shares it, so it is
grounded and compiled once.  Variables that are not inputs (``Z``) are
*outputs*: the compiled circuit has one root per answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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


def _is_tensor(term: Term) -> bool:
    return isinstance(term, Term) and not isinstance(term, (Var, Constant)) and term.functor == "tensor" and term.arity == 1


def _tensor_terms(term: Term) -> list[Term]:
    found: list[Term] = []

    def walk(t: Term) -> None:
        if _is_tensor(t):
            if t not in found:
                found.append(t)
        elif isinstance(t, Term) and not isinstance(t, Var):
            for a in t.args:
                walk(a)

    walk(term)
    return found


def _placeholder(order: list[str], name: str) -> Term:
    if name not in order:
        order.append(name)
    return Term(PLACEHOLDER, Constant(order.index(name)))


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


class _Renaming(dict):
    """Substitution that leaves unmapped variables as they are."""

    def __missing__(self, key: str) -> Var:
        return Var(key)


@dataclass(frozen=True)
class QueryTemplate:
    """A query whose input variables are replaced by placeholders ``'$in'(k)``."""

    term: Term
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    evidence: tuple[tuple[Term, bool], ...] = ()

    @classmethod
    def create(
        cls,
        query: str | Term,
        inputs: list[str] | tuple[str, ...],
        evidence: list[tuple[str | Term, bool]] | tuple = (),
    ) -> "QueryTemplate":
        """Abstract the tensor inputs of ``query`` (and of per-query ``evidence``).

        An input is named either by a query variable (``X``) or by a DeepProbLog
        style tensor term of the query (``tensor(a)``, named ``"tensor(a)"`` or ``"a"``).
        ``evidence`` holds ``(atom, value)`` pairs that condition this query only;
        they may use the same inputs but no other variables.
        """
        term = parse_term(query) if isinstance(query, str) else query
        observed = [(parse_term(a) if isinstance(a, str) else a, bool(v)) for a, v in evidence]
        both = Term("$q", term, *(a for a, _ in observed))
        names = _variables(both)
        tensors = _tensor_terms(both)
        known = set(names) | {str(t) for t in tensors} | {str(t.args[0]) for t in tensors}
        missing = [name for name in inputs if name not in known]
        if missing:
            raise InputError(
                f"input(s) {', '.join(missing)} do not appear in query {term}; "
                f"its variables and tensor terms are {', '.join(names + [str(t) for t in tensors]) or 'none'}"
            )
        order: list[str] = []
        outputs: list[str] = []

        def abstract(t: Term) -> Term:
            if isinstance(t, Var):
                if t.name in inputs:
                    return _placeholder(order, t.name)
                if t.name not in outputs:
                    outputs.append(t.name)
                return t
            if _is_tensor(t):
                for name in (str(t), str(t.args[0])):
                    if name in inputs:
                        return _placeholder(order, name)
                raise InputError(f"{t} in query {term} has no tensor among the inputs ({', '.join(inputs) or 'none'})")
            if isinstance(t, Term) and t.args:
                return t.with_args(*(abstract(a) for a in t.args))
            return t

        abstracted = abstract(term)
        query_outputs = tuple(outputs)
        observed = tuple((abstract(a), v) for a, v in observed)
        if len(outputs) != len(query_outputs):
            free = ", ".join(outputs[len(query_outputs):])
            raise InputError(f"evidence of query {term} has variable(s) {free} that are not inputs; evidence must be ground")
        return cls(abstracted, tuple(order), query_outputs, observed)

    @cached_property
    def key(self) -> str:
        """Canonical text: output variables renamed by position, so ``p(X)`` and ``p(Y)`` share a circuit."""
        renamed = _Renaming({name: Var(f"_O{i}") for i, name in enumerate(self.outputs) if name != "_"})
        text = str(self.term.apply(renamed))
        if self.evidence:
            text += " | " + ", ".join(f"{a}={'true' if v else 'false'}" for a, v in self.evidence)
        return text

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
