"""Every program of the corpus gives problog's own numbers, answer by answer, to 1e-9."""

import re
from pathlib import Path

import pytest
from problog import get_evaluatable
from problog.program import PrologFile, PrologString

from nesy_gedi import NeSyModel, NesyError, Program

from .corpus import CORPUS, NOT_SUPPORTED

_VARIABLE = re.compile(r"\b[A-Z_][A-Za-z0-9_]*\b")


def _normalise(results: dict) -> dict[str, float]:
    """Answer text -> probability; variables of unanswered queries (ProbLog's ``X2``) become ``_``."""
    return {_VARIABLE.sub("_", str(term)): p for term, p in results.items()}


def problog_results(program) -> dict[str, float]:
    return _normalise(get_evaluatable("sdd").create_from(program).evaluate())


def our_results(program: Program) -> dict[str, float]:
    return _normalise(dict(NeSyModel(program, {}).program_probabilities()))


def assert_same(got: dict[str, float], expected: dict[str, float], name: str) -> None:
    assert set(got) == set(expected), (name, got, expected)
    for answer, p in expected.items():
        assert got[answer] == pytest.approx(p, abs=1e-9), (name, answer)


def test_corpus_is_broad():
    assert len(CORPUS) >= 60
    assert sum("evidence(" in src for src in CORPUS.values()) >= 15


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus_matches_problog(name, evaluator):
    src = CORPUS[name]
    assert_same(our_results(Program.from_string(src)), problog_results(PrologString(src)), name)


@pytest.mark.parametrize("name", list(NOT_SUPPORTED))
def test_constructs_problog_rejects_are_not_supported(name):
    src, what = NOT_SUPPORTED[name]
    with pytest.raises(Exception):
        get_evaluatable("sdd").create_from(PrologString(src)).evaluate()
    with pytest.raises(NesyError, match=f"not supported: .*{what}"):
        NeSyModel(Program.from_string(src), {}).program_probabilities()


def test_consult_and_use_module_follow_the_including_file(tmp_path: Path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "facts.pl").write_text("0.4::b. query(b).\n:- consult(more).\n")
    (tmp_path / "lib" / "more.pl").write_text("0.7::c. evidence(c, true).\n:- consult(facts).\n")  # cycle: loaded once
    (tmp_path / "rules.pl").write_text("d :- a, b.\n")
    main = tmp_path / "main.pl"
    main.write_text(":- consult('lib/facts').\n:- use_module('rules.pl').\n:- use_module(library(lists)).\n"
                    "0.3::a. e :- c, member(x, [x]). query(a). query(d). query(e).\n")
    ours = our_results(Program.from_file(main))
    assert set(ours) == {"a", "b", "d", "e"}
    assert_same(ours, problog_results(PrologFile(str(main))), "consult")


def test_missing_consulted_file_is_named(tmp_path: Path):
    main = tmp_path / "main.pl"
    main.write_text("0.3::a.\n:- consult(nowhere).\nquery(a).\n")
    with pytest.raises(NesyError, match="consulted file not found: .*nowhere"):
        Program.from_file(main)


def test_library_predicate_without_the_library_gets_a_hint():
    with pytest.raises(NesyError, match=r"member/2 .*use_module\(library\(lists\)\)"):
        NeSyModel(Program.from_string("p :- member(1, [1]). query(p)."), {}).program_probabilities()
