"""GEDI pretraining on real MNIST finds digit clusters without labels (small budget)."""

import importlib.util
import json
from pathlib import Path

import torch

from nesy_gedi.data import load_mnist
from nesy_gedi.gedi import energy
from nesy_gedi.networks import MnistCNN

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tasks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pretraining_clusters_digits_and_samples_move_toward_data(tmp_path):
    results = load("gedi_pretrain").main([
        "--max-steps", "2400", "--gen-after", "2000", "--sgld-steps", "5", "--buffer-size", "2000",
        "--out", str(tmp_path), "--no-progress", "--seed", "0",
    ])
    assert results["steps"] == 2400
    assert results["nmi"] > 0.5 and results["matched_accuracy"] > 0.5
    assert results["collapse"] == 0.0
    saved = torch.load(tmp_path / "mnist_net.pt")
    net = MnistCNN()
    net.load_state_dict(saved["state_dict"])
    assert sorted(saved["cluster_to_digit"]) == list(range(10))
    assert json.loads((tmp_path / "results.json").read_text())["nmi"] == results["nmi"]
    assert (tmp_path / "sgld_samples.png").stat().st_size > 1000
    with torch.no_grad():
        data = energy(net(load_mnist("test").normalized(torch.arange(256)))).mean()
        noise = energy(net(torch.rand(256, 1, 28, 28) * 2 - 1)).mean()
    assert data < noise  # the generative term gives data lower energy than noise
