"""Estimated cluster sizes for GEDI's prior (nesy_gedi/gedi/cluster_sizes.py)."""

import math

import pytest
import torch

from nesy_gedi.gedi import ClusterSizes, GEDIObjective, GEDIWeights, size_prior_loss
from nesy_gedi.gedi.cluster_sizes import bounded_sizes
from nesy_gedi.gedi.objective import uniformity_loss


def one_hot_logits(clusters: list[int], k: int) -> torch.Tensor:
    return 30.0 * torch.nn.functional.one_hot(torch.tensor(clusters), k).float()


def test_size_prior_is_the_uniformity_prior_for_uniform_sizes():
    logits = torch.randn(16, 5)
    uniform = torch.full((5,), 1 / 5).log()
    assert float(size_prior_loss(logits, uniform)) == pytest.approx(float(uniformity_loss(logits)), abs=1e-6)


def test_size_prior_is_zero_at_its_sizes_and_penalises_other_sizes():
    unequal = one_hot_logits([0, 0, 1, 2], 3)  # sizes 1/2, 1/4, 1/4
    sizes = torch.tensor([0.5, 0.25, 0.25]).log()
    assert float(size_prior_loss(unequal, sizes)) == pytest.approx(0.0, abs=1e-6)
    assert float(uniformity_loss(unequal)) > 0.02
    balanced = one_hot_logits([0, 1, 2], 3)
    expected = 0.5 * math.log(0.5 * 3) + 2 * 0.25 * math.log(0.25 * 3)  # KL(pi || U)
    assert float(size_prior_loss(balanced, sizes)) == pytest.approx(expected, rel=1e-4)


def test_bounded_sizes():
    # within the bounds: the fractions themselves
    assert bounded_sizes(torch.tensor([30.0, 20.0, 30.0, 20.0]), 0.5, 1.5).tolist() == pytest.approx([0.3, 0.2] * 2)
    # one large cluster, three empty ones: bounds [0.125, 0.375]; the large one ends at the ceiling
    sizes = bounded_sizes(torch.tensor([90.0, 10.0, 0.0, 0.0]), 0.5, 1.5)
    assert float(sizes.sum()) == pytest.approx(1.0)
    assert float(sizes[0]) == pytest.approx(0.375, abs=1e-6)
    assert (sizes >= 0.125 - 1e-9).all() and (sizes <= 0.375 + 1e-9).all()
    assert float(sizes[2]) == pytest.approx(float(sizes[3]))
    assert torch.allclose(bounded_sizes(torch.zeros(4), 0.5, 1.5), torch.full((4,), 0.25, dtype=torch.float64))


def test_cluster_sizes_start_uniform_and_count_only_the_last_period_before_after():
    est = ClusterSizes(k=2, after=5, period=2, ceiling=2)
    for _ in range(3):  # updates 1-3: before the counting window (updates 4-5)
        est.observe(one_hot_logits([0, 0, 0, 0], 2))
        assert torch.allclose(est.sizes, torch.full((2,), 0.5, dtype=torch.float64))
    est.observe(one_hot_logits([0, 0, 0, 1], 2))  # update 4
    est.observe(one_hot_logits([0, 0, 1, 1], 2))  # update 5: first estimate, from updates 4-5: 5 vs 3
    assert est.sizes.tolist() == pytest.approx([5 / 8, 3 / 8])
    est.observe(one_hot_logits([1, 1, 1, 1], 2))  # update 6: counted, no new estimate
    assert est.sizes.tolist() == pytest.approx([5 / 8, 3 / 8])
    est.observe(one_hot_logits([1, 1, 1, 1], 2))  # update 7: cluster 0 empty -> at the floor 0.5 / 2
    assert est.sizes.tolist() == pytest.approx([0.25, 0.75])
    assert est.history == [[0.625, 0.375], [0.25, 0.75]]
    copy = ClusterSizes(k=2, after=5, period=2, ceiling=2)
    copy.load_state_dict(est.state_dict())
    assert torch.equal(copy.sizes, est.sizes) and copy.updates == 7 and copy.history == est.history


def test_cluster_sizes_reject_bad_settings():
    for kwargs, needle in (({"k": 1, "after": 0}, "2 clusters"), ({"k": 3, "after": 0, "period": 0}, "period"),
                           ({"k": 3, "after": 0, "floor": 0.0}, "floor"),
                           ({"k": 3, "after": 0, "ceiling": 0.9}, "ceiling"), ({"k": 3, "after": 0, "ceiling": 4}, "ceiling")):
        with pytest.raises(ValueError, match=needle):
            ClusterSizes(**kwargs)


def test_objective_uses_and_updates_the_estimated_sizes():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randn(8, 1, 2, 2)
    sizes = ClusterSizes(k=3, after=1, period=1)
    sizes.sizes = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    objective = GEDIObjective(net, (1, 2, 2), GEDIWeights(gen=0.0, invariance=0.0, prior=1.0), sizes=sizes)
    terms = objective(x, x)
    expected = size_prior_loss(net(x), torch.tensor([0.6, 0.3, 0.1]).log())
    assert float(terms.prior.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    counts = torch.bincount(net(x).argmax(1), minlength=3).double()
    assert torch.allclose(sizes.sizes, bounded_sizes(counts, 0.5, 1.5))  # re-estimated from this update
    with pytest.raises(ValueError, match="not both"):
        GEDIObjective(net, (1, 2, 2), GEDIWeights(prior_floor=0.5), sizes=ClusterSizes(3, 0))
