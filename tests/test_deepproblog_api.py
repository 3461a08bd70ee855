"""More of DeepProbLog's public API: datasets and mutators, query files, image folders, stop conditions, the mse loss,
``Network(k=...)``, its loss module and standard networks."""

import importlib
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from problog.logic import Constant, Term

from nesy_gedi import NesyError
from nesy_gedi.deepproblog import DataLoader, Network, Query, train_model
from nesy_gedi.deepproblog.dataset import (Extension, Fold, ImageDataset, MutatingDataset, NoiseMutatorDecorator,
                                           NumericIncorrectOutputMutator, QueryDataset, Subset, load)
from nesy_gedi.deepproblog.loss import JSD, MSE, EntropyLoss, InfoLoss
from nesy_gedi.deepproblog.utils import count_parameters, nth
from nesy_gedi.deepproblog.utils.logger import Logger
from nesy_gedi.deepproblog.utils.standard_networks import MLP, SmallNet, smallnet
from nesy_gedi.deepproblog.utils.stop_condition import (And, EpochStop, Or, StopCondition, StopOnNoChange,
                                                        StopOnPlateau, Threshold)

from .test_deepproblog import Pairs, _model


class Logged:
    """A stand-in train object: a logger with one series."""

    def __init__(self, name: str, values) -> None:
        self.logger, self.epoch = Logger(), 0
        for i, v in enumerate(values):
            self.logger.log(name, i, v)


def stops_at(condition, name: str, values) -> int | None:
    """The number of logged values after which ``condition`` first stops (it is asked after each new one)."""
    train_object = Logged(name, [])
    for i, value in enumerate(values):
        train_object.logger.log(name, i, value)
        if condition.is_stop(train_object):
            return i + 1
    return None


def test_threshold_plateau_and_no_change():
    assert not Threshold("acc", 0.9).is_stop(Logged("acc", []))
    assert stops_at(Threshold("acc", 0.9, duration=2), "acc", [0.5, 0.91, 0.85, 0.95, 0.96, 0.2]) == 5
    assert stops_at(StopOnPlateau("acc", patience=3, warm_up=2), "acc", [0.1 * i for i in range(1, 12)]) is None
    assert stops_at(StopOnPlateau("acc", patience=3, warm_up=2), "acc", [0.1, 0.2, 0.3, 0.5, 0.5, 0.501, 0.5]) == 6
    assert stops_at(StopOnNoChange("loss", patience=2, warm_up=1), "loss", [3.0, 1.0, 1.0, 1.0, 1.0]) == 4
    assert stops_at(StopOnNoChange("loss", patience=2, warm_up=1), "loss", [3.0, 1.0, 0.5, 0.2, 0.1]) is None


def test_conditions_combine_with_or_and():
    done, not_done = EpochStop(0), EpochStop(5)
    obj = Logged("x", [])
    assert isinstance(done | not_done, Or) and isinstance(done + not_done, Or)
    assert isinstance(done & not_done, And) and isinstance(done * not_done, And)
    assert (done | not_done).is_stop(obj) and not (done & not_done).is_stop(obj)
    assert str(EpochStop(2) | Threshold("acc", 0.9)) == "for 2 epoch(s) or until acc reaches 0.9"


class AfterUpdates(StopCondition):
    def __init__(self, n: int) -> None:
        self.n = n

    def is_stop(self, train_object) -> bool:
        return train_object.i > self.n


def test_train_model_stops_when_the_condition_says_so(capsys):
    model, _, _ = _model()
    loader = DataLoader(Pairs([(i % 4, (i + 1) % 4) for i in range(8)], [1] * 8), 2, shuffle=False)
    result = train_model(model, loader, AfterUpdates(5) | EpochStop(100), log_iter=1)
    assert result.i == 6 and result.epoch == 1  # 5 updates: one epoch of 4 and one more
    assert len(result.logger.get_attribute("loss")) == 5
    assert "Training  for 100 epoch(s)" not in capsys.readouterr().out
    with pytest.raises(NesyError, match="not supported: stop condition 'soon'"):
        train_model(model, loader, "soon")


def test_mse_loss_is_the_squared_error_of_the_query_probability():
    model, digits, _ = _model()
    batch = Pairs([(0, 1), (2, 3)], [1, 2]).to_queries()
    with torch.no_grad():
        log_p, _ = model.log_likelihoods(batch)
        expected = (log_p.exp() - 1).pow(2).mean()
        from nesy_gedi.deepproblog.train import TrainObject

        assert float(TrainObject(model).get_loss(batch, "mse")) == pytest.approx(float(expected), rel=1e-9)
    loader = DataLoader(Pairs([(0, 1)], [1]), 1)
    train_model(model, loader, 1, loss_function_name="mse", verbose=0)
    with pytest.raises(NesyError, match="not supported: loss_function_name='hinge'"):
        train_model(model, loader, 1, loss_function_name="hinge")


def test_network_k_is_accepted_and_inference_stays_exact():
    module = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Softmax(-1))
    assert Network(module, "net", k=1).k == 1


def test_subsets_extensions_and_folds():
    data = Pairs([(i % 4, (i + 1) % 4) for i in range(7)], list(range(7)))
    queries = [str(q) for q in data.to_queries()]
    assert [str(q) for q in Subset(data, 2, 5).to_queries()] == queries[2:5]
    assert [str(q) for q in data.subset(2, 5).to_queries()] == queries[2:5]
    assert [str(q) for q in (data.subset(2) + data.subset(5, 7)).to_queries()] == queries[:2] + queries[5:]
    assert isinstance(data + data, Extension) and len(data + data) == 14
    for i in range(3):
        train, held = data.fold(3, i)
        assert isinstance(held, Fold)
        assert sorted(str(q) for q in train.to_queries() + held.to_queries()) == sorted(queries)
        assert [str(q) for q in held.to_queries()] == queries[i::3]
    with pytest.raises(NotImplementedError, match="Pairs does not define __getitem__"):
        data[0]


def test_mutators_are_deterministic_per_seed_and_index():
    data = Pairs([(0, 1)] * 50, [1] * 50)
    wrong = NumericIncorrectOutputMutator(list(range(7)), change_p=True, seed=3)
    noisy = MutatingDataset(data, NoiseMutatorDecorator(0.3, wrong, seed=5))
    first, again = noisy.to_queries(), noisy.to_queries()
    assert [str(q) for q in first] == [str(q) for q in again]
    changed = [q for q in first if q.output_values()[0] != Constant(1)]
    assert 5 < len(changed) < 25 and all(q.p == 0.0 for q in changed)
    assert all(q.p == 1.0 for q in first if q.output_values()[0] == Constant(1))


def test_query_files_round_trip(tmp_path):
    data = Pairs([(0, 1), (2, 3)], [1, 5])
    with open(tmp_path / "queries.txt", "w") as f:
        data.write_to_file(f)
    loaded = QueryDataset(tmp_path / "queries.txt")
    assert len(loaded) == 2 and [str(q) for q in loaded.to_queries()] == [str(q) for q in data.to_queries()]
    assert len(load(tmp_path / "queries.txt", max_size=1)) == 1
    plain = tmp_path / "plain.txt"
    plain.write_text("0.7::sum(a, b, 3).\n")
    (query,) = load(plain)
    assert query.p == pytest.approx(0.7) and query.query == Term("sum", Term("a"), Term("b"), Constant(3))
    with pytest.raises(NesyError, match="not found"):
        QueryDataset(tmp_path / "none.txt")


class Pictures(ImageDataset):
    def __len__(self):
        return 2

    def to_query(self, i):
        return Query(Term("seen", Constant(i)))


def test_image_folders(tmp_path):
    for i, colour in enumerate(("red", "blue")):
        Image.new("RGB", (4, 3), colour).save(tmp_path / f"{i}.png")
    pictures = Pictures(tmp_path, transform=lambda img: torch.from_numpy(np.asarray(img).copy()).float())
    assert pictures[1].shape == (3, 4, 3) and pictures[(0, "ignored")][0, 0].tolist() == [255.0, 0.0, 0.0]
    assert len(list(pictures)) == 2
    with pytest.raises(NesyError, match="not found"):
        Pictures(tmp_path / "nowhere")[0]


def test_losses_and_networks():
    one_hot = torch.eye(4)
    assert float(EntropyLoss()(one_hot)) == pytest.approx(0.0, abs=1e-6)
    assert float(InfoLoss()(one_hot)) == pytest.approx(0.0, abs=1e-6)
    assert float(JSD()(one_hot)) == pytest.approx(0.0, abs=1e-6)
    assert MSE(0.25, 1.0) == (0.5625, -1.5)
    mlp = MLP(5, 8, 3)
    out = mlp(torch.randn(4, 5))
    assert out.shape == (4, 3) and torch.allclose(out.sum(1), torch.ones(4))
    assert count_parameters(mlp) == 5 * 8 + 8 + 8 * 3 + 3 and nth(iter("abc"), 1) == "b"
    small = SmallNet(num_classes=2, size=(64, 64))
    assert small(torch.randn(2, 3, 64, 64)).shape == (2, 2)
    with pytest.raises(NesyError, match="not supported: smallnet\\(pretrained=True\\)"):
        smallnet(pretrained=True)


DEEPPROBLOG_MODULES = [  # every module of DeepProbLog 2.1.0's package, examples aside
    "arithmetic_circuit", "dataset", "embeddings", "engines", "engines.approximate_engine", "engines.builtins",
    "engines.engine", "engines.exact_engine", "engines.prolog_engine", "engines.prolog_engine.engine",
    "engines.prolog_engine.heuristics", "engines.prolog_engine.swi_program", "engines.prolog_engine.swip",
    "evaluate", "loss", "model", "network", "optimizer", "query", "semiring", "semiring.graph_semiring", "solver",
    "tensor", "train", "utils", "utils.cache", "utils.confusion_matrix", "utils.logger", "utils.standard_networks",
    "utils.stop_condition",
]


@pytest.mark.parametrize("name", DEEPPROBLOG_MODULES)
def test_every_deepproblog_module_path_imports(name):
    import importlib

    assert importlib.import_module(f"nesy_gedi.deepproblog.{name}")


def test_what_is_not_supported_says_so_when_called():
    from nesy_gedi.deepproblog.arithmetic_circuit import ArithmeticCircuit
    from nesy_gedi.deepproblog.embeddings import Embedding
    from nesy_gedi.deepproblog.engines import builtins, exact_engine
    from nesy_gedi.deepproblog.engines.engine import Engine
    from nesy_gedi.deepproblog.engines.prolog_engine.swi_program import SWIProgram
    from nesy_gedi.deepproblog.solver import Solver
    from nesy_gedi.deepproblog.utils.cache import Cache

    model, _, _ = _model()
    calls = {
        "ArithmeticCircuit": lambda: ArithmeticCircuit(None, None),
        "embeddings": lambda: Embedding(3),
        "tensor builtin rbf": lambda: builtins.rbf(1, 2),
        "exact_engine.wrap_tensor": lambda: exact_engine.wrap_tensor(1, None),
        "foreign predicate f/2": lambda: Engine(model).register_foreign(print, "f", 1, 1),
        "ApproximateEngine": lambda: SWIProgram(),
        "Solver": lambda: Solver(model, None),
        "Cache\\(cache_root": lambda: Cache(str, True, "/tmp"),
    }
    for feature, call in calls.items():
        with pytest.raises(NesyError, match=f"not supported: {feature}"):
            call()


def test_small_pieces_that_work():
    from nesy_gedi.deepproblog.engines.prolog_engine.heuristics import GeometricMean
    from nesy_gedi.deepproblog.semiring.graph_semiring import is_exact_one, is_exact_zero
    from nesy_gedi.deepproblog.tensor import TensorStore
    from nesy_gedi.deepproblog.utils import config_to_string, get_configuration, parse, split, term2list2
    from nesy_gedi.deepproblog.utils.cache import Cache

    store = TensorStore()
    assert store.store(torch.ones(1)) == 0 and store.store(torch.zeros(1), Term("a")) == Term("a")
    assert float(store[0]) == 1.0
    calls = []
    cache = Cache(lambda x: calls.append(x) or x * 2, True, None)
    assert cache[3] == cache[3] == 6 and calls == [3]
    assert is_exact_zero(0.0) and is_exact_one(torch.tensor([1.0])) and not is_exact_one(0.5)
    assert GeometricMean().get_hyperparameters() == {"type": "geometric_mean"}
    grid = {"lr": [1, 2], "batch": [8, 16, 32]}
    assert [get_configuration(grid, i) for i in (0, 1, 2, 5)] == [
        {"lr": 1, "batch": 8}, {"lr": 2, "batch": 8}, {"lr": 1, "batch": 16}, {"lr": 2, "batch": 32}]
    assert config_to_string({"lr": 1, "batch": 8}) == "lr_1_batch_8"
    assert split("a(b,c),d", ",") == ["a(b,c)", "d"]
    assert term2list2(parse("p([1, 2]).").args[0]) == [Constant(1), Constant(2)]


def test_logger_files_unions_and_aggregates(tmp_path):
    from nesy_gedi.deepproblog.utils.logger import aggregate_loggers, equalize

    logger = Logger()
    logger.comment("run 1")
    for i, (loss, acc) in enumerate([(2.0, 0.1), (1.0, None), (0.5, 0.6)]):
        logger.log("loss", i * 10, loss)
        if acc is not None:
            logger.log("acc", i * 10, acc)
    assert logger.get_union("loss", "acc") == ([0, 20], [(2.0, 0.1), (0.5, 0.6)])
    logger.write_to_file(str(tmp_path / "run"))
    again = Logger()
    again.read_from_file(tmp_path / "run.log")
    assert again.comments == ["run 1"] and again["loss"] == logger["loss"] and again["acc"] == logger["acc"]
    assert equalize([([0, 2], [1.0, 3.0]), ([1], [5.0])]) == ([0, 1, 2], [[1.0, 1.0, 3.0], [0, 5.0, 5.0]])
    t, stats = aggregate_loggers([logger, again], "loss", "acc", percentiles=(50,))
    assert list(t) == [0.5, 1.0, 2.0] and stats.tolist() == [[0.6, 0.1, 0.1]]  # acc carried over at loss 1.0


def test_model_and_train_object_extras():
    from nesy_gedi.deepproblog.network import get_tensor_function
    from nesy_gedi.deepproblog.train import TrainObject

    model, _, _ = _model()
    data = Pairs([(0, 1), (2, 3), (1, 0)], [2, 2, 2])
    report = model.ground_dataset(data)
    assert len(report["ground_times"]) == len(report["compile_times"]) == 1  # one template for all three
    assert report["total_time"] >= 0
    term = Term("tensor", Term("src", Constant(2)))
    assert int(get_tensor_function(model.networks["net"])(term)[0]) == 2
    with pytest.raises(NesyError, match="not supported: embeddings"):
        model.get_embedding(Term("a"))
    train_object = TrainObject(model)
    with pytest.raises(NesyError, match="not supported: with_negatives"):
        train_object.get_loss_with_negatives(data.to_queries(), "cross_entropy")
    train_object.i, train_object.accumulated_loss = 4, 2.0
    train_object.log(log_iter=2, verbose=1)
    assert train_object.logger["loss"] == ([4], [1.0])


def test_results_tables():
    from nesy_gedi.deepproblog.utils import Table

    table = Table("method", "seed", "acc")
    for method, seed, acc in [("a", 0, 0.5), ("a", 1, 0.7), ("b", 0, 0.9)]:
        table.store(method, seed, acc)
    table.store(method="b", seed=1, acc=0.9)
    text = table.format("seed", "method", "acc")
    assert text.splitlines()[1].split("\t") == ["a", "0.50000 ± 0.00000", "0.70000 ± 0.00000"]
    assert "0.90000" in text.splitlines()[2]
    with pytest.raises(ValueError, match="not equal to table dimensions"):
        table.store(1, 2)


def _compatible(theirs: list, ours) -> str | None:
    """``None`` when our parameters take every call DeepProbLog's take: the same names and kinds in order, defaults
    where theirs have them, and only optional extras."""
    params = list(ours.parameters.values())
    for i, (name, kind, has_default) in enumerate(theirs):
        if i >= len(params) or params[i].name != name or str(params[i].kind) != kind:
            return f"parameter {i} should be {name} ({kind}), ours are {[p.name for p in params]}"
        if has_default and params[i].default is inspect.Parameter.empty:
            return f"{name} has no default"
    extra = [p.name for p in params[len(theirs):]
             if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return f"required extras {extra}" if extra else None


def test_every_public_name_of_deepproblog_2_1_0_exists_with_its_parameters():
    """Every public function, class and method of DeepProbLog 2.1.0's modules (``tests/deepproblog_api.json``, read
    from the installed package) exists in ``nesy_gedi.deepproblog`` under the same module path and takes the same
    arguments (101 names, their methods; instance attributes are not listed there)."""
    snapshot = json.loads((Path(__file__).parent / "deepproblog_api.json").read_text())
    problems = []
    for key, spec in snapshot.items():
        module, name = key.split(":")
        obj = getattr(importlib.import_module(f"nesy_gedi.deepproblog.{module}"), name, None)
        if obj is None:
            problems.append(f"{key}: missing")
            continue
        signatures = [("", obj, spec["params"])] + [(f".{m}", getattr(obj, m, None), s)
                                                    for m, s in spec["members"].items() if s != "attr"]
        for suffix, target, theirs in signatures:
            if target is None:
                problems.append(f"{key}{suffix}: missing")
                continue
            if not isinstance(theirs, list):
                continue
            theirs = [p if len(p) == 3 else [*p, False] for p in theirs]
            try:
                ours = inspect.signature(target)
            except (TypeError, ValueError):
                continue
            problem = _compatible(theirs, ours)
            if problem:
                problems.append(f"{key}{suffix}: {problem}")
    assert not problems, "\n".join(problems)
