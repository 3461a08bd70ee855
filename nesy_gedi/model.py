"""NeSyModel: a program plus its networks, evaluating batched queries exactly."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from problog.logic import Constant, Term, Var, term2list
from torch import nn

from .compiled import CompiledQuery
from .errors import InputError, NesyError, NoProofError, UnknownNetworkError
from .grounding import Grounder
from .learnable import LearnableProbabilities
from .program import NN_TENSOR, Program
from .template import PLACEHOLDER, QueryTemplate

Network = Callable[..., torch.Tensor]
Evidence = Sequence[tuple[str, bool]]  # (atom, observed value) pairs
TEMPLATE_CACHE_SIZE = 10_000  # parsed query strings kept (LRU); compiled circuits are kept per template


@dataclass
class QueryResult:
    """Log-probabilities of every answer of a query for every batch element.

    ``log_probs[b, i]`` is ``log P(answer i | inputs of b)``; ``logits[net]``
    holds the raw outputs of each network for all of its calls in the batch
    (``[calls * batch, K]``), e.g. for a regulariser on the same images.  Its
    rows are call-major: row ``c * batch + b`` is call ``c`` on element ``b``,
    and ``call_inputs[net][c]`` names the input tensors of call ``c`` (the
    query's variables or tensor terms), so :meth:`network_inputs` gives the
    inputs in the same row order.
    """

    answers: list[tuple]
    log_probs: torch.Tensor
    logits: dict[str, torch.Tensor]
    call_inputs: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def network_inputs(self, network: str, inputs: Mapping[str, torch.Tensor], position: int = 0) -> torch.Tensor:
        """The inputs (argument ``position``) of every call of ``network``, row-aligned with ``logits[network]``."""
        if network not in self.call_inputs:
            raise InputError(f"the query calls no network {network!r}; it calls {', '.join(self.call_inputs) or 'none'}")
        names = [names[position] for names in self.call_inputs[network]]
        missing = sorted({n for n in names if n not in inputs})
        if missing:
            raise InputError(f"network {network} reads {', '.join(missing)} (a number, a constant or an nn/3 "
                             "network's output), not only query inputs; its inputs cannot be listed as tensors")
        return torch.cat([inputs[name] for name in names], dim=0)

    def probs(self) -> torch.Tensor:
        return self.log_probs.exp()

    def select(self, answers: torch.Tensor) -> torch.Tensor:
        """``[batch]`` log-probabilities of one answer index per element."""
        return self.log_probs.gather(1, answers.view(-1, 1).to(self.log_probs.device)).squeeze(1)


class NeSyModel(nn.Module):
    """A ProbLog program with neural predicates, evaluated as batched tensor circuits.

    ``networks`` maps each network name used by the program's ``nn`` annotations
    to a callable (usually an ``nn.Module``) from input tensors ``[batch, ...]``
    to logits: ``[batch, K]`` for a K-valued annotated disjunction (softmax is
    applied here), ``[batch]`` or ``[batch, 1]`` for a neural fact (sigmoid), any ``[batch, ...]`` tensor for a
    tensor network (``nn/3``), which other networks then receive.  A network called on a number of the program gets
    a ``[batch]`` tensor; on another constant (an atom, a string), a list of ``batch`` copies of the ProbLog term.

    A program with learnable probabilities (``t(P)::a``, ``t(_)::a``) gets :attr:`learnable`, a module whose
    logits any torch optimizer trains (:mod:`nesy_gedi.learnable`; ``model.learnable.named()`` reads them);
    ``learnable_seed`` draws the ``t(_)`` starts.  Otherwise ``learnable`` is None.
    """

    def __init__(self, program: Program | str | Path, networks: Mapping[str, Network], learnable_seed: int = 0):
        super().__init__()
        if isinstance(program, Path) or (isinstance(program, str) and program.endswith(".pl")):
            program = Program.from_file(program)
        elif isinstance(program, str):
            program = Program.from_string(program)
        self.program = program
        missing = sorted(program.networks - set(networks))
        if missing:
            raise UnknownNetworkError(
                f"{program.source} uses network(s) {', '.join(missing)} but the model was given "
                f"{', '.join(sorted(networks)) or 'no networks'}"
            )
        self.networks = nn.ModuleDict({k: v for k, v in networks.items() if isinstance(v, nn.Module)})
        self._functions = {k: v for k, v in networks.items() if not isinstance(v, nn.Module)}
        self.domain_sizes: dict[str, int] = {}
        for decl in program.neural:
            if decl.domain is None:
                continue
            known = self.domain_sizes.setdefault(decl.network, len(decl.domain))
            if known != len(decl.domain):
                raise UnknownNetworkError(
                    f"network {decl.network} is used with domains of {known} and {len(decl.domain)} values"
                )
        self.learnable = (LearnableProbabilities(program.learnable, program.learnable_groups, learnable_seed)
                          if program.learnable else None)
        self.grounder = Grounder(program)
        self._compiled: dict[str, CompiledQuery] = {}
        self._templates: OrderedDict[tuple, QueryTemplate] = OrderedDict()

    def _device_of(self, network: str) -> torch.device:
        module = self.networks[network] if network in self.networks else None
        parameter = next(iter(module.parameters()), None) if module is not None else None
        return parameter.device if parameter is not None else torch.device("cpu")

    def network(self, name: str) -> Network:
        if name in self.networks:
            return self.networks[name]
        return self._functions[name]

    def compile(self, query: str, inputs: list[str] | tuple[str, ...], evidence: Evidence = ()) -> CompiledQuery:
        """Ground and compile ``query`` once per template (cached)."""
        return self._compile(self._template(query, tuple(inputs), evidence))

    def _template(self, query: str, inputs: tuple[str, ...], evidence: Evidence = ()) -> QueryTemplate:
        """Parse and abstract ``query`` (cached: training repeats the same query strings)."""
        evidence = tuple((str(a), bool(v)) for a, v in (evidence or ()))
        key = (query, inputs, evidence)
        template = self._templates.get(key)
        if template is None:
            template = QueryTemplate.create(query, inputs, evidence)
            self._templates[key] = template
            if len(self._templates) > TEMPLATE_CACHE_SIZE:  # least recently used first
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(key)
        return template

    def compile_template(self, template: QueryTemplate, time_limit: float | None = None) -> CompiledQuery:
        """Compile (or fetch) a template; ``time_limit`` seconds bound its grounding (see :class:`GroundingTimeout`)."""
        return self._compile(template, time_limit)

    def _compile(self, template: QueryTemplate, time_limit: float | None = None) -> CompiledQuery:
        if template.key not in self._compiled:
            evidence = self.grounder.evidence + list(template.evidence) if template.evidence else None
            self._compiled[template.key] = CompiledQuery.build(
                self.program, self.grounder, template, self.domain_sizes, evidence, time_limit
            )
        return self._compiled[template.key]

    def compile_templates(self, templates: Sequence[QueryTemplate], workers: int = 1,
                          time_limit: float | None = None) -> dict[str, CompiledQuery | NesyError]:
        """Compile (or fetch) each distinct template, in ``workers`` processes when more than one is new.

        Returns per template key its circuit, or the :class:`NesyError` compiling it raised (e.g.
        :class:`NoProofError`), so that one query without proof does not stop the others.
        """
        distinct = list({t.key: t for t in templates}.values())
        out: dict[str, CompiledQuery | NesyError] = {}
        new = [t for t in distinct if t.key not in self._compiled]
        if workers > 1 and len(new) > 1 and not self.program.top_k:  # top-k choices call this process's networks
            from .compile_pool import compile_in_pool

            for template, built in zip(new, compile_in_pool(self.program, self.domain_sizes, new, workers,
                                                             time_limit)):
                if isinstance(built, CompiledQuery):
                    self._compiled[template.key] = built
                out[template.key] = built
        for template in distinct:
            if template.key not in out:
                try:
                    out[template.key] = self._compile(template, time_limit)
                except NesyError as exc:
                    out[template.key] = exc
        return out

    @property
    def compiled(self) -> dict[str, CompiledQuery]:
        return dict(self._compiled)

    def forward(self, query: str, inputs: Mapping[str, torch.Tensor], evidence: Evidence = ()) -> QueryResult:
        """Evaluate ``query`` for a batch.

        ``inputs`` maps query variables (``X``) or tensor terms of the query
        (``tensor(a)`` as ``"a"`` or ``"tensor(a)"``) to ``[batch, ...]`` tensors.
        ``evidence`` (``[("digit(X, 3)", True), ...]``) conditions this query on
        atoms that may use the same inputs, next to the program's own evidence.
        """
        return self.evaluate(self._template(query, tuple(inputs), evidence), inputs)

    def evaluate(self, template: QueryTemplate, inputs: Mapping[str, torch.Tensor]) -> QueryResult:
        """Evaluate a query template on a batch; ``inputs`` maps ``template.inputs`` to ``[batch, ...]`` tensors."""
        query = str(template.term)
        compiled = self._compile(template)
        batch = _batch_size(inputs, query)
        outputs, layout, logits, call_inputs = self._network_outputs(compiled, template, inputs, batch)
        if outputs is not None:
            device, dtype = outputs.device, outputs.dtype
        else:
            reference = next(iter(inputs.values()), None)
            device = reference.device if reference is not None else torch.device("cpu")
            dtype = torch.float64
        learnable = self.learnable() if self.learnable is not None else None
        source, gather = compiled.table.sources(outputs, layout, batch, device, dtype, learnable)
        roots = compiled.circuit(source, gather)
        if compiled.conditional:
            impossible = torch.isneginf(roots[:, -1]).nonzero().flatten().tolist()
            if impossible:
                raise InputError(
                    f"the evidence of {query} is impossible (probability 0) for batch element(s) "
                    f"{', '.join(map(str, impossible[:10]))}{' ...' if len(impossible) > 10 else ''}: "
                    "the conditional probability is undefined"
                )
            roots = roots[:, :-1] - roots[:, -1:]
        return QueryResult(compiled.answers, roots, logits, call_inputs)

    def log_prob(
        self, query: str, inputs: Mapping[str, torch.Tensor], answers: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[batch]`` log-probabilities of one answer per element (or of the only answer).

        ``answers`` holds, per batch element, an index into the compiled answers;
        :meth:`answer_indices` converts answer values into such indices.
        """
        result = self.forward(query, inputs)
        if answers is None:
            if result.log_probs.shape[1] != 1:
                raise InputError(
                    f"query {query} has {result.log_probs.shape[1]} answers; pass which one per element"
                )
            return result.log_probs[:, 0]
        return result.select(answers)

    def answer_indices(self, query: str, inputs: tuple[str, ...], values) -> torch.Tensor:
        """Indices of answer values (e.g. sums) in the compiled answers of ``query``."""
        lookup = self.compile(query, inputs).answer_index
        indices = []
        for example, v in enumerate(values):
            key = v if isinstance(v, tuple) else (v,)
            if key not in lookup:
                known = ", ".join(str(a[0] if len(a) == 1 else a) for a in list(lookup)[:20])
                raise InputError(
                    f"example {example}: {query} has no proof for answer {v}, so it cannot be a training "
                    f"target (answers with a proof: {known}{' ...' if len(lookup) > 20 else ''})"
                )
            indices.append(lookup[key])
        return torch.tensor(indices, dtype=torch.long)

    def probabilities(self, query: str) -> dict[tuple, float]:
        """Exact probability of every answer of a query without tensor inputs.

        A ground query without proof has probability 0 (``{(): 0.0}``); a
        query with variables and no proof has no answers (``{}``; ProbLog and
        :meth:`program_probabilities` report it once with 0).
        """
        return {values: p for values, _, p in self._answers_without_inputs(query)}

    def program_probabilities(self, workers: int = 1) -> list[tuple[Term, float]]:
        """Every query of the program (``query/1`` facts and rules) with its answers, as ProbLog reports them.

        A query with variables and no answer is reported once, as written, with probability 0.  Anonymous
        variables (``query(p(_))``) are answered like named ones: once per grounding.  ``workers`` > 1 grounds
        and compiles the distinct queries in that many processes first.
        """
        queries = [str(_name_anonymous(query)) for query in self.grounder.queries]
        if workers > 1:
            self.compile_templates([self._template(q, ()) for q in queries], workers)
        found: list[tuple[Term, float]] = []
        for query in self.grounder.queries:
            answers = self.answer_probabilities(str(_name_anonymous(query)))
            found.extend(answers if answers else [(query, 0.0)])
        return found

    def answer_probabilities(self, query: str) -> list[tuple[Term, float]]:
        """``(ground answer term, probability)`` for every answer of a query without tensor inputs."""
        return [(term, p) for _, term, p in self._answers_without_inputs(query)]

    def _answers_without_inputs(self, query: str) -> list[tuple[tuple, Term, float]]:
        """``(answer values, ground term, probability)`` per answer; a ground query without proof has one, with 0."""
        try:
            compiled = self.compile(query, ())
        except NoProofError:
            if self.grounder.evidence:  # P(query | evidence) = 0 only if the evidence is possible
                self.forward("true", {})
            template = self._template(query, ())
            return [] if template.outputs else [((), template.term, 0.0)]
        probs = self.forward(query, {}).log_probs[0].exp().tolist()
        return list(zip(compiled.answers, compiled.answer_terms, probs))

    def input_resolver(self, batch: int = 1, device: torch.device | None = None) -> Callable[[Term, str], object]:
        """``resolve(term, network)``: what ``network`` receives for a ground input term of the program (a number,
        a constant, an ``nn/3`` network's output), for ``batch`` elements; see :class:`_InputResolver`."""
        return _InputResolver(self, None, {}, batch, device)

    def _network_outputs(
        self, compiled: CompiledQuery, template: QueryTemplate, inputs: Mapping[str, torch.Tensor], batch: int
    ) -> tuple[torch.Tensor | None, tuple[tuple[int, int], ...], dict[str, torch.Tensor],
               dict[str, list[tuple[str, ...]]]]:
        """One forward per network over all its calls.

        Returns the log-probabilities of all calls as one flat tensor (each
        network's ``[calls * batch, width]`` block, row-major, one after the
        other), the layout of each call in it (``(offset, width)``: element
        ``offset + b * width + c`` is column ``c`` for batch element ``b``), the
        raw logits and the input names per network.
        """
        calls = compiled.table.calls
        by_network: dict[str, list[int]] = {}
        for i, call in enumerate(calls):
            by_network.setdefault(call.network, []).append(i)
        blocks: list[torch.Tensor] = []
        layout = [(0, 0)] * len(calls)
        size = 0
        logits_of: dict[str, torch.Tensor] = {}
        names_of: dict[str, list[tuple[str, ...]]] = {}
        device = next((t.device for t in inputs.values()), None)
        resolve = _InputResolver(self, template, inputs, batch, device)
        for name, indices in by_network.items():
            arity = len(calls[indices[0]].inputs)
            names_of[name] = [tuple(_input_name(template, calls[i].inputs[j]) for j in range(arity)) for i in indices]
            args = [_concat([resolve(calls[i].inputs[j], name) for i in indices]) for j in range(arity)]
            logits = _call(self.network(name), name, args)
            is_fact = calls[indices[0]].is_fact
            expected = len(indices) * batch
            if is_fact:
                if logits.dim() == 2 and logits.shape[1] == 1:
                    logits = logits[:, 0]
                if logits.shape != (expected,):
                    raise InputError(
                        f"network {name} (a neural fact) must return [batch] or [batch, 1] logits; "
                        f"got {tuple(logits.shape)} for {expected} inputs"
                    )
                per_call = torch.stack([nn.functional.logsigmoid(logits), nn.functional.logsigmoid(-logits)], 1)
            else:
                k = self.domain_sizes[name]
                if logits.dim() != 2 or logits.shape != (expected, k):
                    raise InputError(
                        f"network {name} must return logits of shape [batch, {k}] (one per domain value); "
                        f"got {tuple(logits.shape)} for {expected} inputs"
                    )
                per_call = torch.log_softmax(logits, dim=1)
            logits_of[name] = logits
            width = per_call.shape[1]
            blocks.append(per_call.reshape(-1))
            for position, i in enumerate(indices):
                layout[i] = (size + position * batch * width, width)
            size += expected * width
        outputs = (blocks[0] if len(blocks) == 1 else torch.cat(blocks)) if blocks else None
        return outputs, tuple(layout), logits_of, names_of


def _input_name(template: QueryTemplate, term: Term) -> str:
    """The query input a network reads, or the term itself (a number, a constant, a tensor network's output)."""
    if isinstance(term, Term) and term.functor == PLACEHOLDER:
        return template.input_name(term)
    return str(term)


NetworkInput = torch.Tensor | list  # a [batch, ...] tensor, or batch copies of a constant term


class _InputResolver:
    """The value a network call receives for one input term, for every batch element:

    * a query input (a placeholder of the template): its ``[batch, ...]`` tensor;
    * a number of the program (``swap(4, 2, Z)``): a ``[batch]`` tensor, long for an integer;
    * ``'$tensor'(Net, Inputs)``, the output of a tensor network (``nn/3``): that network on its own resolved
      inputs, computed once per evaluation;
    * any other ground term (an atom, a string): a list of ``batch`` copies of the ProbLog term.
    """

    def __init__(self, model: "NeSyModel", template: QueryTemplate | None, inputs: Mapping[str, torch.Tensor],
                 batch: int, device: torch.device | None) -> None:
        self.model, self.template, self.inputs, self.batch, self.device = model, template, inputs, batch, device
        self.tensors: dict[str, torch.Tensor] = {}

    def __call__(self, term: Term, network: str) -> NetworkInput:
        if isinstance(term, Term) and term.functor == PLACEHOLDER:
            if self.template is None:
                raise InputError(f"network {network} is called on {term}, a query input, outside a query; "
                                 "evaluate the query instead")
            return self.inputs[self.template.input_name(term)]
        if isinstance(term, Constant) and isinstance(term.value, (int, float)):
            dtype = torch.long if isinstance(term.value, int) else torch.get_default_dtype()
            device = self.device or self.model._device_of(network)
            return torch.full((self.batch,), term.value, dtype=dtype, device=device)
        if isinstance(term, Term) and term.functor == NN_TENSOR and term.arity == 2:
            return self._tensor(term)
        if isinstance(term, Var) or not term.is_ground():
            where = f" in query {self.template.term}" if self.template is not None else ""
            raise InputError(f"network {network} is called on {term}{where}, which is not ground; bind its "
                             "inputs before the call")
        return [term] * self.batch

    def _tensor(self, term: Term) -> torch.Tensor:
        key = str(term)
        if key not in self.tensors:
            name = str(term.args[0])
            args = [self(a, name) for a in term2list(term.args[1], deep=False)]
            out = _call(self.model.network(name), name, args)
            if not isinstance(out, torch.Tensor) or out.dim() == 0 or out.shape[0] != self.batch:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise InputError(f"network {name} (nn/3) must return a tensor [batch, ...]; got {shape} for "
                                 f"{self.batch} inputs")
            self.tensors[key] = out
        return self.tensors[key]


def _concat(values: list[NetworkInput]) -> NetworkInput:
    """The inputs of several calls, call-major."""
    if len(values) == 1:
        return values[0]
    if all(isinstance(v, list) for v in values):
        return [item for v in values for item in v]
    if any(isinstance(v, list) for v in values):
        raise InputError("a network is called on tensors in some calls and on constant terms in others, at one "
                         "argument position; give it one kind")
    return torch.cat(values, dim=0)


def _call(network: Network, name: str, args: list[NetworkInput]) -> torch.Tensor:
    try:
        return network(*args)
    except NesyError:
        raise
    except Exception as exc:  # the user's network: say which one failed, on what, and why
        shapes = ", ".join(str(tuple(a.shape)) if isinstance(a, torch.Tensor) else f"{len(a)} terms" for a in args)
        raise InputError(f"network {name} failed on inputs of shape {shapes}: {exc}") from exc


def _batch_size(inputs: Mapping[str, torch.Tensor], query: str) -> int:
    if not inputs:
        return 1
    sizes = {name: (t.shape[0] if isinstance(t, torch.Tensor) and t.dim() > 0 else None) for name, t in inputs.items()}
    bad = [name for name, s in sizes.items() if s is None]
    if bad:
        raise InputError(f"inputs {', '.join(bad)} of {query} must be tensors with a batch dimension")
    if len(set(sizes.values())) != 1:
        raise InputError(f"inputs of {query} have different batch sizes: {sizes}")
    return next(iter(sizes.values()))


def _name_anonymous(term: Term) -> Term:
    """``term`` with each anonymous variable ``_`` replaced by a distinct named one, so that it becomes an output."""
    taken = {str(v) for v in term.variables()}
    fresh = (f"_Anon{i}" for i in itertools.count() if f"_Anon{i}" not in taken)

    def walk(t):
        if isinstance(t, Var):
            return Var(next(fresh)) if t.name == "_" else t
        if isinstance(t, Term) and t.args:
            return t.with_args(*(walk(a) for a in t.args))
        return t

    return walk(term)
