"""Trains NeSy MNIST addition (N=1) in float64 through the Trainer, alone or as one rank of ``torchrun``; rank 0
writes the final weights to ARGV[1].  Used by test_distributed.py: float64 keeps the summation order of the
gradients (one process or two shards) from growing over the updates, so both runs can be compared closely."""

import sys

import torch

from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.networks import MnistCNN
from nesy_gedi.recipes.addition_model import batch_forward, build_model
from nesy_gedi.train.distributed import Distributed
from nesy_gedi.train.loop import LoopConfig, Trainer

out, steps, batch_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
torch.manual_seed(0)
ranks = Distributed.from_environment(torch.device("cpu"))
data = AdditionDataset(load_mnist("train"), 1, seed=0, size=2000)
net = MnistCNN().double()
model = build_model(1, net)
optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)


def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
    log_prob = batch_forward(model, data, batch, "cpu", data.images(batch).double())[0]
    return {"loss": -log_prob.mean()}


config = LoopConfig(out=None, epochs=1, batch_size=batch_size, max_steps=steps, progress=False)
Trainer(config, len(data), step, {"net": net}, optimizer, torch.Generator().manual_seed(0), distributed=ranks).fit()
if ranks.is_main:
    torch.save(torch.cat([p.detach().flatten() for p in net.parameters()]), out)
