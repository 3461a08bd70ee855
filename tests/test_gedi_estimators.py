"""The generative term's estimators: denoising score matching recovers a known score, annealed Langevin moves to
low energy, and both estimators train through the objective and the pretraining recipe."""

import json

import pytest
import torch
from torch import nn

from nesy_gedi.gedi import EstimatorConfig, GEDIObjective, GEDIWeights, SGLDConfig, annealed_langevin, dsm_loss
from nesy_gedi.gedi.estimators import recovery_negatives


class Quadratic(nn.Module):
    """One logit f(x) = -theta/2 ||x - mu||^2, so E(x) = theta/2 ||x - mu||^2 and grad E = theta (x - mu)."""

    def __init__(self, theta: float = 0.1, mu: float = 0.0) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta))
        self.mu = mu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (-0.5 * self.theta * (x - self.mu).pow(2).flatten(1).sum(1)).unsqueeze(1)


def test_dsm_recovers_the_score_of_a_gaussian():
    """Data N(0, tau^2 I), one noise level sigma: the optimal grad E(x~) is E[eps | x~] = sigma x~ / (tau^2 + sigma^2),
    so theta* = sigma / (tau^2 + sigma^2)."""
    tau, sigma = 0.3, 0.2
    net = Quadratic()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    generator = torch.Generator().manual_seed(0)
    config = EstimatorConfig("dsm", sigma_min=sigma, sigma_max=sigma)
    for _ in range(600):
        x = tau * torch.randn(256, 1, 4, 4, generator=generator)
        loss, _ = dsm_loss(net, x, config, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(net.theta.detach()) == pytest.approx(sigma / (tau ** 2 + sigma ** 2), rel=0.05)


def test_dsm_loss_is_one_without_a_score_and_reports_the_noisy_energy():
    net = Quadratic(theta=0.0)
    loss, logged = dsm_loss(net, torch.zeros(4096, 1, 4, 4), EstimatorConfig("dsm"), torch.Generator().manual_seed(1))
    assert float(loss.detach()) == pytest.approx(1.0, abs=0.02)  # E||eps||^2 / D
    assert set(logged) == {"noisy_energy"} and float(logged["noisy_energy"]) == 0.0


def test_annealed_langevin_moves_noise_to_low_energy():
    net = Quadratic(theta=10.0, mu=0.5)  # a well at 0.5 as DSM fits one of width 0.05 (theta = 1 / (2 * 0.05))
    config = EstimatorConfig("dsm", sigma_min=0.02, sigma_max=0.5)
    first = annealed_langevin(net, 64, (1, 4, 4), config, torch.Generator().manual_seed(2))  # default schedule
    again = annealed_langevin(net, 64, (1, 4, 4), config, torch.Generator().manual_seed(2))
    assert torch.equal(first, again) and first.shape == (64, 1, 4, 4)
    assert float((first - 0.5).abs().mean()) < 0.08  # uniform noise starts 0.5 away on average
    assert float(first.min()) >= -1 and float(first.max()) <= 1


def test_the_objective_trains_the_generative_term_with_either_estimator():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.SiLU(), nn.Linear(32, 3))
    x = torch.rand(8, 1, 4, 4) * 2 - 1
    for name in ("sgld", "dsm", "recovery"):
        gedi = GEDIObjective(net, (1, 4, 4), GEDIWeights(gen=1.0), device="cpu",
                             generator=torch.Generator().manual_seed(0), estimator=EstimatorConfig(name))
        terms = gedi(x, x.flip(0), data=x)
        net.zero_grad()
        terms.gen.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters()), name
        expected = {"data_energy", "noisy_energy"} if name == "dsm" else {"data_energy", "sample_energy"}
        assert set(terms.energies) == expected


def test_unknown_estimator_or_levels_are_refused():
    with pytest.raises(ValueError, match="unknown estimator 'nce'"):
        EstimatorConfig("nce")
    with pytest.raises(ValueError, match="sigma_min <= sigma_max"):
        EstimatorConfig("dsm", sigma_min=0.5, sigma_max=0.1)


def test_pretraining_with_dsm_writes_its_terms_and_samples(tmp_path):
    from nesy_gedi.recipes import gedi_pretrain

    results = gedi_pretrain.main(["--gen-estimator", "dsm", "--arch", "ebm", "--steps", "6", "--gen-after", "2",
                                  "--batch-size", "32", "--train-size", "256", "--out", str(tmp_path),
                                  "--no-progress"])
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["gen"] == 0 for line in lines] == [True, True, False, False, False, False]
    assert all("noisy_energy" in line for line in lines[2:]) and not any("sample_energy" in line for line in lines)
    assert results["estimator"]["name"] == "dsm" and results["gen_saturation"] == {}
    assert (tmp_path / "samples_noise.png").is_file() and not (tmp_path / "sgld_samples.png").exists()


def test_recovery_chains_start_at_the_noised_data_and_descend_the_energy():
    """Zero steps: each negative is its image plus noise at one of the levels (no replay buffer); with steps, the
    chains lower the energy of the well they start near, reproducibly from the generator."""
    net = Quadratic(theta=1.0, mu=0.0)
    images = torch.zeros(2000, 1, 4, 4)
    sgld = SGLDConfig(step_size=0.2, noise=0.0)
    config = EstimatorConfig("recovery", sigma_min=0.02, sigma_max=0.5, recovery_levels=3, recovery_steps=1)
    start = recovery_negatives(net, images, EstimatorConfig("recovery", sigma_min=0.02, sigma_max=0.5,
                                                            recovery_levels=3, recovery_steps=1),
                               SGLDConfig(step_size=0.0, noise=0.0), torch.Generator().manual_seed(0))
    spread = start.flatten(1).std(1)  # one level per image: 0.5, 0.1 or 0.02 (geometric)
    for sigma in (0.5, 0.1, 0.02):
        share = float(((spread / sigma - 1).abs() < 0.5).float().mean())
        assert 0.25 < share < 0.42, (sigma, share)
    moved = recovery_negatives(net, images, config, sgld, torch.Generator().manual_seed(0))
    assert torch.allclose(moved, start * (1 - sgld.step_size))  # one step on E = |x|^2 / 2 from the same start
    again = recovery_negatives(net, images, config, sgld, torch.Generator().manual_seed(0))
    assert torch.equal(moved, again)
