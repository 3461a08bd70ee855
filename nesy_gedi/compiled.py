"""A query template compiled once: ground formula -> SDD -> tensor circuit."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import cached_property

from problog.logic import Term

from .circuit import TensorCircuit
from .errors import NoProofError
from .grounding import Grounder
from .leaves import LeafTable
from .program import Program
from .sdd import compile_sdd
from .template import QueryTemplate


@dataclass
class CompiledQuery:
    """Everything needed to evaluate a template on a batch.

    ``answers[i]`` are the output values of root ``i`` of ``circuit`` and
    ``answer_terms[i]`` the ground query term they make;
    ``conditional`` marks that the last root is the evidence (normaliser).
    """

    template: QueryTemplate
    answers: list[tuple]
    circuit: TensorCircuit
    table: LeafTable
    conditional: bool
    stats: dict
    answer_terms: list[Term]

    @cached_property
    def answer_index(self) -> dict[tuple, int]:
        """Root index of each answer (its output values)."""
        return {answer: i for i, answer in enumerate(self.answers)}

    def digest(self) -> str:
        """A fingerprint of the circuit, its leaf rows and answers: equal on every process that compiled the same
        template of the same program (compilation is deterministic), whatever its timing."""
        t = self.table
        structure = (self.template.key, self.answers, self.conditional, self.circuit.n_leaves, self.circuit._groups,
                     self.circuit.roots, [str(c) for c in t.calls], [c.is_fact for c in t.calls], t._consts,
                     t._neural, t._sums, t._learnable, t._order)
        return hashlib.sha256(repr(structure).encode()).hexdigest()

    @classmethod
    def build(
        cls,
        program: Program,
        grounder: Grounder,
        template: QueryTemplate,
        domain_sizes: dict[str, int],
        evidence=None,
        time_limit: float | None = None,
    ) -> "CompiledQuery":
        ground = grounder.ground([template.term], evidence if evidence is not None else grounder.evidence,
                                 time_limit=time_limit)
        answers = [(name, node) for name, node in ground.queries if node is not None]
        if not answers:
            raise NoProofError(f"query {template.term} has no proof in {program.source}")
        ground.queries = answers
        sdd = compile_sdd(ground, domain_sizes)
        start = time.perf_counter()
        roots = list(sdd.roots) + ([sdd.evidence_root] if sdd.evidence_root is not None else [])
        circuit = TensorCircuit.from_sdd(roots, sdd.literal_rows, len(sdd.table))
        stats = {
            "ground_s": ground.seconds,
            "sdd_s": sdd.seconds,
            "circuit_s": time.perf_counter() - start,
            "answers": len(answers),
            "nodes": circuit.n_nodes,
            "edges": circuit.n_edges,
            "layers": circuit.n_layers,
            **sdd.stats,
        }
        return cls(
            template=template,
            answers=[template.answer_values(name) for name, _ in answers],
            circuit=circuit,
            table=sdd.table,
            conditional=sdd.evidence_root is not None,
            stats=stats,
            answer_terms=[name for name, _ in answers],
        )
