"""Distinct query templates ground and compile in a process pool, into the circuits one process builds."""

import pytest
import torch

from nesy_gedi.cli import main
from nesy_gedi.errors import NoProofError
from nesy_gedi.model import NeSyModel
from nesy_gedi.template import QueryTemplate

PROGRAM = """
nn(net, [X], Y, [0..2]) :: digit(X, Y).
0.3::bonus.
score(X, Y, S) :- digit(X, A), digit(Y, B), S is A + B.
score(X, Y, S) :- bonus, digit(X, A), digit(Y, B), S is A * B.
"""


def _templates() -> list[QueryTemplate]:
    return [QueryTemplate.create("score(X, Y, S)", ["X", "Y"]), QueryTemplate.create("score(X, Y, 4)", ["X", "Y"]),
            QueryTemplate.create("score(X, Y, 9)", ["X", "Y"]), QueryTemplate.create("score(X, X, 2)", ["X"])]


def test_pool_builds_the_circuits_of_one_process_and_returns_a_query_without_proof_as_its_error():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    pooled, alone = NeSyModel(PROGRAM, {"net": net}), NeSyModel(PROGRAM, {"net": net})
    templates = _templates()
    here = alone.compile_templates(templates)  # grounding here caches the terms' hashes, which the pool must drop
    from_pool = pooled.compile_templates(templates, workers=2)
    assert list(from_pool) == list(here) == [t.key for t in _templates()]
    assert isinstance(from_pool[_templates()[2].key], NoProofError)  # 9 is no sum or product of 0..2
    assert isinstance(here[_templates()[2].key], NoProofError)
    for key in (t.key for t in _templates()[:2] + _templates()[3:]):
        assert from_pool[key].digest() == here[key].digest()
        assert key in pooled.compiled  # cached: evaluation compiles nothing more
        assert [hash(t) for t in from_pool[key].answer_terms] == [hash(t) for t in here[key].answer_terms]
    x, y = torch.randn(5, 4), torch.randn(5, 4)
    for query in ("score(X, Y, S)", "score(X, Y, 4)"):
        torch.testing.assert_close(pooled(query, {"X": x, "Y": y}).log_probs, alone(query, {"X": x, "Y": y}).log_probs,
                                   rtol=0, atol=0)


def test_pool_refuses_no_workers():
    with pytest.raises(ValueError, match="workers must be at least 1"):
        from nesy_gedi.compile_pool import compile_in_pool

        model = NeSyModel(PROGRAM, {"net": torch.nn.Linear(4, 3)})
        compile_in_pool(model.program, model.domain_sizes, _templates(), 0)


def test_run_with_compile_workers_prints_what_one_process_prints(tmp_path, capsys):
    program = tmp_path / "coins.pl"
    program.write_text("0.4::heads(1). 0.7::heads(2). 0.2::heads(3).\n"
                       "two :- heads(1), heads(2). two :- heads(2), heads(3). none :- \\+heads(1), \\+heads(2).\n"
                       "query(two). query(none). query(heads(X)).\n")
    assert main(["run", str(program)]) in (0, None)
    alone = capsys.readouterr().out
    assert main(["run", str(program), "--compile-workers", "2"]) in (0, None)
    assert capsys.readouterr().out == alone
    assert "two:\t0.364" in alone  # 0.4*0.7 + 0.7*0.2 - 0.4*0.7*0.2
