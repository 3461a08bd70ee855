"""Per-query evidence through tensor inputs, numerical guards, canonical templates, clear training errors."""

import pytest
import torch

from nesy_gedi import InputError, NeSyModel
from nesy_gedi.template import QueryTemplate

DIGITS = """
nn(net, [X], Y, [0,1,2]) :: d(X, Y).
s(X, Y, Z) :- d(X, A), d(Y, B), Z is A + B.
small(X) :- d(X, 0).
small(X) :- d(X, 1).
"""


def _model() -> NeSyModel:
    return NeSyModel(DIGITS, {"net": lambda x: x})


def test_per_query_evidence_on_a_neural_predicate_conditions_each_example():
    torch.manual_seed(0)
    a, b = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    model = _model()
    result = model("s(X, Y, Z)", {"X": a, "Y": b}, evidence=[("d(X, 1)", True)])
    assert model.compile("s(X, Y, Z)", ("X", "Y"), [("d(X, 1)", True)]).conditional
    pb = b.softmax(1)
    for i, (z,) in enumerate(result.answers):  # given d(X)=1, P(Z=z) = P(d(Y) = z-1)
        expected = pb[:, z - 1] if 0 <= z - 1 <= 2 else torch.zeros(4, dtype=torch.float64)
        assert torch.allclose(result.log_probs[:, i].exp(), expected, atol=1e-12)
    negative = model("s(X, Y, Z)", {"X": a, "Y": b}, evidence=[("d(X, 1)", False)]).log_probs.exp()
    assert torch.allclose(negative.sum(1), torch.ones(4, dtype=torch.float64))
    assert len(model.compiled) == 2  # with and without evidence are two templates


def test_evidence_with_a_free_variable_is_an_error():
    with pytest.raises(InputError, match="evidence must be ground"):
        _model()("s(X, Y, Z)", {"X": torch.randn(2, 3), "Y": torch.randn(2, 3)}, evidence=[("d(W, 1)", True)])


def test_evidence_of_probability_zero_names_the_batch_elements():
    impossible = torch.tensor([[0.0, 0.0, 0.0], [0.0, float("-inf"), 0.0]])
    with pytest.raises(InputError, match=r"impossible \(probability 0\) for batch element\(s\) 1"):
        _model()("s(X, Y, Z)", {"X": impossible, "Y": torch.zeros(2, 3)}, evidence=[("d(X, 1)", True)])


def test_gradients_stay_finite_where_a_network_rules_out_values():
    x = torch.tensor([[0.0, float("-inf"), float("-inf")], [float("-inf"), float("-inf"), 0.0]], requires_grad=True)
    result = _model()("small(X)", {"X": x})
    assert result.log_probs[0, 0] == 0 and torch.isneginf(result.log_probs[1, 0])
    result.log_probs[0].sum().backward()
    assert torch.isfinite(x.grad).all()


def test_templates_differing_only_in_output_names_share_one_circuit():
    model = _model()
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    first = model("s(X, Y, Z)", {"X": a, "Y": b}).log_probs
    second = model("s(P, Q, Total)", {"P": a, "Q": b}).log_probs
    assert len(model.compiled) == 1 and torch.equal(first, second)
    model("s(X, X, Z)", {"X": a})  # one image twice: another template
    assert len(model.compiled) == 2
    keys = {QueryTemplate.create(q, []).key for q in ("p(X, Y, Y)", "p(A, B, B)", "p(X, _, _)", "p(X, Y, Z)")}
    assert len(keys) == 3  # renaming keeps repeated variables repeated and anonymous ones apart


def test_training_target_without_proof_names_the_example():
    with pytest.raises(InputError, match=r"example 2: .* no proof for answer 9"):
        _model().answer_indices("s(X, Y, Z)", ("X", "Y"), [1, 4, 9])


def test_a_failed_grounding_does_not_break_the_next_query():
    model = NeSyModel("nn(net, [X], Y, [0, 1, 2]) :: d(X, Y).\nabove(X, T) :- d(X, D), D > T.\n", {"net": lambda x: x})
    with pytest.raises(Exception, match="ground"):
        model("above(X, T)", {"X": torch.zeros(1, 3)})
    assert torch.allclose(model("above(X, 1)", {"X": torch.zeros(1, 3)}).log_probs.exp(), torch.tensor([[1 / 3]]))
