"""The generative term's estimators: denoising score matching recovers a known score, annealed Langevin moves to
low energy, recovery chains start at the noised data, the amortised sampler learns where the chains end, and every
estimator trains through the objective and the recipes."""

import json

import pytest
import torch
from torch import nn

from nesy_gedi.gedi import EstimatorConfig, GEDIObjective, GEDIWeights, SGLDConfig, annealed_langevin, dsm_loss
from nesy_gedi.gedi.estimators import recovery_negatives
from nesy_gedi.gedi.proposal import Proposal, cooperative_negatives, load_proposal
from nesy_gedi.train.checkpoint import load_network


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
    for name in ("sgld", "dsm", "recovery", "amortised"):
        gedi = GEDIObjective(net, (1, 4, 4), GEDIWeights(gen=1.0), device="cpu",
                             generator=torch.Generator().manual_seed(0), estimator=EstimatorConfig(name))
        terms = gedi(x, x.flip(0), data=x)
        net.zero_grad()
        terms.gen.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters()), name
        expected = {"data_energy", "noisy_energy"} if name == "dsm" else {"data_energy", "sample_energy"}
        expected |= {"proposal_gap"} if name == "amortised" else set()
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


def test_the_amortised_estimator_trains_the_network_and_its_generator_apart():
    """The contrastive term's gradient reaches the network only; the generator's loss reaches the generator only."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.SiLU(), nn.Linear(32, 3))
    x = torch.rand(8, 1, 4, 4) * 2 - 1
    gedi = GEDIObjective(net, (1, 4, 4), GEDIWeights(gen=1.0), SGLDConfig(steps=3), device="cpu",
                         generator=torch.Generator().manual_seed(0), estimator=EstimatorConfig("amortised"))
    assert gedi.sampler is None and gedi.checkpointed_state() == {}  # no replay buffer
    proposal = gedi.trained_modules()["proposal"]
    terms = gedi(x, x.flip(0), data=x)
    assert set(terms.energies) == {"data_energy", "sample_energy", "proposal_gap"}
    terms.gen.backward(retain_graph=True)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert all(p.grad is None for p in proposal.parameters())
    net.zero_grad()
    (terms.total - terms.gen - terms.invariance - 5.0 * terms.prior).backward()  # the generator's own loss
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in net.parameters())
    assert all(p.grad is not None for p in proposal.parameters())
    assert float(terms.energies["proposal_gap"]) > 0


def test_the_generator_learns_to_propose_where_the_chains_end():
    """A fixed energy well at 0.5: the proposals move there, as the short chains they are taught by do."""
    net = Quadratic(theta=10.0, mu=0.5).requires_grad_(False)
    proposal = Proposal(latent=8, shape=(1, 4, 4))
    optimizer = torch.optim.Adam(proposal.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    sgld = SGLDConfig(step_size=0.02, noise=0.005)
    with torch.no_grad():
        before = float((proposal.propose(256, generator) - 0.5).abs().mean())
    for _ in range(150):
        _, teaching = cooperative_negatives(lambda x: -net(x)[:, 0], proposal, 64, sgld, 5, generator)
        optimizer.zero_grad()
        teaching.backward()
        optimizer.step()
    with torch.no_grad():
        after = float((proposal.propose(256, generator) - 0.5).abs().mean())
    assert before > 0.3 and after < 0.05, (before, after)


def test_an_amortised_model_samples_through_its_saved_generator(tmp_path):
    """pretrain writes proposal.pt; the file rebuilds the same generator; a run resumes with it; fresh samples need
    it; a network file is not one."""
    from nesy_gedi.errors import DataError
    from nesy_gedi.gedi.estimators import fresh_samples
    from nesy_gedi.recipes import gedi_pretrain

    args = ["--gen-estimator", "amortised", "--sgld-steps", "2", "--steps", "4", "--gen-after", "2", "--batch-size",
            "32", "--train-size", "256", "--out", str(tmp_path), "--no-progress", "--checkpoint-every", "2"]
    results = gedi_pretrain.main(args)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert ["proposal_gap" in line for line in lines] == [False, False, True, True]
    assert results["estimator"]["name"] == "amortised" and results["gen_saturation"]["updates"] == 2
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert set(checkpoint["modules"]) == {"net", "proposal"} and "replay_buffer" not in checkpoint["extra"]
    proposal = load_proposal(tmp_path / "proposal.pt")
    torch.testing.assert_close(proposal.state_dict(), checkpoint["modules"]["proposal"])
    resumed = gedi_pretrain.main([*args[:args.index("--steps")], "--steps", "6",
                                  *args[args.index("--steps") + 2:], "--resume"])
    assert resumed["steps"] == 6
    net = load_network(tmp_path / "mnist_net.pt")
    estimator, sgld = EstimatorConfig("amortised"), SGLDConfig()
    samples = fresh_samples(net, 5, (1, 28, 28), estimator, sgld, 3, torch.Generator().manual_seed(0),
                            proposal=load_proposal(tmp_path / "proposal.pt"))
    assert samples.shape == (5, 1, 28, 28) and float(samples.abs().max()) <= 1
    with pytest.raises(ValueError, match="need its proposal network"):
        fresh_samples(net, 5, (1, 28, 28), estimator, sgld, 3)
    with pytest.raises(DataError, match="architecture 'mnist_cnn'"):
        load_proposal(tmp_path / "mnist_net.pt")


def test_amortised_trains_beside_the_nesy_loss(tmp_path):
    """mnist_add with GEDI and the amortised estimator: its generator is in the optimizer and the checkpoint."""
    from nesy_gedi.recipes import addition

    addition.main(["--pairs", "evenodd", "--train-size", "64", "--test-size", "20", "--gedi-weight", "1",
                   "--gen-estimator", "amortised", "--sgld-steps", "2", "--max-steps", "2", "--out", str(tmp_path),
                   "--no-progress", "--schedule", "onecycle"])
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert set(checkpoint["modules"]) == {"net", "proposal"}
    assert len(checkpoint["optimizer"]["param_groups"]) == 2 and "replay_buffer" not in checkpoint["extra"]


def test_a_proposal_needs_images_it_can_make():
    with pytest.raises(ValueError, match="divisible by 4"):
        Proposal(8, (1, 30, 30))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        EstimatorConfig("amortised", proposal_latent=0)
