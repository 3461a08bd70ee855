"""Learnable probabilities ``t(P)``/``t(_)``: ProbLog's numbers and gradients, ProbLog's starts, training by any
torch optimizer and by DeepProbLog's ``SGD``, and DeepProbLog's saved format read without running code."""

import io
import math
import pickle
import re
from zipfile import ZipFile

import pytest
import torch
from problog import get_evaluatable
from problog.logic import Constant
from problog.program import PrologString

from nesy_gedi import NesyError
from nesy_gedi.deepproblog import DataLoader, ExactEngine, Model, Network, train_model
from nesy_gedi.deepproblog.optimizer import SGD
from nesy_gedi.model import NeSyModel

from .test_deepproblog import Pairs, Probabilities

PROGRAMS = {
    "facts, negation, a disjunction with a fixed alternative": (
        "t(0.3)::a. t(0.6)::b. t(0.2)::x; t(0.5)::y; 0.1::z. c :- a, \\+b. c :- x. d :- y ; z. "
        "query(c). query(d)."),
    "a clause shared by its groundings, evidence": (
        "n(1). n(2). n(3). t(0.4)::q(X) :- n(X). t(0.7)::e. r :- q(1), q(2). r :- e, q(3). s :- q(1) ; e. "
        "evidence(s). query(r)."),
    "a disjunction with a body, partly grounded": (
        "t(0.25)::col(X, red); t(0.35)::col(X, green); 0.3::col(X, blue) :- item(X). item(i). item(j). "
        "same :- col(i, C), col(j, C). nored :- \\+col(i, red). query(same). query(nored)."),
}


def _problog(text: str) -> dict[str, float]:
    result = get_evaluatable("sdd").create_from(PrologString(text)).evaluate()
    return {str(k): float(v) for k, v in result.items()}


def _with_values(text: str, values: list[float]) -> str:
    """The program with its k-th ``t(P)`` replaced by ``values[k]``."""
    it = iter(values)
    return re.sub(r"t\((?:[0-9.]+|_)\)", lambda _: repr(next(it)), text)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_values_and_gradients_are_problogs(name):
    text = PROGRAMS[name]
    model = NeSyModel(text, {})
    start = model.learnable.values()
    ours = {str(t): p for t, p in model.program_probabilities()}
    expected = _problog(_with_values(text, start))
    assert ours.keys() == expected.keys()
    assert all(ours[k] == pytest.approx(expected[k], abs=1e-12) for k in ours)
    h = 1e-6
    model.learnable.track_probability_gradients = True  # d log P / d p, as DeepProbLog's SGD reads it
    for query in ours:
        model.learnable.probability_grad = None
        model.forward(query, {}).log_probs[0, 0].backward()
        grad = model.learnable.probability_grad
        for k in range(len(start)):
            up, down = list(start), list(start)
            up[k] += h
            down[k] -= h
            numeric = (math.log(_problog(_with_values(text, up))[query])
                       - math.log(_problog(_with_values(text, down))[query])) / (2 * h)
            assert float(grad[k]) == pytest.approx(numeric, abs=1e-6), (query, k)


def test_t_underscore_starts_as_problog_lfi_per_seed():
    text = "t(_)::a. t(_)::x; t(0.2)::y; t(_)::w; 0.1::z. t(_)::u; t(_)::v. query(a)."
    first = NeSyModel(text, {}, learnable_seed=0).learnable.values()
    again = NeSyModel(text, {}, learnable_seed=0).learnable.values()
    other = NeSyModel(text, {}, learnable_seed=1).learnable.values()
    assert first == again and first != other
    a, x, y, w, u, v = first
    assert y == pytest.approx(0.2, abs=1e-15) and all(0 < p < 1 for p in first)
    assert x + y + w < 1 - 0.1 and u + v < 1  # one draw is kept for "none of them", as ProbLog's LFI does


def test_any_torch_optimizer_fits_frequencies_and_keeps_them_probabilities():
    model = NeSyModel("t(_)::heads. tails :- \\+heads. t(_)::r; t(_)::g; t(_)::b. query(heads).", {})
    frequencies = {"heads": 0.3, "tails": 0.7, "r": 0.5, "g": 0.3, "b": 0.2}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(400):
        optimizer.zero_grad()
        loss = -sum(f * model.forward(q, {}).log_probs[0, 0] for q, f in frequencies.items())
        loss.backward()
        optimizer.step()
        p = model.learnable.values()
        assert all(0 <= v <= 1 for v in p) and p[1] + p[2] + p[3] <= 1 + 1e-12
    assert model.learnable.values() == pytest.approx([0.3, 0.5, 0.3, 0.2], abs=0.02)


NOISY = """
nn(net, [X], Y, [0, 1, 2]) :: digit(X, Y).
t(0.1)::noisy.
0.2::u(0); 0.2::u(1); 0.2::u(2); 0.2::u(3); 0.2::u(4).
sum(X, Y, Z) :- noisy, u(Z).
sum(X, Y, Z) :- \\+noisy, digit(X, A), digit(Y, B), Z is A + B.
"""


def _noisy_model():
    digits = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0, 1, 2]] * 0.98 + 0.01 / 3 * 2
    net = Network(Probabilities(digits / digits.sum(1, keepdim=True)), "net", batching=True)
    model = Model(NOISY, [net], load=False)
    model.set_engine(ExactEngine(model))
    model.add_tensor_source("src", {(Constant(i),): torch.tensor(i) for i in range(6)})
    return model


def test_deepproblog_sgd_learns_the_noise_rate_and_saves_it_in_its_format(tmp_path):
    """40% of the sums are replaced by a uniform draw: ``t(0.1)::noisy`` must rise towards 0.4 under
    DeepProbLog's SGD, and stay at 0.1 under its default optimizer (which leaves probabilities alone)."""
    generator = torch.Generator().manual_seed(0)
    pairs = [(int(a), int(b)) for a, b in torch.randint(0, 6, (400, 2), generator=generator)]
    noise = torch.rand(400, generator=generator) < 0.4
    targets = [int(torch.randint(0, 5, (), generator=generator)) if n else a % 3 + b % 3
               for (a, b), n in zip(pairs, noise.tolist())]
    data = Pairs(pairs, targets)
    fixed = _noisy_model()
    train_model(fixed, DataLoader(data, 10, False), 1, verbose=0)
    assert fixed.parameters[0] == pytest.approx(0.1, abs=1e-15)
    model = _noisy_model()
    model.optimizer = SGD(model, 0.05)
    train_model(model, DataLoader(data, 10, True, seed=0), 3, verbose=0)
    learned = model.parameters[0]
    assert 0.3 < learned < 0.5, learned
    model.save_state(tmp_path / "state.mdl")
    with ZipFile(tmp_path / "state.mdl") as archive:
        assert pickle.loads(archive.read("parameters")) == [learned]  # DeepProbLog's entry: a pickled list
    model.parameters[0] = 0.5
    model.load_state(tmp_path / "state.mdl")
    assert model.parameters[0] == pytest.approx(learned, abs=1e-15)


class _Payload:
    def __reduce__(self):
        return (print, ("this file ran code",))


def test_load_state_refuses_a_pickle_that_would_run_code(tmp_path, capsys):
    model = _noisy_model()
    path = tmp_path / "evil.mdl"
    with ZipFile(path, "w") as archive:
        archive.writestr("parameters", pickle.dumps([_Payload()]))
        buffer = io.BytesIO()
        model.networks["net"].save(buffer)
        archive.writestr("net", buffer.getvalue())
    with pytest.raises(NesyError, match="refused: only numbers, strings and containers are loaded; it names "
                                        "builtins.print"):
        model.load_state(path)
    assert "ran code" not in capsys.readouterr().out and model.parameters[0] == pytest.approx(0.1, abs=1e-15)
    with pytest.raises(NesyError, match="must be a number in"):
        model.parameters[0] = 1.5


def test_a_learnable_label_per_grounding_is_not_supported():
    with pytest.raises(NesyError, match="not supported: t\\(_,X\\)"):
        NeSyModel("t(_, X)::a(X). query(a(1)).", {})
    with pytest.raises(NesyError, match="t\\(foo\\) must hold a probability"):
        NeSyModel("t(foo)::a. query(a).", {})
