"""Tensor networks (DeepProbLog's deterministic ``nn/3``): a network's output as another network's input."""

import pytest
import torch
from problog.logic import Constant, Term

from nesy_gedi import NeSyModel, NesyError
from nesy_gedi.deepproblog import DataLoader, ExactEngine, Model, Network, Query, get_confusion_matrix, train_model
from nesy_gedi.deepproblog.dataset import QueryDataset
from nesy_gedi.program import Program

ENCODED = """
nn(enc, [X], E) :: encode(X, E).
nn(cls, [E], Y, [0, 1, 2]) :: label(E, Y).
nn(par, [E], P, [even, odd]) :: parity(E, P).
pair(X, Y, P) :- encode(X, E), label(E, Y), parity(E, P).
"""


class Counted(torch.nn.Module):
    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, *args):
        self.calls += 1
        return self.module(*args)


def test_an_encoding_is_computed_once_and_read_by_two_networks_with_its_gradient():
    torch.manual_seed(0)
    enc = Counted(torch.nn.Linear(4, 5))
    cls, par = torch.nn.Linear(5, 3), torch.nn.Linear(5, 2)
    model = NeSyModel(ENCODED, {"enc": enc, "cls": cls, "par": par})
    x = torch.randn(7, 4)
    result = model("pair(X, Y, P)", {"X": x})
    assert enc.calls == 1
    e = enc.module(x)
    expected = cls(e).log_softmax(1)[:, :, None] + par(e).log_softmax(1)[:, None, :]
    columns = [result.answers.index((y, p)) for y in (0, 1, 2) for p in ("even", "odd")]
    got = result.log_probs[:, columns]
    torch.testing.assert_close(got, expected.reshape(7, 6), rtol=0, atol=1e-6)
    (got[:, 0].sum()).backward()
    reference = enc.module.weight.grad.clone()
    enc.module.weight.grad = None
    expected.reshape(7, 6)[:, 0].sum().backward()
    torch.testing.assert_close(reference, enc.module.weight.grad)


def test_tensor_network_declarations_are_checked():
    with pytest.raises(NesyError, match="output Z of nn\\(enc,\\[X\\],Z\\) must be a variable that appears in"):
        Program.from_string("nn(enc, [X], Z) :: encode(X, E).")
    with pytest.raises(NesyError, match="network enc is declared both with nn/3"):
        Program.from_string("nn(enc, [X], E) :: encode(X, E).\nnn(enc, [X], Y, [a, b]) :: kind(X, Y).")
    program = Program.from_string(ENCODED)
    assert [(n.network, n.is_tensor, n.is_fact) for n in program.neural] == [
        ("enc", True, False), ("cls", False, False), ("par", False, False)]
    bad = NeSyModel(ENCODED, {"enc": lambda x: x.sum(), "cls": torch.nn.Linear(5, 3), "par": torch.nn.Linear(5, 2)})
    with pytest.raises(NesyError, match="network enc \\(nn/3\\) must return a tensor \\[batch, ...\\]; got \\(\\)"):
        bad("pair(X, Y, P)", {"X": torch.randn(2, 4)})


WORDS = ["gets", "finds", "wins", "loses", "gives", "eats"]  # the first three add, the others subtract

CALCULATOR = """
nn(reader, [Text], E) :: read(Text, E).
nn(op_net, [E], Op, [plus, minus]) :: op(E, Op).
calc(Text, X, Y, Z) :- read(Text, E), op(E, Op), apply(Op, X, Y, Z).
apply(plus, X, Y, Z) :- Z is X + Y.
apply(minus, X, Y, Z) :- Z is X - Y.
"""


class BagOfWords(torch.nn.Module):
    """Reads a ProbLog string term, as DeepProbLog's WAP rnn does: one embedding per known word, summed."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(len(WORDS), 8)
        self.calls = 0

    def forward(self, text: Term) -> torch.Tensor:
        self.calls += 1
        words = [WORDS.index(w) for w in str(text.value).strip('"').split() if w in WORDS]
        return self.embedding(torch.tensor(words)).sum(0)


def _problems(n: int, seed: int) -> list[Query]:
    generator = torch.Generator().manual_seed(seed)
    queries = []
    for word, x, y in torch.stack([torch.randint(0, len(WORDS), (n,), generator=generator),
                                   torch.randint(5, 10, (n,), generator=generator),
                                   torch.randint(0, 5, (n,), generator=generator)], 1).tolist():
        z = x + y if word < 3 else x - y
        text = Constant(f'"Ann has {x} apples and {WORDS[word]} {y} ; how many now ?"')
        queries.append(Query(Term("calc", text, Constant(x), Constant(y), Constant(z))))
    return queries


def test_deepproblog_wap_style_networks_read_string_terms_and_learn_the_operator():
    """DeepProbLog's WAP pattern: an nn/3 reader of the problem's text feeds a classifier; trained by the answers
    alone it learns which words add; its test model with Network(k=1) grounds only the top operator."""
    torch.manual_seed(0)
    reader = BagOfWords()
    from nesy_gedi.deepproblog.utils.standard_networks import MLP

    op_net = MLP(8, 2)
    params = list(reader.parameters()) + list(op_net.parameters())
    optimizer = torch.optim.Adam(params, lr=0.05)
    model = Model(CALCULATOR, [Network(reader, "reader", optimizer), Network(op_net, "op_net")], load=False)
    model.set_engine(ExactEngine(model), cache=True)
    test_model = Model(CALCULATOR, [Network(reader, "reader"), Network(op_net, "op_net", k=1)], load=False)
    test = QueryDataset(_problems(30, 1))
    before = get_confusion_matrix(test_model, test, verbose=0).accuracy()
    train_model(model, DataLoader(QueryDataset(_problems(120, 0)), 8, True, seed=0), 3, verbose=0)
    reader.calls = 0
    after = get_confusion_matrix(test_model, test, verbose=0).accuracy()
    assert after == 1.0 > before
    assert reader.calls <= 2 * len(test)  # once for the top-k choice, once for the circuit
    with torch.no_grad():
        ((answer, p),) = test_model.solve([_problems(1, 2)[0].variable_output()])[0].result.items()
    assert float(p) > 0.9


def test_the_input_resolver_refuses_a_query_input_outside_a_query():
    networks = {"enc": torch.nn.Linear(4, 5), "cls": torch.nn.Linear(5, 3), "par": torch.nn.Linear(5, 2)}
    model = NeSyModel(ENCODED, networks)
    resolve = model.input_resolver()
    with pytest.raises(NesyError, match="network cls is called on \\$in\\(0\\), a query input, outside a query"):
        resolve(Term("$in", Constant(0)), "cls")
    assert resolve(Constant(3), "cls").tolist() == [3]
