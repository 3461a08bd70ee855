"""GEDI terms, SGLD and augmentations."""

import math

import pytest
import torch

from nesy_gedi.augment import DigitAugment
from nesy_gedi.gedi import GEDIObjective, GEDIWeights, SGLDConfig, SGLDSampler, energy
from nesy_gedi.gedi.sgld import langevin, langevin_until, sample_from_noise
from nesy_gedi.gedi.objective import floor_loss, invariance_loss, prior_loss, uniformity_loss
from nesy_gedi.networks import MnistCNN


def test_energy_is_negative_logsumexp():
    logits = torch.tensor([[0.0, 0.0], [math.log(3), 0.0]])
    assert torch.allclose(energy(logits), torch.tensor([-math.log(2), -math.log(4)]))


def test_uniformity_prior():
    balanced = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    assert float(uniformity_loss(balanced)) == pytest.approx(0.0, abs=1e-4)
    collapsed = torch.tensor([[10.0, 0.0], [10.0, 0.0]])
    assert float(uniformity_loss(collapsed)) > 0.6  # KL(U || (1, 0)) is large


def one_hot_logits(clusters: list[int], k: int) -> torch.Tensor:
    return 30.0 * torch.nn.functional.one_hot(torch.tensor(clusters), k).float()


def test_floor_prior_allows_unequal_clusters_but_not_empty_ones():
    # 3 clusters of sizes 2:1:1 (quarter = 0.25 >= floor 0.5/3): free under the floor, not under the uniform prior
    unequal = one_hot_logits([0, 0, 1, 2], 3)
    assert float(floor_loss(unequal, 0.5)) == pytest.approx(0.0, abs=1e-6)
    assert float(uniformity_loss(unequal)) > 0.02
    # an emptied cluster costs: 1/K * log((f/K) / pbar) for that cluster, pbar ~ exp(-30)
    emptied = one_hot_logits([0, 0, 1, 1], 3)
    loss = floor_loss(emptied, 0.5)
    assert float(loss) == pytest.approx((math.log(0.5 / 3) + 30.0) / 3, rel=1e-3)
    # a cluster below the floor but not empty: exactly its log-ratio, divided by K
    small = one_hot_logits([0] * 9 + [1] * 9 + [2] * 2, 3)  # cluster 2 holds 0.1 < 0.5 / 3
    assert float(floor_loss(small, 0.5)) == pytest.approx(math.log((0.5 / 3) / 0.1) / 3, rel=1e-4)
    # floor 1: the hinge form of the uniform prior, equal to it where no cluster is larger than 1/K
    assert float(floor_loss(small, 1.0)) > 0
    assert torch.equal(prior_loss(small), uniformity_loss(small))
    assert torch.equal(prior_loss(small, 0.5), floor_loss(small, 0.5))
    with pytest.raises(ValueError, match="floor"):
        floor_loss(small, 0.0)


def test_objective_uses_the_floor_prior():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randn(8, 1, 2, 2)
    uniform = GEDIObjective(net, (1, 2, 2), GEDIWeights(gen=0.0, invariance=0.0, prior=1.0))(x, x)
    floor = GEDIObjective(net, (1, 2, 2), GEDIWeights(gen=0.0, invariance=0.0, prior=1.0, prior_floor=0.5))(x, x)
    with torch.no_grad():
        assert float(uniform.prior) == pytest.approx(float(uniformity_loss(net(x))), rel=1e-5)
        assert float(floor.prior) == pytest.approx(float(floor_loss(net(x), 0.5)), rel=1e-5)


def test_weight_schedule_ramps_the_generative_term_and_switches_the_prior():
    from nesy_gedi.gedi.schedule import WeightSchedule

    base = GEDIWeights(gen=2.0, prior=5.0)
    at_once, ramped = WeightSchedule(base, gen_after=10), WeightSchedule(base, gen_after=10, gen_warmup=4)
    assert [at_once.at(t).gen for t in (0, 9, 10, 500)] == [0.0, 0.0, 2.0, 2.0]
    assert [ramped.at(t).gen for t in (9, 10, 11, 12, 13, 14, 100)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    early = WeightSchedule(base, early_prior=1.0, early_until=3)
    assert [early.at(t).prior for t in (0, 2, 3, 9)] == [1.0, 1.0, 5.0, 5.0]
    assert early.at(0).invariance == base.invariance and base.gen == 2.0 and base.prior == 5.0  # base unchanged


def test_weight_schedule_switches_the_clustering_temperature_late():
    from nesy_gedi.gedi.schedule import WeightSchedule

    base = GEDIWeights(temperature=0.2)
    late = WeightSchedule(base, late_temperature=0.5, late_after=3)
    assert [late.at(t).temperature for t in (0, 2, 3, 100)] == [0.2, 0.2, 0.5, 0.5]
    assert [WeightSchedule(base).at(t).temperature for t in (0, 100)] == [0.2, 0.2]
    with pytest.raises(ValueError, match="late clustering temperature must be positive"):
        WeightSchedule(base, late_temperature=0.0)


def test_invariance_is_symmetric_and_trains_both_views():
    a = torch.randn(4, 5, requires_grad=True)
    b = torch.randn(4, 5, requires_grad=True)
    loss = invariance_loss(a, b)
    assert torch.allclose(loss, invariance_loss(b, a))
    loss.backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0
    # equals the cross-entropy computed by hand
    pa, pb = a.softmax(1), b.softmax(1)
    expected = -0.5 * ((pa * pb.log()).sum(1) + (pb * pa.log()).sum(1)).mean()
    assert torch.allclose(loss, expected)


def test_sgld_lowers_energy_and_fills_buffer():
    torch.manual_seed(0)
    target = torch.zeros(1, 4, 4)
    sampler = SGLDSampler(lambda x: ((x - target) ** 2).flatten(1).sum(1), (1, 4, 4),
                          SGLDConfig(steps=30, step_size=0.1, noise=0.0, buffer_size=50, restart=0.0))
    before = sampler.buffer.samples.pow(2).flatten(1).sum(1).mean()
    x = sampler.sample(50)
    assert x.pow(2).flatten(1).sum(1).mean() < 0.01 * before
    assert x.min() >= -1 and x.max() <= 1


def test_chains_until_the_data_energy_stop_each_at_the_target_or_the_cap():
    def quadratic(x: torch.Tensor) -> torch.Tensor:
        return x.pow(2).flatten(1).sum(1)

    config = SGLDConfig(steps=2, step_size=0.05, noise=0.0)
    start = torch.linspace(0.1, 1.0, 6).view(6, 1, 1, 1).expand(6, 1, 2, 2).contiguous()
    ends, taken = langevin_until(quadratic, start, config, target=0.05, max_steps=12)
    # each step scales x by 0.9, so E falls by 0.81 a step: a chain starting at E = 4 x0^2 needs
    # ceil(log(0.05 / (4 x0^2)) / log(0.81)) steps, at least the 2 fixed ones and at most 12
    needed = [max(2, min(12, math.ceil(math.log(0.05 / (4 * x0 ** 2)) / math.log(0.81)))) if 4 * x0 ** 2 > 0.05
              else 2 for x0 in start[:, 0, 0, 0].tolist()]
    assert taken.tolist() == needed and len(set(needed)) > 2
    reached = taken < 12
    assert (quadratic(ends)[reached] <= 0.05).all() and (quadratic(ends)[~reached] > 0.05).all()
    torch.manual_seed(0)
    noisy = SGLDConfig(steps=3, step_size=0.05, noise=0.1)
    same, _ = langevin_until(quadratic, start, noisy, target=-1.0, max_steps=3)
    torch.manual_seed(0)
    assert torch.equal(same, langevin(quadratic, start, noisy))  # the fixed steps are plain SGLD


def test_objective_logs_the_chains_steps_until_the_data_energy():
    torch.manual_seed(0)
    net = MnistCNN()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    logged = {}
    for cap in (0, 6):
        gedi = GEDIObjective(net, (1, 28, 28), GEDIWeights(gen=1.0), SGLDConfig(steps=2, buffer_size=16,
                                                                                until_data=cap))
        logged[cap] = gedi(x, x).energies
    assert "chain_steps" not in logged[0]
    assert 2 <= float(logged[6]["chain_steps"]) <= 6


def test_objective_terms_and_gradients():
    torch.manual_seed(0)
    net = MnistCNN()
    gedi = GEDIObjective(net, (1, 28, 28), GEDIWeights(gen=1.0, invariance=1.0, prior=1.0),
                         SGLDConfig(steps=2, buffer_size=16))
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    augment = DigitAugment()
    terms = gedi(augment(x), augment(x))
    terms.total.backward()
    assert all(math.isfinite(v) for v in terms.items().values())
    assert all(p.grad is not None for p in net.parameters())
    expected = terms.gen + terms.invariance + terms.prior
    assert torch.allclose(terms.total, expected)


def test_sample_l2_replaces_the_penalty_on_the_samples_energy_only():
    torch.manual_seed(0)
    net = MnistCNN()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    config = SGLDConfig(steps=2, noise=0.0, buffer_size=16, restart=1.0)  # noise would use the global RNG
    terms = {}
    for sample_l2 in (None, 0.0, 0.5):
        gedi = GEDIObjective(net, (1, 28, 28), GEDIWeights(gen=1.0, invariance=0.0, prior=0.0, energy_l2=0.1,
                                                           sample_l2=sample_l2),
                             config, generator=torch.Generator().manual_seed(1))
        terms[sample_l2] = gedi(x, x)
    # the same generator gives the same samples, so the three losses differ only in the samples' penalty
    sampler = SGLDSampler(lambda z: energy(net(z)), (1, 28, 28), config, generator=torch.Generator().manual_seed(1))
    data, samples = energy(net(x)).detach(), energy(net(sampler.sample(8))).detach()
    base = data.mean() - samples.mean() + 0.1 * data.pow(2).mean()
    assert torch.allclose(terms[None].gen, base + 0.1 * samples.pow(2).mean(), atol=1e-5)
    assert torch.allclose(terms[0.0].gen, base, atol=1e-5)
    assert torch.allclose(terms[0.5].gen, base + 0.5 * samples.pow(2).mean(), atol=1e-5)
    logged = terms[0.0].items()
    assert logged["data_energy"] == pytest.approx(float(data.mean()), abs=1e-5)
    assert logged["sample_energy"] == pytest.approx(float(samples.mean()), abs=1e-5)


def test_temperature_scales_the_clustering_terms_only():
    torch.manual_seed(0)
    net = MnistCNN()
    x1, x2 = torch.rand(8, 1, 28, 28) * 2 - 1, torch.rand(8, 1, 28, 28) * 2 - 1
    weights = GEDIWeights(gen=0.0, invariance=1.0, prior=1.0, temperature=0.1)
    terms = GEDIObjective(net, (1, 28, 28), weights)(x1, x2)
    with torch.no_grad():
        f1, f2 = net(x1) / 0.1, net(x2) / 0.1
    assert terms.invariance.item() == pytest.approx(invariance_loss(f1, f2).item(), rel=1e-5)
    assert terms.prior.item() == pytest.approx(0.5 * (uniformity_loss(f1) + uniformity_loss(f2)).item(), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        GEDIObjective(net, (1, 28, 28), GEDIWeights(temperature=0.0))


def test_augment_gives_independent_views_of_the_same_shape():
    x = torch.full((6, 1, 28, 28), -1.0)
    x[:, :, 10:18, 12:16] = 1.0
    generator = torch.Generator().manual_seed(0)
    view = DigitAugment(noise=0.0)(x, generator)
    assert view.shape == x.shape and view.min() >= -1 and view.max() <= 1
    assert not torch.allclose(view[0], view[1])  # per-image parameters
    assert (view > 0).float().mean() > 0.02  # the digit is still there
    with pytest.raises(ValueError, match="batch, channels"):
        DigitAugment()(torch.zeros(28, 28))


def test_auroc_and_fpr95_match_scikit_learn():
    from sklearn.metrics import roc_auc_score, roc_curve

    from nesy_gedi.gedi import auroc, fpr_at_tpr

    generator = torch.Generator().manual_seed(0)
    inside = torch.randn(500, generator=generator) + 1.0
    outside = torch.cat([torch.randn(300, generator=generator), inside[:20]])  # with ties
    labels = [1] * len(inside) + [0] * len(outside)
    scores = torch.cat([inside, outside]).numpy()
    assert auroc(inside, outside) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert fpr_at_tpr(inside, outside) == pytest.approx(fpr[(tpr >= 0.95).argmax()], abs=1e-12)
    assert auroc(inside + 100, outside) == 1.0 and fpr_at_tpr(inside + 100, outside) == 0.0
    with pytest.raises(ValueError, match="at least one"):
        auroc(inside, torch.zeros(0))


def test_energy_score_is_logsumexp_of_the_logits():
    from nesy_gedi.gedi import energy_scores, max_softmax_scores

    net = MnistCNN()
    images = torch.randn(7, 1, 28, 28)
    with torch.no_grad():
        logits = net(images)
    assert torch.allclose(energy_scores(net, images, batch_size=3), torch.logsumexp(logits, 1))
    assert torch.allclose(max_softmax_scores(net, images, batch_size=3), logits.softmax(1).max(1).values)


def test_gradient_norm_score_is_minus_the_energy_gradient_norm():
    from nesy_gedi.gedi import gradient_norm_scores

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    images = torch.randn(7, 1, 28, 28)
    weight = net[1].weight.detach()  # d logsumexp(Wx + b) / dx = W^T softmax(Wx + b)
    with torch.no_grad():
        expected = -(net(images).softmax(1) @ weight).norm(dim=1)
    scores = gradient_norm_scores(net.train(), images, batch_size=3)
    assert torch.allclose(scores, expected, atol=1e-6) and net.training  # the mode is restored
    assert not any(p.grad is not None for p in net.parameters())  # no gradients left on the weights


def test_energy_cnn_is_smooth_and_shaped_like_mnist_cnn():
    from nesy_gedi.networks import ARCHITECTURES, EnergyCNN, build_network

    net = EnergyCNN()
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.BatchNorm2d, torch.nn.ReLU)) for m in net.modules())
    x = torch.randn(3, 1, 28, 28, requires_grad=True)
    assert net(x).shape == (3, 10)
    (grad,) = torch.autograd.grad(energy(net(x)).sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert set(ARCHITECTURES) == {"mnist_cnn", "ebm", "cnn_large"}
    large = build_network("cnn_large").eval()
    assert large(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_network("resnet")


def test_augment_strength_zero_is_the_identity():
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    weak = DigitAugment().scaled(0.0)
    assert torch.allclose(weak(images, torch.Generator().manual_seed(0)), images, atol=1e-5)
    assert DigitAugment().scaled(1.0) == DigitAugment()


def test_fashion_mnist_loads_from_its_own_folder():
    from nesy_gedi.data import load_mnist

    fashion, digits = load_mnist("test", dataset="fashion_mnist"), load_mnist("test")
    assert len(fashion) == 10000 and fashion.images.shape == (10000, 28, 28)
    assert sorted(fashion.labels.unique().tolist()) == list(range(10))
    assert not torch.equal(fashion.images[:100], digits.images[:100])


def test_augmentation_warm_up_ramps_linearly_then_is_the_augmentation_itself():
    augment = DigitAugment()
    assert augment.warmed_up(0, 4).degrees == pytest.approx(augment.degrees / 4)
    assert augment.warmed_up(2, 4).noise == pytest.approx(augment.noise * 3 / 4)
    assert augment.warmed_up(4, 4) is augment and augment.warmed_up(0, 0) is augment


@pytest.mark.parametrize("sigma, rank", [(0.0, None), (0.1, None), (0.1, 1)])
def test_pretraining_noises_only_the_images_of_the_data_energy(sigma, rank):
    """``rank``: the second of two torchrun processes, whose 6 images are rows 6-11 of a global batch of 12 and
    get those rows of the global batch's noise."""
    from nesy_gedi.gedi.objective import GEDITerms
    from nesy_gedi.gedi.saturation import SaturationMonitor
    from nesy_gedi.gedi.schedule import WeightSchedule
    from nesy_gedi.recipes.gedi_pretrain import PretrainStep
    from nesy_gedi.train.distributed import Distributed

    images = torch.rand(6, 1, 28, 28) * 2 - 1
    seen = []

    def net(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return x.flatten(1)[:, :10]

    class Split:  # a training split whose batch is the images above
        def normalized(self, batch, device):
            return images

    class Objective:  # stands in for GEDIObjective and keeps what it is given
        def __call__(self, view1, view2, data_logits, weights=None, data=None):
            self.data, self.data_logits = data, data_logits
            zero = data_logits.sum() * 0
            return GEDITerms(zero, zero, zero, zero)

    generator = torch.Generator().manual_seed(3)
    ranks, rows = (Distributed(), slice(0, 6)) if rank is None else (Distributed(rank, 2), slice(6, 12))
    total = 6 if rank is None else 12
    noise = torch.randn((total, *images.shape[1:]), generator=generator.clone_state())[rows]
    expected = images + sigma * noise if sigma else images
    objective = Objective()
    step = PretrainStep(net, Split(), objective, WeightSchedule(GEDIWeights()), DigitAugment(), 0, generator,
                        torch.device("cpu"), SaturationMonitor(-5.0), ranks=ranks, batch_size=total,
                        data_noise=sigma)
    step(torch.arange(6))
    assert torch.equal(seen[0], expected)  # the positives' forward: noised images
    assert torch.equal(objective.data_logits, expected.flatten(1)[:, :10])
    assert torch.equal(objective.data, images)  # the views and the dsm estimator get the clean images


def test_pretraining_switches_to_the_late_temperature_and_resumes_with_it(tmp_path):
    """The late temperature is the only change it makes (switching to the same value changes no weight); its start,
    half of --steps by default, is kept in the run's arguments, so --resume --steps 6 does not move it."""
    from nesy_gedi.recipes import gedi_pretrain
    from nesy_gedi.train.checkpoint import network_state

    common = ["--batch-size", "16", "--train-size", "64", "--gen-after", "1", "--sgld-steps", "2", "--sample-steps",
              "2", "--sgld-buffer-size", "64", "--checkpoint-every", "2", "--no-progress", "--device", "cpu",
              "--cluster-temperature", "0.2"]

    def weights(name: str, *argv: str) -> tuple[dict, dict[str, torch.Tensor]]:
        results = gedi_pretrain.main([*argv, *common, "--out", str(tmp_path / name)])
        state, _ = network_state(tmp_path / name / "mnist_net.pt", "mnist_cnn")
        return results, state

    plain, base = weights("plain", "--steps", "4")
    _, unchanged = weights("same", "--steps", "4", "--late-cluster-temperature", "0.2")
    first, _ = weights("late", "--steps", "4", "--late-cluster-temperature", "0.5")
    assert first["args"]["late_after"] == 2 and plain["args"]["late_after"] is None
    assert all(torch.equal(base[k], unchanged[k]) for k in base)
    extended = gedi_pretrain.main(["--steps", "6", "--resume", "--no-progress", "--out", str(tmp_path / "late")])
    assert extended["args"]["late_after"] == 2 and extended["steps"] == 6
    late, _ = network_state(tmp_path / "late" / "mnist_net.pt", "mnist_cnn")
    _, straight = weights("straight", "--steps", "6", "--late-cluster-temperature", "0.5", "--late-after", "2")
    assert all(torch.equal(late[k], straight[k]) for k in late)
    _, early = weights("early", "--steps", "6", "--late-cluster-temperature", "0.5", "--late-after", "3")
    assert not all(torch.equal(late[k], early[k]) for k in late)  # the switch's update matters


def test_fresh_samples_depend_only_on_their_generator():
    torch.manual_seed(0)
    net, config = MnistCNN(), SGLDConfig(step_size=1.0, noise=0.1)

    def draw(global_seed: int) -> torch.Tensor:
        torch.manual_seed(global_seed)
        return sample_from_noise(net, 6, (1, 28, 28), config, 3, torch.Generator().manual_seed(7), batch_size=4)

    first = draw(1)
    assert torch.equal(first, draw(2))
    other = sample_from_noise(net, 6, (1, 28, 28), config, 3, torch.Generator().manual_seed(8), batch_size=4)
    assert not torch.equal(first, other)
