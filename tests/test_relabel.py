"""Label-free renaming of concepts by training likelihood."""

import pytest
import torch

from nesy_gedi.cluster_head import ClusterPermutation
from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.data.shortcuts import pair_filter
from nesy_gedi.networks import MnistCNN
from nesy_gedi.data.mnist import MEAN as MNIST_MEAN, STD as MNIST_STD, MnistSplit
from nesy_gedi.recipes.addition_relabel import name_clusters_by_training_sums, training_sum_objective
from nesy_gedi.relabel import (all_permutations, best_renamings_by_counts, relabel_outputs, renaming_moves,
                               search_relabelling, set_cluster_permutation, sum_counts)


def test_moves_are_the_permutations_of_up_to_4_concepts():
    moves = renaming_moves(10)
    assert len(moves) == 45 + 2 * 120 + 3 * 210 + 6 * 210
    assert all(sorted(m.tolist()) == list(range(10)) for m in moves)
    moved = sorted(int((m != torch.arange(10)).sum()) for m in moves)
    assert moved == [2] * 45 + [3] * 240 + [4] * 1890
    assert len({tuple(m.tolist()) for m in moves}) == len(moves)


def test_search_finds_a_hidden_renaming():
    target = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    order, before, after = search_relabelling(lambda o: -(o != target).sum(1).float(), 10)
    assert torch.equal(order, target) and after == 0.0 and before == -float((torch.arange(10) != target).sum())


def test_renaming_permutes_outputs_and_adam_state():
    torch.manual_seed(0)
    x = torch.randn(5, 1, 28, 28)
    order = torch.tensor([3, 1, 0, 2, 4, 5, 9, 7, 8, 6])
    for net in (MnistCNN(), ClusterPermutation(MnistCNN(), 10, generator=torch.Generator().manual_seed(0))):
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        net(x).logsumexp(1).mean().backward()
        optimizer.step()
        param = net.scores if isinstance(net, ClusterPermutation) else net.classifier[-1].weight
        dim = 1 if isinstance(net, ClusterPermutation) else 0
        moment = optimizer.state[param]["exp_avg"].clone()
        before = net(x)
        relabel_outputs(net, order, optimizer)
        assert torch.allclose(net(x), before[:, order], atol=1e-5)
        assert torch.equal(optimizer.state[param]["exp_avg"], moment.index_select(dim, order))


def test_evenodd_cycle_is_repaired_to_a_map_that_satisfies_every_training_sum():
    data = AdditionDataset(load_mnist("test"), 1, seed=0, size=400, pair_filter=pair_filter("evenodd"))
    examples = torch.arange(len(data))
    digits = data.digits[examples, :, 0]  # [n, 2]
    cycle = torch.arange(10)
    cycle[[0, 1, 6, 5]] = torch.tensor([1, 6, 5, 0])  # the 4-cycle a seed stopped at: digit d predicted as cycle[d]
    logits = 10.0 * torch.nn.functional.one_hot(cycle[digits], 10).float().unsqueeze(2)  # [n, 2, 1, 10]
    objective = training_sum_objective(data, examples, logits, "cpu")
    order, before, after = search_relabelling(objective, 10)
    repaired = torch.argsort(order)[cycle]  # digit d is now predicted as repaired[d]
    assert repaired.tolist() in (list(range(10)), [(d + 5) % 10 for d in range(10)])
    assert after > before + 1.0 and after > -1e-3  # every training sum explained


def test_all_permutations_are_distinct_and_complete():
    perms = all_permutations(6)
    assert perms.shape == (720, 6)
    assert len({tuple(p) for p in perms.tolist()}) == 720
    assert all(sorted(p) == list(range(6)) for p in perms.tolist())


def test_counts_search_finds_a_renaming_far_from_the_identity():
    """A map that moves all 10 names (out of reach of one 4-move) is found by the exhaustive search."""
    g = torch.Generator().manual_seed(0)
    first, second = torch.randint(0, 10, (600,), generator=g), torch.randint(0, 10, (600,), generator=g)
    names = torch.tensor([3, 1, 0, 9, 4, 6, 8, 2, 7, 5])  # concept c is digit names[c]
    counts = sum_counts(first, second, names[first] + names[second], 10)
    assert counts.sum() == 600
    orders = best_renamings_by_counts(counts, top=4)
    assert torch.equal(orders[0], torch.argsort(names))
    assert len({tuple(o.tolist()) for o in orders}) == 4


def test_evenodd_wrong_permutation_is_repaired_by_the_global_starts_alone():
    """With no local round at all, the best exhaustive candidate already satisfies every training sum."""
    data = AdditionDataset(load_mnist("test"), 1, seed=0, size=400, pair_filter=pair_filter("evenodd"))
    examples = torch.arange(len(data))
    digits = data.digits[examples, :, 0]
    wrong = (torch.arange(10) * 3 + 1) % 10  # a permutation that breaks most EvenOdd sums
    logits = 10.0 * torch.nn.functional.one_hot(wrong[digits], 10).float().unsqueeze(2)
    objective = training_sum_objective(data, examples, logits, "cpu")
    counts = sum_counts(wrong[digits[:, 0]], wrong[digits[:, 1]], data.sums[examples].long(), 10)
    order, before, after = search_relabelling(objective, 10, max_rounds=0, starts=best_renamings_by_counts(counts))
    repaired = torch.argsort(order)[wrong]
    assert repaired.tolist() in (list(range(10)), [(d + 5) % 10 for d in range(10)])
    assert after > -1e-3 and after > before + 1.0


def test_sum_counts_rejects_sums_out_of_range():
    with pytest.raises(ValueError, match="sums must lie"):
        sum_counts(torch.tensor([0]), torch.tensor([1]), torch.tensor([19]), 10)


class _DigitInPixel(torch.nn.Module):
    """A perfect clusterer of images that carry their digit in pixel (0, 0): cluster ``hidden[digit]``."""

    def __init__(self, hidden: torch.Tensor) -> None:
        super().__init__()
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixel = (x[:, 0, 0, 0] * MNIST_STD + MNIST_MEAN) * 255.0
        digit = (pixel / 20.0).round().long()
        return 10.0 * torch.nn.functional.one_hot(self.hidden[digit], 10).float()


def test_clusters_are_named_through_the_head_before_the_nesy_loss_trains_it():
    labels = torch.arange(2000) % 10
    images = torch.zeros(2000, 28, 28, dtype=torch.uint8)
    images[:, 0, 0] = (labels * 20).to(torch.uint8)
    split = MnistSplit(images, labels, "synthetic")
    data = AdditionDataset(split, 1, seed=0, size=400, pair_filter=pair_filter("evenodd"))
    hidden = torch.randperm(10, generator=torch.Generator().manual_seed(5))
    head = ClusterPermutation(_DigitInPixel(hidden), 10, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    examples = torch.arange(len(data))
    x = data.images(examples).view(-1, 1, 28, 28)
    digits = data.digits[examples].reshape(-1)
    assert (head(x).argmax(1) == digits).float().mean() < 0.5  # the untrained head: no naming yet
    info = name_clusters_by_training_sums(head, optimizer, data, examples, data.images(examples), "cpu")
    assert info["cluster_naming_applied"] and info["cluster_naming_loglik"] > info["head_loglik_before_naming"] + 1
    predicted = head(x).argmax(1)
    assert torch.equal(predicted, digits) or torch.equal(predicted, (digits + 5) % 10)  # EvenOdd's two solutions
    assert head.log_mixing().exp().max(1).values.min() > 0.99
    again = name_clusters_by_training_sums(head, optimizer, data, examples, data.images(examples), "cpu")
    assert not again["cluster_naming_applied"]  # already named: left alone


def test_set_cluster_permutation_rejects_a_non_permutation():
    head = ClusterPermutation(MnistCNN(), 10)
    with pytest.raises(ValueError, match="not a permutation"):
        set_cluster_permutation(head, torch.tensor([0, 0, 2, 3, 4, 5, 6, 7, 8, 9]))
