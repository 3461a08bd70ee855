"""The cluster -> concept head: Sinkhorn normalisation, energy preservation, saving and loading."""

import pytest
import torch

from nesy_gedi.cluster_head import ClusterPermutation, mix_logits, sinkhorn
from nesy_gedi.errors import DataError
from nesy_gedi.networks import MnistCNN
from nesy_gedi.recipes.addition import CLUSTER_HEAD, load_pretrained
from nesy_gedi.train.checkpoint import save_network


def test_sinkhorn_is_doubly_stochastic():
    log_p = sinkhorn(3 * torch.randn(10, 10, generator=torch.Generator().manual_seed(0)), 50)
    p = log_p.exp()
    assert torch.allclose(p.sum(1), torch.ones(10), atol=1e-6)  # rows exactly (last step)
    assert torch.allclose(p.sum(0), torch.ones(10), atol=1e-3)
    with pytest.raises(ValueError, match="square"):
        sinkhorn(torch.zeros(3, 4), 5)


def test_mixed_logits_are_softmax_times_mixing_and_keep_the_energy():
    g = torch.Generator().manual_seed(1)
    logits = 4 * torch.randn(6, 10, generator=g)
    log_p = sinkhorn(torch.randn(10, 10, generator=g), 30)
    out = mix_logits(logits, log_p)
    assert torch.allclose(out.softmax(1), logits.softmax(1) @ log_p.exp(), atol=1e-6)
    assert torch.allclose(out.logsumexp(1), logits.logsumexp(1), atol=1e-5)  # GEDI's energy is unchanged


def test_permutation_scores_permute_the_clusters():
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(2))
    head = ClusterPermutation(torch.nn.Identity(), scale=1.0)
    with torch.no_grad():
        head.scores.zero_()
        head.scores[torch.arange(10), perm] = 30.0
    assert head.assignment() == perm.tolist()
    x = torch.randn(4, 10)
    assert torch.allclose(head(x)[:, perm], x, atol=1e-4)  # concept perm[k] gets cluster k's logit


def test_scores_learn_a_permutation_from_labels():
    """With clean clusters, a cross-entropy on the concepts drives P to the permutation behind the labels."""
    g = torch.Generator().manual_seed(3)
    perm = torch.randperm(10, generator=g)
    clusters = torch.randint(0, 10, (512,), generator=g)
    logits = 8 * torch.nn.functional.one_hot(clusters, 10).float()
    head = ClusterPermutation(torch.nn.Identity(), generator=g)
    optimizer = torch.optim.Adam(head.parameters(), lr=5e-2)
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(head(logits), perm[clusters]).backward()
        optimizer.step()
    assert head.assignment() == perm.tolist()


def test_cluster_head_files_load_into_either_network(tmp_path):
    head = ClusterPermutation(MnistCNN(), generator=torch.Generator().manual_seed(4))
    save_network(tmp_path / "head.pt", head, "mnist_cnn", "mnist_add", head=CLUSTER_HEAD)
    again = ClusterPermutation(MnistCNN())
    load_pretrained(again, tmp_path / "head.pt", "mnist_cnn")
    assert torch.equal(again.scores, head.scores)
    plain = MnistCNN()
    load_pretrained(plain, tmp_path / "head.pt", "mnist_cnn", keep_head=True)  # the clusterer alone
    assert torch.equal(plain.classifier[-1].weight, head.clusterer.classifier[-1].weight)
    # a plain network file becomes the clusterer of a cluster head, its last layer kept
    save_network(tmp_path / "plain.pt", plain, "mnist_cnn", "gedi_pretrain")
    wrapped = ClusterPermutation(MnistCNN())
    load_pretrained(wrapped, tmp_path / "plain.pt", "mnist_cnn")
    assert torch.equal(wrapped.clusterer.classifier[-1].weight, plain.classifier[-1].weight)
    with pytest.raises(DataError, match="architecture"):
        load_pretrained(wrapped, tmp_path / "plain.pt", "ebm")
