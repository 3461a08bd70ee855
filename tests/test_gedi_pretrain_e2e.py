"""GEDI pretraining on real MNIST leaves the uniform saddle and finds digit clusters without labels."""

import json
import math

import torch

from nesy_gedi.data import load_mnist
from nesy_gedi.gedi import auroc, energy_scores
from nesy_gedi.networks import MnistCNN
from nesy_gedi.recipes import gedi_pretrain
from nesy_gedi.train.checkpoint import load_network, network_state


def test_pretraining_leaves_the_saddle_clusters_digits_and_models_data(tmp_path):
    results = gedi_pretrain.main([
        "--steps", "1200", "--gen-after", "800", "--sgld-steps", "5", "--sgld-buffer-size", "2000",
        "--out", str(tmp_path), "--no-progress", "--seed", "0",
    ])
    assert results["steps"] == 1200
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 1200
    late = [line["invariance"] for line in lines[700:800]]  # before the generative term starts
    assert sum(late) / len(late) < 0.8 * math.log(10), "still at the uniform saddle"
    last = [line["invariance"] for line in lines[-100:]]  # the generative term does not undo the clusters
    assert sum(last) / len(last) < 0.8 * math.log(10)
    assert results["nmi"] > 0.4 and results["matched_accuracy"] > 0.45  # 1,200 steps: far from chance (0)
    assert results["collapse"] == 0.0
    saturation = results["gen_saturation"]  # the last 100 updates' generative loss and energies, as logged
    assert saturation["floor"] == -5.0 and saturation["updates"] == 100
    for key, logged in (("mean_gen", "gen"), ("mean_sample_energy", "sample_energy")):
        assert math.isclose(saturation[key], sum(line[logged] for line in lines[-100:]) / 100, rel_tol=1e-6)
    at_floor = sum(line["gen"] <= -5.0 + 0.25 for line in lines[-100:]) / 100
    assert math.isclose(saturation["fraction_at_floor"], at_floor)
    net = load_network(tmp_path / "mnist_net.pt")
    assert isinstance(net, MnistCNN)
    _, meta = network_state(tmp_path / "mnist_net.pt", "mnist_cnn")
    assert sorted(meta["cluster_to_label"]) == list(range(10))
    assert json.loads((tmp_path / "results.json").read_text())["nmi"] == results["nmi"]
    assert (tmp_path / "sgld_samples.png").stat().st_size > 1000
    from PIL import Image

    for grid in ("samples_noise.png", "samples_conditional.png"):  # 10 x 10 fresh chains; one row per cluster
        assert Image.open(tmp_path / grid).size == (302, 302)
    data = energy_scores(net, load_mnist("test").normalized(torch.arange(500)))
    noise = energy_scores(net, torch.rand(500, 1, 28, 28) * 2 - 1)
    assert auroc(data, noise) > 0.95  # the generative term gives data lower energy than noise


def test_init_starts_from_the_given_network(tmp_path):
    from nesy_gedi.networks import EnergyCNN
    from nesy_gedi.train.checkpoint import save_network

    torch.manual_seed(5)
    start = EnergyCNN()
    save_network(tmp_path / "start.pt", start, "ebm", "gedi_pretrain")
    gedi_pretrain.main(["--arch", "ebm", "--init", str(tmp_path / "start.pt"), "--steps", "1", "--lr", "1e-9",
                        "--gen-weight", "0", "--sgld-steps", "1", "--sgld-restart", "1", "--train-size", "256",
                        "--out", str(tmp_path / "run"), "--no-progress"])
    trained, _ = network_state(tmp_path / "run" / "mnist_net.pt", "ebm")
    for name, value in start.state_dict().items():  # one Adam step of size 1e-9 away from the start
        assert torch.allclose(trained[name], value, atol=1e-7), name
    torch.manual_seed(6)
    other = EnergyCNN().state_dict()  # what a run without --init would not match either
    assert not all(torch.allclose(trained[name], value, atol=1e-7) for name, value in other.items())
