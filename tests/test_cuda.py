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
from nesy_gedi.recipes.addition_loss import AdditionLoss
from nesy_gedi.train.capture import StepGraphs, TensorHyperparameters
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
    late = [line["invariance"] for line in lines if line["step"] > 1100]  # captured: one line per 100 updates
    assert sum(late) / len(late) < 0.8 * math.log(10)
    assert results["nmi"] > 0.4 and results["collapse"] == 0.0


def _train_steps(step_fn, net, batches, replay: bool, schedule: bool = False):
    """``len(batches)`` updates of ``step_fn`` through :class:`StepGraphs` (captured from the third on, or eager);
    returns the weights and the mean loss terms."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=len(batches)) if schedule else None
    hyper = TensorHyperparameters(optimizer, CUDA, vary_beta1=schedule)
    graphs = StepGraphs(step_fn, optimizer, CUDA, replay=replay)
    with graphs.stream_context():
        for i, batch in enumerate(batches):
            graphs(batch, i)
            if scheduler is not None:
                scheduler.step()
                hyper.refresh()
        means = graphs.read()[0]
    torch.cuda.synchronize()
    assert graphs.captured_updates == (len(batches) - 2 if replay else 0)
    means["lr"] = float(optimizer.param_groups[0]["lr"])
    means["beta1"] = float(optimizer.param_groups[0]["betas"][0])
    return torch.cat([p.detach().flatten() for p in net.parameters()]), means


@pytest.mark.parametrize("n_digits", [1, 2])
def test_captured_addition_updates_equal_eager_ones(n_digits):
    """The NeSy update replayed as a CUDA graph (network, circuit, loss, backward, Adam with a one-cycle schedule)
    gives the eager update's weights and losses."""
    data = AdditionDataset(load_mnist("train"), n_digits, seed=0, size=640)
    batches = [torch.arange(i * 32, (i + 1) * 32, device=CUDA) for i in range(8)]
    results = []
    for replay in (False, True):
        torch.manual_seed(0)
        net = build_network("mnist_cnn").to(CUDA)
        loss = AdditionLoss(addition_model.build_model(n_digits, net), data, net, net, CUDA,
                            torch.Generator(CUDA).manual_seed(0), capture=True)
        results.append(_train_steps(loss, net, batches, replay, schedule=True))
    (eager, eager_terms), (captured, captured_terms) = results
    # the circuit's backward differs in summation order (index_add_ captured, sparse matmul eager), which Adam's
    # normalisation of near-zero gradients amplifies to about 1e-5 of the learning rate's scale
    assert torch.allclose(captured, eager, atol=2e-4, rtol=1e-3)
    assert captured_terms["nll"] == pytest.approx(eager_terms["nll"], rel=1e-5)
    assert captured_terms["lr"] == eager_terms["lr"] and captured_terms["beta1"] == eager_terms["beta1"]


@pytest.mark.parametrize("sampler_kl, sampler_entropy", [(0.0, 0.0), (0.1, 0.0), (0.1, 0.03)])
def test_captured_gedi_updates_equal_eager_ones(sampler_kl, sampler_entropy):
    """A GEDI update with SGLD chains from the replay buffer and augmented views, drawn from a device generator,
    gives the same weights and terms captured as eager (with the sampler's KL term: its second-order step too, and
    the sampler's entropy)."""
    from nesy_gedi.gedi import SaturationMonitor
    from nesy_gedi.gedi.schedule import WeightSchedule as Schedule
    from nesy_gedi.recipes.gedi_pretrain import PretrainStep

    train = load_mnist("train")
    batches = [torch.arange(i * 64, (i + 1) * 64, device=CUDA) for i in range(7)]
    results = []
    for replay in (False, True):
        torch.manual_seed(0)
        net = build_network("ebm").to(CUDA)
        generator = torch.Generator(CUDA).manual_seed(0)
        weights = GEDIWeights(gen=1.0, sampler_kl=sampler_kl, sampler_entropy=sampler_entropy)
        gedi = GEDIObjective(net, (1, 28, 28), weights, SGLDConfig(steps=5, buffer_size=256), CUDA, generator, 32)
        step = PretrainStep(net, train, gedi, Schedule(weights), DigitAugment(), 4, generator, CUDA,
                            SaturationMonitor(-5.0), capture=True)
        results.append(_train_steps(step, net, batches, replay))
    (eager, eager_terms), (captured, captured_terms) = results
    assert torch.allclose(captured, eager, atol=1e-5, rtol=1e-4)
    logged = ("sampler_kl",) * bool(sampler_kl) + ("sampler_entropy",) * bool(sampler_entropy)
    for name in ("gen", "invariance", "prior", "sample_energy") + logged:
        assert captured_terms[name] == pytest.approx(eager_terms[name], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("n_digits", [1, 4])
def test_circuit_gradients_on_cuda_equal_cpu_in_float32(n_digits):
    data = AdditionDataset(load_mnist("test"), n_digits=n_digits, seed=0, size=64)
    examples = torch.arange(64)
    grads = []
    for device in ("cpu", CUDA):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).to(device)
        model = addition_model.build_model(n_digits, net)
        log_prob = addition_model.batch_forward(model, data, examples, device, data.images(examples, device))[0]
        log_prob.sum().backward()
        grads.append((log_prob.detach().cpu(), net[1].weight.grad.cpu()))
    (cpu_value, cpu_grad), (gpu_value, gpu_grad) = grads
    assert torch.allclose(gpu_value, cpu_value, atol=1e-5, rtol=1e-6)
    assert torch.allclose(gpu_grad, cpu_grad, atol=1e-5, rtol=1e-5)
