"""Loading ProbLog programs with neural predicates.

A program is ordinary ProbLog plus two kinds of neural annotations:

* ``nn(Net, [X1,..,Xk], Y, [d1,..,dn]) :: p(..., Y, ...) [:- Body].``
  a *neural annotated disjunction*: network ``Net`` applied to the inputs gives
  a distribution over the domain values ``d1..dn`` of ``Y``.  Integer ranges
  may be written ``[0..9]``.
* ``nn(Net, [X1,..,Xk]) :: p(...) [:- Body].`` a *neural fact*: the network
  gives the probability (through a sigmoid of its single logit) that it holds.
* ``nn(Net, [X1,..,Xk], Y) :: p(..., Y, ...) [:- Body].`` a *tensor network*
  (DeepProbLog's deterministic ``nn/3``): ``p`` holds with probability 1 and
  ``Y`` is the term ``'$tensor'(Net, [X1,..,Xk])``, which stands for the
  network's output; other networks take it as input (e.g. an encoder of a
  sentence read by several classifiers).

Both are rewritten into plain ProbLog whose probability labels are symbolic
terms ``'$nn'(Net, Inputs, I)`` (index ``I`` into the domain) and
``'$nnf'(Net, Inputs)``; the compiled circuits later turn those labels into
columns of the networks' output.  ProbLog's learnable labels ``t(P)``/``t(_)``
become ``'$t'(I)``, parameter ``I`` of :attr:`Program.learnable` (see
:mod:`nesy_gedi.learnable`).

``:- consult(File).`` and ``:- use_module(File).`` are followed here, relative
to the including file (as ProbLog does), so neural annotations, queries and
evidence of included files count; ``use_module(library(L))`` is left to
ProbLog.  ``query/1`` and ``evidence/1,2`` facts are collected; *rules* for
them (``query(p(X)) :- a(X).``) are kept for the grounder to resolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from problog.errors import ProbLogError
from problog.logic import And, AnnotatedDisjunction, Clause, Constant, Or, Term, Var, term2list
from problog.program import PrologString, SimpleProgram

from .errors import ProgramError
from .learnable import LearnableGroup, LearnableLabel, start_value

NN_AD = "$nn"
NN_FACT = "$nnf"
NN_TENSOR = "$tensor"  # '$tensor'(Net, Inputs): the output of a tensor network (nn/3) on Inputs
LEARNABLE = "$t"  # '$t'(I): learnable probability I of the program
TOP_K_PREFIX = "$k_"  # the alternatives of a neural disjunction whose values are chosen while grounding
TOP_K_MEMBER = "$k_member"


def top_k_selector(network: str) -> str:
    """The grounding-time predicate ``sel(Inputs, Chosen)`` that names the values of ``network`` to explore
    (``_nocache_``: ProbLog must call it again for each grounding)."""
    return f"_nocache_topk_{network}"

_RANGE = re.compile(r"\[\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*\]")


@dataclass(frozen=True)
class NeuralPredicate:
    """One ``nn/4``, ``nn/2`` or ``nn/3`` declaration of a program."""

    network: str
    signature: str  # e.g. "digit/2"
    n_inputs: int
    domain: tuple[Term, ...] | None  # None for a neural fact or a tensor network
    is_tensor: bool = False  # nn/3: the network's output is a tensor term, no probability

    @property
    def is_fact(self) -> bool:
        return self.domain is None and not self.is_tensor


class _Subst(dict):
    """Substitution that leaves unmapped variables as they are."""

    def __missing__(self, key: str) -> Var:
        return Var(key)


def _expand_ranges(text: str) -> str:
    """Rewrite ``[a..b]`` integer ranges into explicit Prolog lists."""

    def expand(match: re.Match) -> str:
        lo, hi = int(match.group(1)), int(match.group(2))
        if hi < lo:
            raise ProgramError(f"empty range [{lo}..{hi}] in program")
        return "[" + ",".join(str(i) for i in range(lo, hi + 1)) + "]"

    return _RANGE.sub(expand, text)


class Program:
    """A parsed ProbLog program whose neural annotations are made symbolic.

    Use :meth:`from_file` or :meth:`from_string`.  ``problog_program`` is the
    rewritten program ready for ProbLog's engine, ``neural`` lists the neural
    declarations and ``networks`` the network names they use.
    """

    def __init__(self, text: str, source: str = "<string>", top_k: Mapping[str, int] | None = None) -> None:
        self.source = source
        self.text = text
        self.top_k = dict(top_k or {})  # network -> k: its values are chosen during grounding (see top_k.py)
        self.neural: list[NeuralPredicate] = []
        self.problog_program = SimpleProgram()
        self.queries: list[Term] = []
        self.evidence: list[tuple[Term, bool]] = []
        self.query_rules: list[Clause] = []  # query/1 and evidence/1,2 defined by rules
        self._top_k_member = False
        self.learnable: list[LearnableLabel] = []  # t(P) / t(_) labels, parameter I = learnable[I]
        self.learnable_groups: list[LearnableGroup] = []  # per statement with t labels: its members, fixed mass
        self._consulted: set[Path] = set()
        if source != "<string>":
            self._consulted.add(Path(source).resolve())
        self._parse(_expand_ranges(text), source)

    @classmethod
    def from_file(cls, path: str | Path, top_k: Mapping[str, int] | None = None) -> "Program":
        path = Path(path)
        if not path.exists():
            raise ProgramError(f"program file not found: {path}")
        if not path.is_file():
            raise ProgramError(f"{path} is not a file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ProgramError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        except OSError as exc:
            raise ProgramError(f"cannot read {path}: {exc.strerror}") from None
        return cls(text, source=str(path), top_k=top_k)

    @classmethod
    def from_string(cls, text: str, top_k: Mapping[str, int] | None = None) -> "Program":
        return cls(text, top_k=top_k)

    @property
    def networks(self) -> set[str]:
        return {n.network for n in self.neural}

    def _where(self, parsed: PrologString, statement: Term, source: str) -> str:
        location = getattr(statement, "location", None)
        try:
            line_col = parsed.lineno(location) if location is not None else None
        except Exception:  # pragma: no cover - location info is best effort
            line_col = None
        if line_col:
            return f"{source}:{line_col[-2]}:{line_col[-1]}"
        return source

    def _parse(self, text: str, source: str) -> None:
        try:
            parsed = PrologString(text)
            statements = list(parsed)
        except ProbLogError as exc:
            raise ProgramError(f"cannot parse {source}: {exc}") from None
        for statement in statements:
            where = self._where(parsed, statement, source)
            try:
                self._add(statement, where, source)
            except ProgramError:
                raise
            except ProbLogError as exc:
                raise ProgramError(f"{where}: {exc}") from None

    def _add(self, statement: Term, where: str, source: str) -> None:
        if isinstance(statement, Clause):
            head, body = statement.head, statement.body
        else:
            head, body = statement, None
        if body is not None and head.functor == "_directive" and self._directive(body, where, source):
            return
        if _has_learnable(head):
            statement = self._learnable(statement, where)
            if isinstance(statement, Clause):
                head, body = statement.head, statement.body
            else:
                head, body = statement, None
        label = getattr(head, "probability", None)
        if isinstance(label, Term) and label.functor == "nn":
            self._add_neural(head, body, label, where)
            return
        if body is None and type(head) is Term and head.functor == "query" and head.arity == 1:
            self.queries.append(head.args[0])
        elif body is None and type(head) is Term and head.functor == "evidence":
            self.evidence.append(_evidence_of(head, where))
        elif body is not None and (head.functor, head.arity) in {("query", 1), ("evidence", 1), ("evidence", 2)}:
            self.query_rules.append(statement)
        else:
            self.problog_program.add_statement(statement)

    def _directive(self, body: Term, where: str, source: str) -> bool:
        """Follow ``consult/1`` and file ``use_module/1``; ``True`` when handled here."""
        if body.arity != 1 or body.functor not in ("consult", "use_module"):
            return False
        target = body.args[0]
        if body.functor == "use_module" and target.functor == "library":
            return False  # ProbLog's own libraries
        try:
            files = term2list(target, deep=False) if target.functor == "." else [target]
        except Exception:
            raise ProgramError(f"{where}: cannot read the file list of {body}") from None
        base = Path(source).parent if source != "<string>" else Path.cwd()
        for file in files:
            self._consult(base, file, where)
        return True

    def _consult(self, base: Path, file: Term, where: str) -> None:
        name = str(file.value if isinstance(file, Constant) else file).strip("'\"")
        candidates = [base / name, base / (name + ".pl")]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise ProgramError(f"{where}: consulted file not found: {candidates[0]} (nor {candidates[1].name})")
        path = path.resolve()
        if path in self._consulted:  # a file is loaded once, as in ProbLog
            return
        self._consulted.add(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProgramError(f"{where}: cannot read consulted file {path}: {exc}") from None
        self._parse(_expand_ranges(text), str(path))

    def _add_neural(self, head: Term, body: Term | None, label: Term, where: str) -> None:
        if label.arity not in (2, 3, 4):
            raise ProgramError(
                f"{where}: neural annotation must be nn(Net, Inputs, Out, Domain), nn(Net, Inputs) or "
                f"nn(Net, Inputs, Out), got {label}"
            )
        net, inputs = label.args[0], label.args[1]
        if not (isinstance(net, Term) and net.arity == 0 and not isinstance(net, Var)):
            raise ProgramError(f"{where}: network name must be an atom, got {net}")
        try:
            input_list = term2list(inputs, deep=False)
        except Exception:
            raise ProgramError(f"{where}: inputs of {label} must be a list, got {inputs}") from None
        if not input_list:
            raise ProgramError(f"{where}: {label} has no inputs")
        signature = f"{head.functor}/{head.arity}"
        if any(n.network == str(net) and n.is_tensor != (label.arity == 3) for n in self.neural):
            raise ProgramError(f"{where}: network {net} is declared both with nn/3 (a tensor output) and with a "
                               "domain or as a fact; a network is one or the other")
        body = body if body is not None else Term("true")
        if label.arity == 2:
            self.neural.append(NeuralPredicate(str(net), signature, len(input_list), None))
            fact = head.with_probability(Term(NN_FACT, net, inputs))
            self.problog_program.add_clause(Clause(fact, body) if body != Term("true") else fact)
            return
        out = label.args[2]
        if not isinstance(out, Var) or out not in head.args:
            raise ProgramError(
                f"{where}: output {out} of {label} must be a variable that appears in {head}"
            )
        if label.arity == 3:
            self.neural.append(NeuralPredicate(str(net), signature, len(input_list), None, is_tensor=True))
            fact = head.with_probability(None).apply(_Subst({out.name: Term(NN_TENSOR, net, inputs)}))
            self.problog_program.add_clause(Clause(fact, body) if body != Term("true") else fact)
            return
        domain = label.args[3]
        try:
            values = term2list(domain, deep=False)
        except Exception:
            raise ProgramError(f"{where}: domain of {label} must be a list, got {domain}") from None
        if not values:
            raise ProgramError(f"{where}: domain of {label} is empty")
        values = [Constant(v) if isinstance(v, (int, float)) else v for v in values]
        if len(set(map(str, values))) != len(values):
            raise ProgramError(f"{where}: domain of {label} repeats a value")
        self.neural.append(NeuralPredicate(str(net), signature, len(input_list), tuple(values)))
        chosen = str(net) in self.top_k
        alternative = Term(TOP_K_PREFIX + head.functor, *head.args) if chosen else head.with_probability(None)
        heads = []
        for index, value in enumerate(values):
            choice = alternative.apply(_Subst({out.name: value}))
            heads.append(choice.with_probability(Term(NN_AD, net, inputs, Constant(index))))
        self.problog_program.add_clause(AnnotatedDisjunction(heads, body))
        if chosen:  # p(..Y..) :- '$topk_net'(Inputs, Chosen), '$k_member'(Y, Chosen), '$k_p'(..Y..).
            picked = Var("K_Chosen_")
            if not self._top_k_member:
                self._top_k_member = True
                rest, first = Var("T"), Var("X")
                self.problog_program.add_clause(Term(TOP_K_MEMBER, first, Term(".", first, Var("_"))))
                self.problog_program.add_clause(Clause(Term(TOP_K_MEMBER, first, Term(".", Var("_"), rest)),
                                                       Term(TOP_K_MEMBER, first, rest)))
            self.problog_program.add_clause(Clause(head.with_probability(None), And(
                Term(top_k_selector(str(net)), inputs, picked), And(Term(TOP_K_MEMBER, out, picked), alternative))))

    def _learnable(self, statement: Term, where: str) -> Term:
        """``statement`` with each ``t(P)``/``t(_)`` label made ``'$t'(I)``, its parameters recorded."""
        head = statement.head if isinstance(statement, Clause) else statement
        heads = _heads(head)
        members, fixed = [], 0.0
        relabelled = []
        for h in heads:
            label = h.probability
            if _is_learnable(label):
                if label.arity != 1:
                    raise ProgramError(f"{where}: not supported: {label} (a learnable label takes one argument, "
                                       "t(P) or t(_)); one parameter per grounding is not supported")
                index = len(self.learnable)
                self.learnable.append(LearnableLabel(index, start_value(label.args[0], where), where,
                                                     f"{label}::{h.with_probability(None)}"))
                members.append(index)
                h = h.with_probability(Term(LEARNABLE, Constant(index)))
            else:
                fixed += _fixed_probability(label, where)
            relabelled.append(h)
        self.learnable_groups.append(LearnableGroup(tuple(members), fixed, len(heads)))
        if isinstance(statement, AnnotatedDisjunction):
            return AnnotatedDisjunction(relabelled, statement.body)
        if isinstance(head, Or):
            return Or.from_list(relabelled)
        if isinstance(statement, Clause):
            return Clause(relabelled[0], statement.body)
        return relabelled[0]

    def neural_predicate(self, network: str) -> NeuralPredicate:
        for n in self.neural:
            if n.network == network:
                return n
        raise KeyError(network)

    def predicates(self) -> set[str]:
        """Signatures ``name/arity`` of every predicate defined by the program."""
        found: set[str] = set()
        for statement in self.problog_program:
            heads = statement.heads if isinstance(statement, AnnotatedDisjunction) else [
                statement.head if isinstance(statement, Clause) else statement
            ]
            for head in heads:
                found.add(f"{head.functor}/{head.arity}")
        return found


def _heads(head: Term) -> list[Term]:
    if isinstance(head, Or):
        return _heads(head.op1) + _heads(head.op2)
    if isinstance(head, AnnotatedDisjunction):
        return list(head.heads)
    return [head]


def _is_learnable(label) -> bool:
    return isinstance(label, Term) and label.functor == "t"


def _has_learnable(head: Term) -> bool:
    return any(_is_learnable(getattr(h, "probability", None)) for h in _heads(head))


def _fixed_probability(label, where: str) -> float:
    if label is None:
        return 0.0
    try:
        return float(label.compute_value())
    except Exception:
        raise ProgramError(f"{where}: learnable and non-numeric labels ({label}) in one disjunction") from None
def _evidence_of(term: Term, where: str) -> tuple[Term, bool]:
    if term.arity == 1:
        atom = term.args[0]
        if atom.functor == "\\+":
            return atom.args[0], False
        return atom, True
    if term.arity == 2:
        return term.args[0], str(term.args[1]) == "true"
    raise ProgramError(f"{where}: malformed evidence {term}")
