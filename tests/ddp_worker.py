"""Trains in float64 through the Trainer, alone or as one rank of ``torchrun``: ``addition`` (NeSy MNIST addition,
N=1), ``addition_gedi`` (the same with GEDI's invariance and prior terms on augmented digits) or ``gedi`` (GEDI's
invariance and prior terms; the prior on the global batch, augmented views drawn as one process draws them); rank 0
writes the final weights to OUT.  Used by test_distributed.py: float64 keeps the summation order of the gradients
(one process or two shards) from growing over the updates, so both runs can be compared closely.

    python tests/ddp_worker.py addition|gedi OUT STEPS BATCH"""

import sys

import torch

from nesy_gedi.augment import DigitAugment
from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.gedi import GEDIObjective, GEDIWeights, SaturationMonitor, SGLDConfig
from nesy_gedi.gedi.schedule import WeightSchedule
from nesy_gedi.recipes.addition_loss import AdditionLoss
from nesy_gedi.recipes.gedi_pretrain import PretrainStep
from nesy_gedi.networks import MnistCNN
from nesy_gedi.recipes.addition_model import batch_forward, build_model
from nesy_gedi.train.distributed import Distributed
from nesy_gedi.train.loop import LoopConfig, Trainer

class Double(torch.nn.Module):
    """The network on float64 inputs."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.double())


task, out, steps, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
torch.manual_seed(0)
ranks = Distributed.from_environment(torch.device("cpu"))
net = MnistCNN().double()
optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
generator = torch.Generator().manual_seed(0)
if task == "addition":
    data = AdditionDataset(load_mnist("train"), 1, seed=0, size=2000)
    model = build_model(1, net)
    n_examples = len(data)

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        log_prob = batch_forward(model, data, batch, "cpu", data.images(batch).double())[0]
        return {"loss": -log_prob.mean()}
elif task == "addition_gedi":  # the NeSy loss + GEDI (invariance, prior) on augmented digits
    data = AdditionDataset(load_mnist("train"), 1, seed=0, size=2000)
    n_examples = len(data)
    double = Double(net)
    weights = GEDIWeights(gen=0.0)
    gedi = GEDIObjective(double, (1, 28, 28), weights, SGLDConfig(buffer_size=64), "cpu", generator, ranks=ranks)
    step = AdditionLoss(build_model(1, double), data, double, double, torch.device("cpu"), generator,
                        train_augment=DigitAugment().scaled(0.5), gedi=gedi, schedule=WeightSchedule(weights),
                        gedi_weight=1.0, aug_warmup=10, ranks=ranks)
else:
    split = load_mnist("train")
    n_examples = 2000
    weights = GEDIWeights(gen=0.0)
    gedi = GEDIObjective(lambda x: net(x.double()), (1, 28, 28), weights, SGLDConfig(buffer_size=64), "cpu",
                         generator, ranks=ranks)
    step = PretrainStep(net, split, gedi, WeightSchedule(weights), DigitAugment(), 10, generator,
                        torch.device("cpu"), SaturationMonitor(-5.0), ranks=ranks, batch_size=batch_size)
config = LoopConfig(out=None, epochs=1, batch_size=batch_size, max_steps=steps, progress=False,
                    drop_last=task == "gedi")
Trainer(config, n_examples, step, {"net": net}, optimizer, generator, distributed=ranks).fit()
if ranks.is_main:
    torch.save(torch.cat([p.detach().flatten() for p in net.parameters()]), out)
