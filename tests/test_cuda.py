"""On a CUDA device: the same circuit values as on the CPU, training end to end, files that load on a CPU.

Skipped where torch sees no GPU (CI); run on a lent GPU machine with ``pytest tests/test_cuda.py``.
"""

import json
import math

import pytest
import torch

from nesy_gedi.augment import DigitAugment
from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.gedi import GEDIObjective, GEDIWeights, SGLDConfig
from nesy_gedi.networks import build_network
from nesy_gedi.recipes import addition, addition_model, gedi_pretrain
from nesy_gedi.train.checkpoint import load_network
from nesy_gedi.train.evaluate import predict_split

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CUDA = torch.device("cuda")


@pytest.mark.parametrize("n_digits", [1, 2, 4])
def test_circuit_on_cuda_equals_cpu(n_digits):
    torch.manual_seed(0)
    data = AdditionDataset(load_mnist("test"), n_digits=n_digits, seed=0, size=64)
    examples = torch.arange(64)
    model = addition_model.build_model(n_digits, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).double())
    images = data.images(examples, "cpu").double()
    cpu = addition_model.batch_forward(model, data, examples, "cpu", images)[0]
    model.to(CUDA)
    gpu = addition_model.batch_forward(model, data, examples, CUDA, images.to(CUDA))[0]
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-9, rtol=1e-9)


def test_gedi_objective_runs_on_cuda():
    torch.manual_seed(0)
    net = build_network("mnist_cnn", 10).to(CUDA)
    gedi = GEDIObjective(net, (1, 28, 28), GEDIWeights(gen=1.0, invariance=1.0, prior=1.0),
                         SGLDConfig(steps=3, buffer_size=32), CUDA)
    x = torch.rand(16, 1, 28, 28, device=CUDA) * 2 - 1
    augment = DigitAugment()
    terms = gedi(augment(x), augment(x))
    terms.total.backward()
    assert all(math.isfinite(v) for v in terms.items().values())
    assert all(p.grad is not None and p.grad.device.type == "cuda" for p in net.parameters())


def test_addition_trains_on_cuda_and_its_files_load_on_cpu(tmp_path):
    results = addition.main(["--device", "cuda", "--n-digits", "2", "--train-size", "6000", "--test-size", "1000",
                             "--epochs", "2", "--out", str(tmp_path), "--no-progress"])
    assert results["digit_accuracy"] > 0.9 and results["sum_accuracy"] > 0.7
    net = load_network(tmp_path / "mnist_net.pt")  # map_location cpu
    test = load_mnist("test")
    accuracy = (predict_split(net, test, "cpu").argmax(1) == test.labels).float().mean()
    assert float(accuracy) > 0.9
    resumed = addition.main(["--resume", "--out", str(tmp_path), "--device", "cpu", "--no-progress"])
    assert resumed["steps"] == results["steps"]  # a finished CUDA run resumes on a CPU without retraining


def test_gedi_pretraining_on_cuda_leaves_the_saddle(tmp_path):
    results = gedi_pretrain.main(["--device", "cuda", "--steps", "1200", "--gen-after", "800", "--sgld-steps", "5",
                                  "--sgld-buffer-size", "2000", "--out", str(tmp_path), "--no-progress", "--seed", "0"])
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    late = [line["invariance"] for line in lines[-100:]]
    assert sum(late) / len(late) < 0.8 * math.log(10)
    assert results["nmi"] > 0.4 and results["collapse"] == 0.0
