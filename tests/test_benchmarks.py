"""The benchmark's exact evaluation and peer set-up, checked without the peers themselves."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
import torch

from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.errors import DataError
from nesy_gedi.networks import MnistCNN

ROOT = Path(__file__).resolve().parents[1]


def load_run():
    spec = importlib.util.spec_from_file_location("benchmark_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_most_probable_sum_equals_enumeration():
    """N=2: scoring every candidate sum through multi_add.pl gives the argmax of P(sum) by enumeration."""
    run = load_run()
    torch.manual_seed(0)
    net = MnistCNN().eval()
    data = AdditionDataset(load_mnist("test"), n_digits=2, seed=0, size=4)
    best = run.most_probable_sums(run.logit_model(2), net, data, rows_per_chunk=300)
    with torch.no_grad():
        probs = net(data.images(torch.arange(4)).view(-1, 1, 28, 28)).softmax(1).view(4, 2, 2, 10).double()
    for e in range(4):
        p_sum = torch.zeros(199, dtype=torch.float64)
        for a1, a0, b1, b0 in itertools.product(range(10), repeat=4):
            p = probs[e, 0, 0, a1] * probs[e, 0, 1, a0] * probs[e, 1, 0, b1] * probs[e, 1, 1, b0]
            p_sum[10 * (a1 + b1) + a0 + b0] += p
        assert int(best[e]) == int(p_sum.argmax())


def test_missing_meta_program_is_reported(tmp_path, monkeypatch):
    """DeepStochLog's missing data file: a given path that does not exist is named."""
    from nesy_gedi import peers

    package = tmp_path / "site" / "deepstochlog"
    package.mkdir(parents=True)
    (package / "logic.py").write_text("from collections import Sized\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    monkeypatch.setattr(peers.shutil, "which", lambda name: "/usr/bin/swipl")
    monkeypatch.setattr(peers, "_site_packages", lambda python, name: package)
    with pytest.raises(DataError, match="nosuch.pl: no such file"):
        peers.dsl_python(venv, tmp_path / "nosuch.pl")
    assert (package / "logic.py").read_text() == "from collections.abc import Sized\n"
    (tmp_path / "meta.pl").write_text("main.\n")
    peers.dsl_python(venv, tmp_path / "meta.pl")
    assert (package / peers.DSL_META_PROGRAM).read_text() == "main.\n"
