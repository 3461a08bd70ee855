"""``Model``: DeepProbLog's model class on nesy_gedi's batched exact circuits.

A batch of :class:`Query` objects is grouped by query template (tensor
arguments abstracted), so every group is one network forward and one circuit
evaluation.  For training and testing, the output arguments of a query
(``output_ind``) are made variables when that compiles within
:data:`VARIABLE_OUTPUT_BUDGET` seconds of grounding: one circuit then serves
every target value (e.g. every sum).  Otherwise (e.g. multi-digit addition by
enumeration) each target value is its own template, as in DeepProbLog.
"""

from __future__ import annotations

import json
import pickle
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from io import BytesIO
from os import PathLike
from pathlib import Path
from typing import IO, Any, Collection, Sequence
from zipfile import ZipFile

import torch
from problog.logic import Constant, Term

from ..compiled import CompiledQuery
from ..errors import GroundingTimeout, NesyError, NoProofError, NotSupportedError
from ..model import NeSyModel
from ..program import Program
from ..template import PLACEHOLDER, QueryTemplate, _tensor_terms, to_python
from ..top_k import register_top_k
from ._unsupported import refuse
from .engines import ApproximateEngine, Engine
from .network import Network, ProbabilityOutputs
from .optimizer import Optimizer
from .parameters import ProbabilityList, load_parameters
from .query import Query

VARIABLE_OUTPUT_BUDGET = 10.0  # seconds of grounding allowed for the all-answers circuit of a query template


@dataclass
class Result:
    """Probabilities of the answers of one query (``result[term] -> tensor``), as DeepProbLog's ``Result``."""

    result: dict[Term, torch.Tensor]
    semiring: Any = None  # DeepProbLog's semiring of the evaluation; None here (log-semiring circuits)
    ground_time: float | None = None
    compile_time: float | None = None
    eval_time: float | None = None
    proof: Any = None  # DeepProbLog's approximate engine's proofs; None here

    def __iter__(self):
        return iter(self.result)

    def __len__(self) -> int:
        return len(self.result)


@dataclass
class _Prepared:
    template: QueryTemplate
    tensors: list[Term]  # the query's tensor terms, in the order of template.inputs


class Model:
    """A DeepProbLog program with its networks (``Model("addition.pl", [net])``)."""

    def __init__(self, program_string: str | PathLike, networks: Collection[Network], embeddings: Any = None,
                 load: bool = True) -> None:
        if embeddings is not None:
            raise NotSupportedError("not supported: embeddings (TermEmbedder) in Model")
        top_k = {n.name: n.k for n in networks if n.k is not None}
        program = (Program.from_file(program_string, top_k) if load else
                   Program.from_string(str(program_string), top_k))
        self.program = program
        self.networks: dict[str, Network] = {}
        for network in networks:
            self.networks[network.name] = network
            network.model = self
        facts = {n.network: n.is_fact for n in program.neural}
        tensors = {n.network for n in program.neural if n.is_tensor}  # nn/3: the module's output as it is
        missing = sorted(set(facts) - set(self.networks))
        if missing:
            raise NesyError(f"{program.source} uses network(s) {', '.join(missing)} but the model was given "
                            f"{', '.join(sorted(self.networks)) or 'none'}")
        outputs = {name: net if name in tensors else ProbabilityOutputs(net, facts.get(name, False))
                   for name, net in self.networks.items()}
        self.nesy = NeSyModel(program, outputs)
        if top_k:
            register_top_k(self.nesy.grounder, self._choose)
        self.tensor_sources: dict[str, Any] = {}
        self._stored: list[torch.Tensor] = []
        self.solver: Engine | None = None
        self.eval_mode = False
        self._ground_only: set[str] = set()
        self._warned: set[str] = set()
        self._choice_inputs = None  # the network inputs of the top-k choices of the current evaluation
        self.optimizer = Optimizer(self)

    @property
    def parameters(self) -> ProbabilityList:
        """The program's learnable probabilities (``t(P)``/``t(_)``), in program order, as DeepProbLog lists them;
        reading and assigning ``model.parameters[k]`` reads and sets the model's value."""
        return ProbabilityList(self.nesy.learnable)

    @parameters.setter
    def parameters(self, values: Sequence[float]) -> None:
        count = len(ProbabilityList(self.nesy.learnable))
        if len(values) != count:
            raise NesyError(f"the program has {count} learnable probabilities; got {len(values)} values")
        if count:
            self.nesy.learnable.set_(torch.tensor([float(v) for v in values], dtype=torch.float64))

    @property
    def parameter_groups(self) -> list[list[int]]:
        """The learnable probabilities of each annotated disjunction (DeepProbLog normalises them together)."""
        learnable = self.nesy.learnable
        return [] if learnable is None else [list(g.members) for g in learnable.groups
                                             if g.alternatives > 1 and g.members]

    # -- DeepProbLog's public API ----------------------------------------------------------------------
    def set_engine(self, engine: Engine, **kwargs: Any) -> None:  # noqa: ARG002 - cache=... is always on
        if isinstance(engine, ApproximateEngine):
            raise NotSupportedError("not supported: ApproximateEngine (best-first proof search); use "
                                    "ExactEngine(model), with Network(..., k=K) for top-k grounding where exact "
                                    "inference is too big")
        self.solver = engine

    def add_tensor_source(self, name: str, source: Any) -> None:
        self.tensor_sources[name] = source

    def get_tensor(self, term: Term) -> torch.Tensor:
        """The tensor named by ``tensor(source(args...))`` or by a stored ``tensor(i)``."""
        inner = term.args[0] if term.arity == 1 else None
        if inner is not None and inner.functor in self.tensor_sources:
            try:
                return self.tensor_sources[inner.functor][inner.args]
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise NesyError(f"tensor source {inner.functor!r} has no item {inner.args} for {term}: {exc}") from None
        if isinstance(inner, Constant) and isinstance(inner.value, int) and 0 <= inner.value < len(self._stored):
            return self._stored[inner.value]
        raise NesyError(f"no tensor for {term}: add a tensor source named {inner.functor if inner is not None else '?'}"
                        f" (known: {', '.join(self.tensor_sources) or 'none'})")

    def store_tensor(self, tensor: torch.Tensor) -> Term:
        self._stored.append(tensor)
        return Term("tensor", Constant(len(self._stored) - 1))

    def solve(self, batch: Sequence[Query]) -> list[Result]:
        """Probabilities of every answer of each query, batched by template."""
        prepared = [self._prepare(q.substitute().query) for q in batch]
        results = []
        for p, (compiled, row) in zip(prepared, self._evaluate(prepared)):
            if compiled is None:
                results.append(Result({}))
                continue
            probs = row.exp()
            results.append(Result({_fill(t, p.tensors): probs[i] for i, t in enumerate(compiled.answer_terms)}))
        return results

    def eval(self) -> None:
        self.eval_mode = True
        for network in self.networks.values():
            network.eval()
        self._forget_chosen()

    def train(self) -> None:
        self.eval_mode = False
        for network in self.networks.values():
            network.train()
        self._forget_chosen()

    def _choose(self, network: str, inputs: list[Term]) -> list[Term]:
        """``Network(k=...)``: in eval mode, the ``k`` most probable values of a call on terms of the program
        (numbers, constants, outputs of ``nn/3`` networks on them: DeepProbLog's top-k); in training, and for calls
        on the query's tensors, every value (exact)."""
        domain = list(self.program.neural_predicate(network).domain)
        if not self.eval_mode or not all(t.is_ground() and not _mentions(t, PLACEHOLDER) for t in inputs):
            return domain
        net = self.networks[network]
        if self._choice_inputs is None:  # one per evaluation: an nn/3 output read by several choices is computed once
            self._choice_inputs = self.nesy.input_resolver()
        resolve = self._choice_inputs
        with torch.no_grad():
            probabilities = net(*(resolve(t, network) for t in inputs)).reshape(-1)
        top = probabilities.topk(min(net.k, len(domain))).indices.tolist()
        return [domain[i] for i in top]

    def _forget_chosen(self) -> None:
        """Circuits grounded through top-k choices depend on the networks' outputs: compile them again."""
        self._choice_inputs = None
        if self.program.top_k:
            self.nesy._compiled.clear()

    def save_state(self, filename: str | PathLike | IO[bytes], complete: bool = False) -> None:
        """A zip with ``parameters`` and one entry per network, in DeepProbLog's format."""
        if isinstance(filename, (str, PathLike)):
            Path(filename).parent.mkdir(parents=True, exist_ok=True)
        with ZipFile(filename, "w") as archive:
            with archive.open("parameters", "w") as f:
                pickle.dump(list(self.parameters), f)
            for name, network in self.networks.items():
                with archive.open(name, "w") as f:
                    network.save(f, complete=complete)

    def load_state(self, filename: str | PathLike | IO[bytes]) -> None:
        """Networks and learnable probabilities from a :meth:`save_state` zip (ours or DeepProbLog's); its
        ``parameters`` pickle is read with a restricted unpickler (numbers, strings and containers only)."""
        with ZipFile(filename) as archive:
            names = set(archive.namelist())
            missing = sorted(set(self.networks) - names)
            if missing:
                raise NesyError(f"{filename} has no state for network(s) {', '.join(missing)}")
            if "parameters" in names:
                with archive.open("parameters") as f:
                    self.parameters = load_parameters(f.read(), f"{filename}: parameters")
            for name, network in self.networks.items():
                with archive.open(name) as f:
                    network.load(BytesIO(f.read()))

    def get_embedding(self, term: Term):
        refuse("embeddings (Model.get_embedding)", "embed inputs with a network and pass the tensors as query inputs")

    def evaluate_nn(self, to_evaluate):
        refuse("Model.evaluate_nn (DeepProbLog's per-call network evaluation)",
               "call the network's module on tensors, or Model.solve for query probabilities")

    def ground_dataset(self, dataset, workers: int = 1) -> dict:
        """Ground and compile the circuit of every query template of ``dataset`` ahead of training (each template
        once, in ``workers`` processes when more than one); the seconds it took, as DeepProbLog reports them."""
        start = time.perf_counter()
        templates = [self._prepare(query.substitute().query).template for query in dataset.to_queries()]
        ground_times, compile_times = [], []
        for built in self.nesy.compile_templates(templates, workers).values():
            if isinstance(built, NoProofError):
                continue
            if isinstance(built, Exception):
                raise built
            ground_times.append(built.stats["ground_s"])
            compile_times.append(built.stats["sdd_s"])
        return {"total_time": time.perf_counter() - start, "ground_times": ground_times,
                "compile_times": compile_times}

    def register_foreign(self, func, function_name, arity_in, arity_out) -> None:
        raise NotSupportedError("not supported: register_foreign (Python predicates in the program)")

    def get_hyperparameters(self) -> dict:
        return {"solver": {"engine": type(self.solver).__name__ if self.solver else None, "semiring": "log"},
                "networks": [n.get_hyperparameters() for n in self.networks.values()],
                "program": self.program.text}

    def hyperparameters_to_file(self, filename: str) -> None:
        Path(filename).write_text(json.dumps(self.get_hyperparameters()))

    def __str__(self) -> str:
        return self.program.text

    # -- batched evaluation behind train_model and get_confusion_matrix -------------------------------------
    def _prepare(self, term: Term) -> _Prepared:
        tensors = _tensor_terms(term)
        return _Prepared(QueryTemplate.create(term, [str(t) for t in tensors]), tensors)

    def _device(self) -> torch.device:
        for network in self.networks.values():
            return network.device_of()
        return torch.device("cpu")

    def _evaluate(self, prepared: list[_Prepared]) -> list[tuple[CompiledQuery | None, torch.Tensor | None]]:
        """``(compiled, log-probabilities of its answers)`` per query; ``(None, None)`` for a query without proof."""
        if self.eval_mode:
            self._forget_chosen()
        groups: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(prepared):
            groups[p.template.key].append(i)
        out: list = [(None, None)] * len(prepared)
        device = self._device()
        for indices in groups.values():
            template = prepared[indices[0]].template
            try:
                compiled = self.nesy.compile_template(template)
            except NoProofError:
                continue
            inputs = {name: torch.stack([torch.as_tensor(self.get_tensor(prepared[i].tensors[k])) for i in indices]).to(device)
                      for k, name in enumerate(template.inputs)}
            log_probs = self.nesy.evaluate(template, inputs).log_probs
            for row, i in enumerate(indices):
                out[i] = (compiled, log_probs[row if inputs else 0])
        return out

    def _with_outputs(self, query: Query) -> tuple[_Prepared, tuple | None]:
        """The query with variable outputs and its target answer, or the ground query (target ``None``)."""
        ground = query.substitute()
        variable = query.variable_output().substitute()
        prepared = self._prepare(variable.query)
        key = prepared.template.key
        names = [f"X_{i % len(query.query.args)}" for i in query.output_ind]
        if key not in self._ground_only and list(prepared.template.outputs) == names:
            try:
                self.nesy.compile_template(prepared.template, time_limit=VARIABLE_OUTPUT_BUDGET)
                return prepared, tuple(to_python(v) for v in ground.output_values())
            except NoProofError:
                return prepared, ()  # no answer at all: the ground query has no proof either
            except GroundingTimeout:
                self._ground_only.add(key)
            except NesyError:  # e.g. an output that must be bound for a builtin
                self._ground_only.add(key)
        return self._prepare(ground.query), None

    def log_likelihoods(self, queries: Sequence[Query]) -> tuple[torch.Tensor, list[int]]:
        """``log P(query)`` of each query that has a proof, and the indices of those queries."""
        prepared, targets = zip(*(self._with_outputs(q) for q in queries))
        values, kept = [], []
        for i, (p, target, (compiled, row)) in enumerate(zip(prepared, targets, self._evaluate(list(prepared)))):
            if compiled is None:
                self._warn_no_proof(queries[i])
                continue
            if target is None:
                values.append(row[0])
            else:
                index = compiled.answer_index.get(target)
                if index is None:
                    self._warn_no_proof(queries[i])
                    continue
                values.append(row[index])
            kept.append(i)
        return (torch.stack(values) if values else torch.zeros(0)), kept

    def predict(self, queries: Sequence[Query]) -> list[tuple[str, float] | None]:
        """Most probable value of the first output argument of each query (``None``: no answer)."""
        prepared = [self._prepare(q.variable_output().substitute().query) for q in queries]
        predictions: list[tuple[str, float] | None] = []
        for q, (compiled, row) in zip(queries, self._evaluate(prepared)):
            if compiled is None or row.numel() == 0:
                predictions.append(None)
                continue
            best = int(row.argmax())
            predictions.append((str(compiled.answer_terms[best].args[q.output_ind[0]]), float(row[best].exp())))
        return predictions

    def _warn_no_proof(self, query: Query) -> None:
        key = str(query.query.functor)
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"query {query.substitute().query} has no proof; skipped in the loss as DeepProbLog does "
                          "(warned once per predicate)", stacklevel=3)


def _fill(term: Term, tensors: list[Term]) -> Term:
    """Put a query's tensor terms back in place of the template's placeholders ``'$in'(k)``."""
    if term.functor == PLACEHOLDER and term.arity == 1:
        return tensors[int(term.args[0].value)]
    if term.arity == 0:
        return term
    return term.with_args(*(_fill(a, tensors) for a in term.args))


def _mentions(term: Term, functor: str) -> bool:
    """Whether ``functor`` occurs anywhere in ``term``."""
    return term.functor == functor or any(_mentions(a, functor) for a in term.args if isinstance(a, Term))
