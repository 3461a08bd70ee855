"""Evidence conditions the query, as in ProbLog (compared with problog's own SDD evaluation)."""

import pytest
from problog import get_evaluatable
from problog.program import PrologString

from nesy_gedi import NeSyModel, Program, QueryError

from .programs import ALARM, SMOKERS

DIE = """
1/6::die(1); 1/6::die(2); 1/6::die(3); 1/6::die(4); 1/6::die(5); 1/6::die(6).
odd :- die(X), X mod 2 =:= 1.
big :- die(X), X > 3.
"""
COINS = """
0.4::heads(1). 0.7::heads(2). 0.5::heads(3).
someheads :- heads(_).
twoheads :- heads(X), heads(Y), X < Y.
"""
GRAPH = """
0.6::edge(1,2). 0.4::edge(2,3). 0.7::edge(1,3). 0.5::edge(3,1). 0.3::edge(3,4). 0.8::edge(2,4).
path(X,Y) :- edge(X,Y).
path(X,Y) :- edge(X,Z), path(Z,Y).
"""
CASES = [
    ("evidence/1 on a derived atom", ALARM + "evidence(alarm).", ["burglary", "earthquake"]),
    ("evidence/2 true", ALARM + "evidence(alarm, true).", ["burglary"]),
    ("negative evidence", ALARM + "evidence(alarm, false).", ["burglary", "earthquake"]),
    ("evidence on two atoms", ALARM + "evidence(calls(john), true).\nevidence(calls(mary), false).",
     ["burglary", "alarm", "earthquake"]),
    ("evidence with answers", ALARM + "evidence(calls(john)).", ["calls(X)"]),
    ("evidence outside the query's proofs", "0.3::a. 0.6::b. evidence(b).", ["a"]),
    ("negative evidence outside the proofs", "0.3::a. 0.6::b. evidence(b, false).", ["a"]),
    ("smokers", SMOKERS + "evidence(smokes(2), true).\nevidence(influences(4,2), false).",
     ["smokes(1)", "smokes(3)", "asthma(4)"]),
    ("smokers, negative", SMOKERS + "evidence(asthma(1), false).", ["smokes(X)"]),
    ("annotated disjunction", DIE + "evidence(odd).", ["die(X)", "big"]),
    ("annotated disjunction, negative", DIE + "evidence(big, false).", ["odd", "die(X)"]),
    ("coins", COINS + "evidence(someheads).", ["heads(1)", "twoheads"]),
    ("coins, two pieces", COINS + "evidence(someheads).\nevidence(twoheads, false).", ["heads(X)"]),
    ("cyclic graph", GRAPH + "evidence(path(1,4)).", ["edge(1,2)", "path(3,1)", "edge(3,4)"]),
    ("cyclic graph, negative", GRAPH + "evidence(path(3,4), false).", ["path(1,X)"]),
]


def problog_probabilities(src: str, query: str) -> dict[str, float]:
    result = get_evaluatable().create_from(PrologString(src + f"\nquery({query}).")).evaluate()
    return {str(k): v for k, v in result.items()}


def ours(model: NeSyModel, query: str) -> dict[str, float]:
    """Probabilities by answer term (single-variable or ground queries)."""
    out = {}
    for answer, p in model.probabilities(query).items():
        if answer == ():
            out[query] = p
        else:
            (value,) = answer
            head = query[: query.index("(")]
            args = [a.strip() for a in query[query.index("(") + 1: -1].split(",")]
            args = [str(value) if a[:1].isupper() or a[:1] == "_" else a for a in args]
            out[f"{head}({','.join(args)})"] = p
    return out


@pytest.mark.parametrize("name,src,queries", CASES, ids=[c[0] for c in CASES])
def test_evidence_matches_problog(name, src, queries):
    model = NeSyModel(Program.from_string(src), {})
    for query in queries:
        expected = problog_probabilities(src, query)
        got = ours(model, query)
        assert set(got) == set(expected), (query, got, expected)
        for key, p in expected.items():
            assert got[key] == pytest.approx(p, abs=1e-9), (name, key)
        assert model.compile(query, ()).conditional


def test_impossible_evidence_is_an_error():
    model = NeSyModel(Program.from_string("0.3::a. b :- a, \\+a. evidence(b)."), {})
    with pytest.raises(QueryError, match="impossible"):
        model.probabilities("a")
