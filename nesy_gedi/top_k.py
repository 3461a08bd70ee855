"""Neural disjunctions whose values are chosen while grounding (DeepProbLog's ``Network(k=...)``).

For a network named in ``Program(..., top_k={net: k})``, ``nn(net, Inputs, Y, Domain) :: p(..Y..)`` grounds
only the values ``choose(net, inputs)`` returns for each call (e.g. the ``k`` most probable ones); the others are
left out of the circuit, so the probability of a query is that of its proofs through the chosen values (a lower
bound of the exact one).  The choice depends on the network's outputs, so circuits built this way must be
compiled again when the network changes.
"""

from __future__ import annotations

from typing import Callable

from problog.extern import problog_export
from problog.logic import Term, term2list

from .grounding import Grounder
from .program import top_k_selector

Chooser = Callable[[str, list[Term]], list[Term]]


def register_top_k(grounder: Grounder, choose: Chooser) -> None:
    """Make ``choose(network, input terms) -> domain values`` the grounding-time choice of every top-k network."""
    for network in grounder.program.top_k:
        def chosen(inputs: Term, network: str = network) -> list[Term]:
            return list(choose(network, term2list(inputs, deep=False)))

        previous, problog_export.database = problog_export.database, grounder.db
        try:
            problog_export("+term", "-list")(chosen, funcname=top_k_selector(network), modname=None)
        finally:
            problog_export.database = previous
