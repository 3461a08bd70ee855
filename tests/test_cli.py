"""``nesy-gedi``: ProbLog's numbers in ProbLog's format, zero-probability queries as 0, JSON output."""

import json

from nesy_gedi.cli import main

PROGRAM = """
0.7::burglary.
0.2::earthquake.
0.9::alarm :- burglary, earthquake.
0.8::alarm :- burglary, \\+earthquake.
0.1::alarm :- \\+burglary, earthquake.
evidence(alarm).
query(burglary).
never :- fail.
query(never).
person(a). person(b).
0.5::p(X) :- person(X).
query(p(X)).
query(p([1,2])).
"""


def test_problog_style_output_with_zero_probability_queries(tmp_path, capsys):
    path = tmp_path / "alarm.pl"
    path.write_text(PROGRAM)
    assert main([str(path)]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert lines == ["burglary:\t0.98965517", "never:\t0", "p([1, 2]):\t0", "p(a):\t0.5", "p(b):\t0.5"]


def test_json_output(tmp_path, capsys):
    path = tmp_path / "alarm.pl"
    path.write_text(PROGRAM)
    assert main([str(path), "--format", "json", "--stats"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["probabilities"]["burglary"] - 0.98965517241) < 1e-9
    assert out["probabilities"]["never"] == 0.0
    assert out["circuits"]["burglary"]["nodes"] > 0 and "never" not in out["circuits"]


def test_query_rules_and_unanswered_queries_are_printed(tmp_path, capsys):
    path = tmp_path / "rules.pl"
    path.write_text("0.3::a(1). 0.6::a(2). p(X) :- a(X). query(p(X)) :- between(1, 2, X).\n"
                    "q(X) :- a(X), X > 5. query(q(X)).\n")
    assert main([str(path)]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert lines == ["p(1):\t0.3", "p(2):\t0.6", "q(X):\t0"]
