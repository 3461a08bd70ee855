"""The tensor circuits give ProbLog's exact probabilities."""

import random

import pytest
import torch
from problog import get_evaluatable
from problog.program import PrologString

from nesy_gedi import NeSyModel, Program, ProgramError, QueryError

from .programs import ALARM


COINS = """
0.4::heads(1). 0.7::heads(2).
twoheads :- heads(1), heads(2).
someheads :- heads(1). someheads :- heads(2).
"""
AD = """
0.3::c(a); 0.5::c(b); 0.2::c(c).
0.4::d(x); 0.1::d(y).
e(X, Y) :- c(X), d(Y).
f :- c(a), \\+ d(x).
f :- c(b).
"""
RECURSION = """
0.6::edge(1,2). 0.4::edge(2,3). 0.7::edge(1,3). 0.5::edge(3,1). 0.3::edge(3,4).
path(X,Y) :- edge(X,Y).
path(X,Y) :- edge(X,Z), path(Z,Y).
"""
CASES = [(ALARM, ["alarm", "calls(X)"]), (COINS, ["twoheads", "someheads"]),
         (AD, ["e(X,Y)", "f", "c(X)"]), (RECURSION, ["path(1,X)", "path(3,4)"])]


def problog_probabilities(src, query):
    result = get_evaluatable().create_from(PrologString(src + f"\nquery({query}).")).evaluate()
    return {str(k): v for k, v in result.items()}


@pytest.mark.parametrize("src,queries", CASES)
def test_classic_programs_match_problog(src, queries):
    model = NeSyModel(Program.from_string(src), {})
    for query in queries:
        expected = problog_probabilities(src, query)
        got = {str(term): p for term, p in model.answer_probabilities(query)}
        assert set(got) == set(expected), query  # answer by answer, not sorted values
        for name, p in expected.items():
            assert got[name] == pytest.approx(p, abs=1e-9), (query, name)


def test_random_programs_match_problog(evaluator):
    rng = random.Random(0)
    for trial in range(15):
        n = rng.randint(2, 5)
        lines = [f"{rng.uniform(0.05, 0.95):.3f}::f{i}." for i in range(n)]
        for r in range(rng.randint(2, 5)):
            body = [("\\+ " if rng.random() < 0.3 else "") + f"f{rng.randrange(n)}" for _ in range(rng.randint(1, 3))]
            lines.append(f"q :- {', '.join(body)}.")
        src = "\n".join(lines)
        expected = problog_probabilities(src, "q").get("q", 0.0)
        model = NeSyModel(Program.from_string(src), {})
        assert model.probabilities("q")[()] == pytest.approx(expected, abs=1e-9), src


def test_neural_addition_matches_enumeration(evaluator):
    torch.manual_seed(0)
    model = NeSyModel("programs/mnist_add.pl", {"mnist_net": lambda x: x})
    a, b = torch.randn(4, 10, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64)
    result = model("addition(X, Y, Z)", {"X": a, "Y": b})
    pa, pb = a.softmax(1), b.softmax(1)
    for i, (z,) in enumerate(result.answers):
        expected = sum(pa[:, d] * pb[:, z - d] for d in range(10) if 0 <= z - d <= 9)
        assert torch.allclose(result.log_probs[:, i].exp(), expected, atol=1e-9)


def test_gradients_match_autograd_of_enumeration(evaluator):
    model = NeSyModel("programs/mnist_add.pl", {"mnist_net": lambda x: x})
    a = torch.randn(3, 10, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 10, dtype=torch.float64, requires_grad=True)
    result = model("addition(X, Y, Z)", {"X": a, "Y": b})
    z = result.answers.index((7,))
    result.log_probs[:, z].sum().backward()
    ga, gb = a.grad.clone(), b.grad.clone()
    a.grad = b.grad = None
    pa, pb = a.softmax(1), b.softmax(1)
    sum(pa[:, d] * pb[:, 7 - d] for d in range(8)).log().sum().backward()
    assert torch.allclose(ga, a.grad, atol=1e-9) and torch.allclose(gb, b.grad, atol=1e-9)


def test_bad_input_errors():
    with pytest.raises(ProgramError):
        Program.from_string("a :- b(.")
    with pytest.raises(ProgramError):
        Program.from_file("does/not/exist.pl")
    model = NeSyModel(Program.from_string(COINS), {})
    with pytest.raises(QueryError, match="unknown predicate"):
        model.probabilities("nosuch(X)")


def test_minimized_sdds_give_the_same_probabilities(monkeypatch):
    """The vtree search used for large SDDs keeps the compiled roots exact."""
    import nesy_gedi.sdd as sdd
    from nesy_gedi.data.addition import addition_query
    from nesy_gedi.networks import OneHot

    def evaluate():
        torch.manual_seed(0)
        model = NeSyModel("programs/multi_add.pl", {"mnist_net": lambda x: x, "sum_digit": OneHot(10)})
        query, xs, ys, zs = addition_query(3)
        inputs = {v: torch.randn(5, 10, dtype=torch.float64) for v in xs + ys}
        inputs.update({z: torch.randint(0, 10, (5,)) for z in zs})
        compiled = model.compile(query, xs + ys + zs)
        return model.log_prob(query, inputs), compiled.stats
    plain, stats = evaluate()
    assert not stats["minimized"]
    monkeypatch.setattr(sdd, "MINIMIZE_ABOVE", 0)
    minimized, stats = evaluate()
    assert stats["minimized"]
    assert torch.allclose(plain, minimized, atol=1e-12)
    for src, queries in CASES:
        model = NeSyModel(Program.from_string(src), {})
        for query in queries:
            got = sorted(float(p) for p in model.forward(query, {}).log_probs[0].exp())
            assert got == pytest.approx(sorted(problog_probabilities(src, query).values()), abs=1e-9)


def test_parsed_query_cache_is_bounded_lru(monkeypatch):
    import nesy_gedi.model as model_module

    monkeypatch.setattr(model_module, "TEMPLATE_CACHE_SIZE", 3)
    model = NeSyModel(Program.from_string("0.5::p(1). 0.5::p(2). 0.5::p(3). 0.5::p(4)."), {})
    for i in (1, 2, 3, 1, 4):  # 1 is used again, so 2 is the least recently used when 4 arrives
        assert model.probabilities(f"p({i})")[()] == pytest.approx(0.5)
    assert [key[0] for key in model._templates] == ["p(3)", "p(1)", "p(4)"]
