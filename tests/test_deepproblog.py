"""``nesy_gedi.deepproblog``: DeepProbLog's API on our circuits (exact numbers, its conventions, its file format)."""

from zipfile import ZipFile

import pytest
import torch
from problog.logic import Constant, Term, term2list

from nesy_gedi import NesyError
from nesy_gedi.deepproblog import (ApproximateEngine, DataLoader, Dataset, ExactEngine, Model, Network, Query,
                                   get_confusion_matrix, train_model)

PROGRAM = """
nn(net, [X], Y, [0, 1, 2]) :: digit(X, Y).
nn(coin, [X]) :: heads(X).
sum(X, Y, Z) :- digit(X, A), digit(Y, B), Z is A + B.
above(X, T) :- digit(X, D), D > T.
lucky(X) :- heads(X), digit(X, 2).
"""


class Probabilities(torch.nn.Module):
    """Returns fixed probabilities per input id, as a DeepProbLog network returns a softmax / sigmoid."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x.long().view(-1)]


class Pairs(Dataset):
    def __init__(self, pairs, targets, functor="sum"):
        self.pairs, self.targets, self.functor = pairs, targets, functor

    def __len__(self):
        return len(self.pairs)

    def to_query(self, i):
        a, b = self.pairs[i]
        subst = {Term("a"): Term("tensor", Term("src", Constant(a))), Term("b"): Term("tensor", Term("src", Constant(b)))}
        return Query(Term(self.functor, Term("a"), Term("b"), Constant(self.targets[i])), subst)


def _model(batching=True):
    torch.manual_seed(0)
    digits = torch.softmax(torch.randn(4, 3, dtype=torch.float64), 1)
    coins = torch.sigmoid(torch.randn(4, dtype=torch.float64))
    net = Network(Probabilities(digits), "net", batching=batching)
    coin = Network(Probabilities(coins), "coin", batching=batching)
    model = Model(PROGRAM, [net, coin], load=False)
    model.set_engine(ExactEngine(model), cache=True)
    model.add_tensor_source("src", {(Constant(i),): torch.tensor(i) for i in range(4)})
    return model, digits, coins


@pytest.mark.parametrize("batching", [True, False])
def test_solve_gives_exact_probabilities_from_the_networks_own_outputs(batching):
    model, digits, coins = _model(batching)
    queries = Pairs([(0, 1), (2, 3), (1, 1)], [2, 3, 0]).to_queries()
    results = model.solve(queries)
    for (a, b), target, result in zip([(0, 1), (2, 3), (1, 1)], [2, 3, 0], results):
        if a == b:  # one image twice is one ground atom digit(tensor(src(a)), _): both digits are equal
            expected = sum(digits[a, i] for i in range(3) if 2 * i == target)
        else:
            expected = sum(digits[a, i] * digits[b, target - i] for i in range(3) if 0 <= target - i <= 2)
        ((term, p),) = result.result.items()
        assert str(term) == f"sum(tensor(src({a})),tensor(src({b})),{target})"
        assert float(p.detach()) == pytest.approx(float(expected), abs=1e-12)
    lucky = model.solve([Query(Term("lucky", Term("tensor", Term("src", Constant(3)))))])[0]
    assert float(next(iter(lucky.result.values())).detach()) == pytest.approx(float(coins[3] * digits[3, 2]), abs=1e-9)


def test_variable_outputs_share_one_circuit_and_bound_outputs_fall_back_to_ground_queries():
    model, digits, _ = _model()
    queries = Pairs([(0, 1), (2, 3), (1, 1), (3, 0)], [2, 3, 0, 4]).to_queries()
    log_p, kept = model.log_likelihoods(queries)
    assert set(model.nesy.compiled) == {"sum($in(0),$in(1),_O0)", "sum($in(0),$in(0),_O0)"}  # all sums at once
    with torch.no_grad():
        expected = [float(r.result[q.substitute().query]) for r, q in zip(model.solve(queries), queries)]
    assert kept == [0, 1, 2, 3] and torch.allclose(log_p.exp(), torch.tensor(expected, dtype=log_p.dtype))
    above = Pairs([(0, 0), (1, 1)], [0, 1], functor="above").to_queries()  # 'D > T' needs T bound
    above = [Query(Term("above", Term("a"), Constant(t)), {Term("a"): q.substitution[Term("a")]}) for q, t in zip(above, [0, 1])]
    log_p, kept = model.log_likelihoods(above)
    assert kept == [0, 1]
    with torch.no_grad():
        assert float(log_p[0].exp()) == pytest.approx(float(digits[0, 1] + digits[0, 2]), abs=1e-9)
        assert float(log_p[1].exp()) == pytest.approx(float(digits[1, 2]), abs=1e-9)


def test_dataloader_orders_like_deepproblog():
    data = Pairs([(i % 4, (i + 1) % 4) for i in range(5)], [0] * 5)
    assert [len(b) for b in DataLoader(data, 2, False)] == [2, 2, 1]
    first = [str(q.substitution) for batch in DataLoader(data, 2, True, seed=3) for q in batch]
    again = [str(q.substitution) for batch in DataLoader(data, 2, True, seed=3) for q in batch]
    assert first == again and sorted(first) == sorted(str(q.substitution) for q in data.to_queries())


def test_unsupported_features_say_so():
    model, _, _ = _model()
    with pytest.raises(NesyError, match="not supported: ApproximateEngine"):
        ApproximateEngine(model, 1, ApproximateEngine.geometric_mean, exploration=False)
    with pytest.raises(NesyError, match="not supported: embeddings"):
        Model(PROGRAM, [], embeddings=object(), load=False)
    loader = DataLoader(Pairs([(0, 1)], [1]), 1)
    with pytest.raises(NesyError, match="not supported: with_negatives"):
        train_model(model, loader, 1, with_negatives=True)


class Lookup(torch.nn.Module):
    """A learnable softmax per input id (6 ids, 3 digits)."""

    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(6, 3))

    def forward(self, x):
        return torch.softmax(self.logits[x.long().view(-1)], 1)


SUM_PAIRS = [(a, b) for a in range(6) for b in range(6)]


def _learnable_model() -> tuple[Model, Lookup, Pairs]:
    """A model whose digit network must learn id mod 3 from sums of two ids, and its 36 sums."""
    torch.manual_seed(0)
    module = Lookup()
    net = Network(module, "net", batching=True)
    net.optimizer = torch.optim.Adam(module.parameters(), lr=0.1)
    coin = Network(Probabilities(torch.full((6,), 0.5)), "coin", batching=True)
    model = Model(PROGRAM, [net, coin], load=False)
    model.set_engine(ExactEngine(model), cache=True)
    model.add_tensor_source("src", {(Constant(i),): torch.tensor(i) for i in range(6)})
    return model, module, Pairs(SUM_PAIRS, [a % 3 + b % 3 for a, b in SUM_PAIRS])


def test_train_model_learns_and_state_round_trips(tmp_path, capsys):
    """Sums of two 'images' (ids) whose digit is id mod 3: the network must learn the digits from sums alone."""
    model, module, data = _learnable_model()
    train = train_model(model, DataLoader(data, 4, True, seed=0), 30, log_iter=90)
    assert "Iteration:" in capsys.readouterr().out and train.logger.get_attribute("loss")
    accuracy = get_confusion_matrix(model, data).accuracy()
    assert accuracy > 0.95
    assert (module.logits.argmax(1) == torch.arange(6) % 3).all()
    model.save_state(tmp_path / "state.pth", complete=True)
    assert set(ZipFile(tmp_path / "state.pth").namelist()) == {"parameters", "net", "coin"}
    saved = module.logits.detach().clone()
    with torch.no_grad():
        module.logits.zero_()
    model.load_state(tmp_path / "state.pth")
    assert torch.equal(module.logits.detach(), saved)


def test_train_model_resumes_where_it_stopped(tmp_path):
    """3 epochs in one go == 1 epoch, then resume=True to 3 epochs in a fresh process-like set-up."""
    def fresh():
        model, module, data = _learnable_model()
        return model, module, DataLoader(data, 4, True, seed=0)

    model, reference, loader = fresh()
    whole = train_model(model, loader, 3, verbose=0)
    model, module, loader = fresh()
    train_model(model, loader, 1, verbose=0, out=tmp_path)
    assert not torch.equal(module.logits, reference.logits)
    model, module, loader = fresh()
    train = train_model(model, loader, 3, verbose=0, out=tmp_path, resume=True)
    assert train.i == whole.i and torch.allclose(module.logits, reference.logits, atol=1e-6)
    with pytest.raises(NesyError, match="needs out="):
        train_model(model, loader, 1, resume=True)
    with pytest.raises(NesyError, match="no checkpoint"):
        train_model(model, loader, 1, resume=True, out=tmp_path / "none")


SORT = """
nn(swap_net, [X, Y], Z, [no_swap, swap]) :: swap(X, Y, Z).
step(X, Y, X, Y) :- swap(X, Y, no_swap).
step(X, Y, Y, X) :- swap(X, Y, swap).
pass([X], [], X).
pass([A, B | T], [Lo | Rest], Max) :- step(A, B, Lo, Hi), pass([Hi | T], Rest, Max).
sorted([], Acc, Acc).
sorted(L, Acc, S) :- pass(L, L2, Max), sorted(L2, [Max | Acc], S).
forth_sort(L, S) :- sorted(L, [], S).
"""


def _sort_queries(n: int, length: int, seed: int) -> list[Query]:
    from problog.logic import list2term

    generator = torch.Generator().manual_seed(seed)
    lists = torch.randint(0, 10, (n, length), generator=generator).tolist()
    def as_list(digits):
        return list2term([Constant(d) for d in digits])

    return [Query(Term("forth_sort", as_list(xs), as_list(sorted(xs)))) for xs in lists]


def test_numbers_of_the_program_are_network_inputs_and_forth_sort_learns_to_swap():
    """DeepProbLog's Forth Sort: the swap network reads the digits of the lists themselves (``swap(4, 2, Z)``), one
    call per pair; trained on sorted pairs, it sorts unseen lists of three, and with ``k=1`` lists of seven."""
    from nesy_gedi.deepproblog.dataset import QueryDataset
    from nesy_gedi.deepproblog.examples.Forth import EncodeModule

    torch.manual_seed(0)
    module = EncodeModule(20, 20, 2)
    model = Model(SORT, [Network(module, "swap_net", optimizer=torch.optim.Adam(module.parameters(), 0.1))],
                  load=False)
    model.set_engine(ExactEngine(model), cache=True)
    train = QueryDataset(_sort_queries(200, 2, 0))
    test = QueryDataset(_sort_queries(40, 3, 1))
    before = get_confusion_matrix(model, test, verbose=0).accuracy()
    train_model(model, DataLoader(train, 16, True, seed=0), 10, verbose=0)
    with torch.no_grad():
        right = sum(int(module(a, b).argmax()) == int(a > b) for a in range(10) for b in range(10) if a != b)
    assert right >= 85, right  # of the 90 pairs of distinct digits
    assert get_confusion_matrix(model, test, verbose=0).accuracy() >= 0.9 > before
    with pytest.raises(NesyError, match="network swap_net failed on inputs of shape 1 terms, \\(1,\\)"):
        model.solve([Query(Term("swap", Term("foo"), Constant(1), Term("swap")))])
    # Network(k=1), DeepProbLog's test model: in eval mode only the top swap of each pair is grounded, so lists of
    # seven digits (exact: thousands of answers) have one answer each; in training mode it is exact.
    greedy = Model(SORT, [Network(module, "swap_net", k=1)], load=False)
    query = _sort_queries(1, 3, 2)[0]
    exact_p = {str(k): float(v.detach()) for k, v in model.solve([query.variable_output()])[0].result.items()}
    greedy.train()
    assert {str(k): float(v.detach()) for k, v in greedy.solve([query.variable_output()])[0].result.items()} == \
        pytest.approx(exact_p, abs=1e-9)
    greedy.eval()
    ((answer, p),) = greedy.solve([query.variable_output()])[0].result.items()
    assert float(p.detach()) <= exact_p[str(answer)] + 1e-9 and str(answer) == max(exact_p, key=exact_p.get)
    for query in _sort_queries(10, 7, 3):  # the one answer is bubble sort along the network's top swaps
        ((answer, _),) = greedy.solve([query.variable_output()])[0].result.items()
        digits = [int(d) for d in term2list(query.query.args[0])]
        assert [int(d) for d in term2list(answer.args[1])] == _greedy_bubble_sort(module, digits)


def _greedy_bubble_sort(module, digits: list[int]) -> list[int]:
    """SORT's bubble sort taking the network's most probable swap for each pair."""
    done: list[int] = []
    while digits:
        rest, current = [], digits[0]
        for following in digits[1:]:
            with torch.no_grad():
                swap = int(module(current, following).argmax()) == 1
            low, current = (following, current) if swap else (current, following)
            rest.append(low)
        done, digits = [current] + done, rest
    return done
