"""The sampler's KL term (improved contrastive divergence): its value and gradient match the closed form of a
quadratic energy, it trains through the objective beside every chain estimator, and pretraining logs it."""

import json
import math

import pytest
import torch
from torch import nn

from nesy_gedi.gedi import EstimatorConfig, GEDIObjective, GEDIWeights, SGLDConfig, energy
from nesy_gedi.gedi.sampler_kl import frozen_energy, nearest_neighbour_entropy, sampler_step


def sampler_kl_loss(net: nn.Module, x: torch.Tensor, sgld: SGLDConfig, energy) -> torch.Tensor:
    """The KL term as the objective computes it: the frozen network's mean energy after one differentiable step."""
    return frozen_energy(net, sampler_step(net, x, sgld, energy), energy).mean()


class Quadratic(nn.Module):
    """One logit f(x) = -theta/2 ||x||^2: E(x) = theta/2 ||x||^2, and one SGLD step without noise is x (1 - s theta)."""

    def __init__(self, theta: float) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (-0.5 * self.theta * x.pow(2).flatten(1).sum(1)).unsqueeze(1)


def test_the_step_is_differentiated_and_the_scorer_is_frozen():
    """loss = theta0/2 (1 - s theta)^2 m with m = mean ||x||^2, scored at the frozen theta0: its derivative in theta
    at theta0 is -s theta0 (1 - s theta0) m (with a scorer that trained too, it would gain (1 - s theta0)^2 m / 2)."""
    theta0, s = 0.3, 1.0
    net = Quadratic(theta0)
    x = torch.rand(16, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.8 - 0.4
    m = float(x.pow(2).flatten(1).sum(1).mean())
    sgld = SGLDConfig(step_size=s, noise=0.0)
    loss = sampler_kl_loss(net, x, sgld, energy)
    (grad,) = torch.autograd.grad(loss, net.theta)
    assert float(loss.detach()) == pytest.approx(theta0 / 2 * (1 - s * theta0) ** 2 * m, rel=1e-12)
    assert float(grad) == pytest.approx(-s * theta0 * (1 - s * theta0) * m, rel=1e-12)
    still = sampler_kl_loss(net, x, SGLDConfig(step_size=0.0, noise=0.0), energy)  # no step: nothing to learn
    (none,) = torch.autograd.grad(still, net.theta, allow_unused=True)
    assert none is None or float(none) == 0.0


def test_training_on_the_term_makes_one_step_land_in_the_minimum():
    """With E = theta/2 ||x||^2 a step of size s lands at x (1 - s theta): the term alone drives theta to 1/s, where
    one step reaches the minimum (and the contrastive loss has no say)."""
    net, s = Quadratic(0.3), 0.5
    x = torch.rand(32, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.8 - 0.4
    optimizer = torch.optim.SGD(net.parameters(), lr=2.0)
    for _ in range(200):
        optimizer.zero_grad()
        sampler_kl_loss(net, x, SGLDConfig(step_size=s, noise=0.0), energy).backward()
        optimizer.step()
    assert float(net.theta.detach()) == pytest.approx(1 / s, rel=1e-3)


def test_the_objective_adds_the_term_beside_each_chain_estimator():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.SiLU(), nn.Linear(32, 3))
    x = torch.rand(8, 1, 4, 4) * 2 - 1
    for name in ("sgld", "recovery", "amortised"):
        terms = {}
        for weight in (0.0, 2.0):
            torch.manual_seed(1)  # sgld's chains draw their noise from the global generator beside a CPU one
            gedi = GEDIObjective(net, (1, 4, 4), GEDIWeights(gen=1.0, sampler_kl=weight), SGLDConfig(steps=2),
                                 generator=torch.Generator().manual_seed(0), estimator=EstimatorConfig(name))
            terms[weight] = gedi(x, x.flip(0), data=x)
        assert "sampler_kl" not in terms[0.0].energies and "sampler_kl" in terms[2.0].energies, name
        assert float(terms[2.0].gen.detach()) == float(terms[0.0].gen.detach()), name  # the same negatives
        gap = float((terms[2.0].total - terms[0.0].total).detach())
        assert gap == pytest.approx(2.0 * float(terms[2.0].energies["sampler_kl"]), rel=1e-5, abs=1e-6), name
        off = GEDIObjective(net, (1, 4, 4), GEDIWeights(gen=0.0, sampler_kl=2.0), estimator=EstimatorConfig(name))
        assert "sampler_kl" not in off(x, x.flip(0)).energies  # no negatives while the generative term is off


def test_the_entropy_is_the_mean_log_distance_to_the_nearest_other_sample():
    """Points 0, 1 and 3 on a line: nearest distances 1, 1 and 2; each point's gradient is 1 / (x - its neighbour) / n,
    with the neighbour held fixed."""
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], dtype=torch.float64, requires_grad=True)
    h = nearest_neighbour_entropy(x)
    assert float(h.detach()) == pytest.approx(math.log(2.0) / 3, rel=1e-12)
    (grad,) = torch.autograd.grad(h, x)
    assert grad[:, 0].tolist() == pytest.approx([-1 / 3, 1 / 3, 1 / 6], rel=1e-12)
    assert grad[:, 1].abs().max() == 0
    with pytest.raises(ValueError, match="at least two samples"):
        nearest_neighbour_entropy(x[:1])


def test_the_entropy_reaches_the_weights_through_the_step():
    """Without noise the step maps x to c x with c = 1 - s theta.  With each neighbour n(i) held fixed, log ||c x_i -
    c x_n(i)|| has the derivative -s x_i . (x_i - x_n(i)) / (c ||x_i - x_n(i)||^2) in theta; the total kl - w H adds
    -w times its mean to the KL's -s theta0 (1 - s theta0) m."""
    theta0, s, w = 0.3, 1.0, 0.5
    net = Quadratic(theta0)
    x = torch.rand(16, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.8 - 0.4
    m = float(x.pow(2).flatten(1).sum(1).mean())
    sgld = SGLDConfig(step_size=s, noise=0.0)
    total = sampler_kl_loss(net, x, sgld, energy) - w * nearest_neighbour_entropy(sampler_step(net, x, sgld, energy))
    (grad,) = torch.autograd.grad(total, net.theta)
    flat, c = x.flatten(1), 1 - s * theta0
    distances = torch.cdist(flat, flat) + torch.diag(torch.full((16,), float("inf"), dtype=torch.float64))
    diff = flat - flat[distances.argmin(1)]
    entropy_grad = float((-s * (flat * diff).sum(1) / (c * diff.pow(2).sum(1))).mean())
    assert float(grad) == pytest.approx(-s * theta0 * (1 - s * theta0) * m - w * entropy_grad, rel=1e-10)


def test_the_objective_subtracts_the_weighted_entropy():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.SiLU(), nn.Linear(32, 3))
    x = torch.rand(8, 1, 4, 4) * 2 - 1
    terms = {}
    for weight in (0.0, 0.5):
        torch.manual_seed(1)
        gedi = GEDIObjective(net, (1, 4, 4), GEDIWeights(gen=1.0, sampler_kl=1.0, sampler_entropy=weight),
                             SGLDConfig(steps=2), generator=torch.Generator().manual_seed(0))
        terms[weight] = gedi(x, x.flip(0))
    assert "sampler_entropy" not in terms[0.0].energies
    entropy = float(terms[0.5].energies["sampler_entropy"])
    assert float(terms[0.5].energies["sampler_kl"]) == float(terms[0.0].energies["sampler_kl"])
    gap = float((terms[0.5].total - terms[0.0].total).detach())
    assert gap == pytest.approx(-0.5 * entropy, rel=1e-5, abs=1e-6)
    with pytest.raises(ValueError, match="needs --sampler-kl-weight > 0"):
        GEDIObjective(net, (1, 4, 4), GEDIWeights(sampler_entropy=0.5))
    with pytest.raises(ValueError, match="non-negative"):
        GEDIObjective(net, (1, 4, 4), GEDIWeights(sampler_kl=1.0, sampler_entropy=-0.5))


def test_the_term_is_refused_where_it_cannot_work():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with pytest.raises(ValueError, match="dsm estimator has none"):
        GEDIObjective(net, (1, 4, 4), GEDIWeights(sampler_kl=1.0), estimator=EstimatorConfig("dsm"))
    with pytest.raises(ValueError, match="non-negative"):
        GEDIObjective(net, (1, 4, 4), GEDIWeights(sampler_kl=-1.0))
    with pytest.raises(ValueError, match="torch.nn.Module"):
        GEDIObjective(lambda x: net(x), (1, 4, 4), GEDIWeights(sampler_kl=1.0))


def test_pretraining_logs_the_term(tmp_path):
    from nesy_gedi.recipes import gedi_pretrain

    results = gedi_pretrain.main(["--sampler-kl-weight", "1", "--steps", "4", "--gen-after", "2", "--batch-size", "32",
                                  "--train-size", "256", "--sgld-steps", "2", "--sample-steps", "2", "--out",
                                  str(tmp_path), "--no-progress"])
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert ["sampler_kl" in line for line in lines] == [False, False, True, True]
    assert results["args"]["sampler_kl_weight"] == 1.0


def test_the_term_trains_beside_the_nesy_loss(tmp_path):
    from nesy_gedi.recipes import addition

    addition.main(["--pairs", "evenodd", "--train-size", "64", "--test-size", "20", "--gedi-weight", "1",
                   "--sampler-kl-weight", "0.5", "--sgld-steps", "2", "--max-steps", "2", "--out", str(tmp_path),
                   "--no-progress"])
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all("gedi_sampler_kl" in line for line in lines), lines[-1]


def test_the_negatives_prior_adds_the_uniformity_loss_of_their_clusters():
    from nesy_gedi.gedi.objective import uniformity_loss

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.SiLU(), nn.Linear(32, 3))
    x = torch.rand(8, 1, 4, 4) * 2 - 1
    terms, ends, grads = {}, {}, {}
    for weight in (0.0, 2.0):
        torch.manual_seed(1)
        gedi = GEDIObjective(net, (1, 4, 4), GEDIWeights(gen=1.0, sample_prior=weight, temperature=0.5),
                             SGLDConfig(steps=2), generator=torch.Generator().manual_seed(0), negatives=6)
        sample = gedi.sampler.sample
        gedi.sampler.sample = lambda n, *target, sample=sample, w=weight: ends.setdefault(w, sample(n, *target))
        terms[weight] = gedi(x, x.flip(0))
        grads[weight] = torch.autograd.grad(terms[weight].total, list(net.parameters()))
    assert "sample_prior" not in terms[0.0].energies
    assert torch.equal(ends[0.0], ends[2.0])  # the same chains: the term only adds a loss on their ends
    expected = uniformity_loss(net(ends[2.0]) / 0.5)
    prior = float(expected.detach())
    assert prior > 0.01  # six chains' ends under a random network are not assigned evenly
    assert float(terms[2.0].energies["sample_prior"].detach()) == pytest.approx(prior, rel=1e-6)
    assert float((terms[2.0].total - terms[0.0].total).detach()) == pytest.approx(2.0 * prior, rel=1e-5)
    # its gradient is that of the negatives' uniformity loss, through their logits only
    for got, base, want in zip(grads[2.0], grads[0.0], torch.autograd.grad(2.0 * expected, list(net.parameters()))):
        torch.testing.assert_close(got - base, want, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        GEDIObjective(net, (1, 4, 4), GEDIWeights(sample_prior=-1.0))
    with pytest.raises(ValueError, match="dsm estimator has none"):
        GEDIObjective(net, (1, 4, 4), GEDIWeights(sample_prior=1.0), estimator=EstimatorConfig("dsm"))
