"""Label-free renaming of the digits of an addition network by the likelihood of the training sums
(``--relabel``): the addition-specific use of :mod:`nesy_gedi.relabel`'s search."""

from __future__ import annotations

import torch

from ..cluster_head import ClusterPermutation, mix_logits
from ..data import AdditionDataset
from ..relabel import (best_renamings_by_counts, relabel_outputs, search_relabelling, set_cluster_permutation,
                       sum_counts)
from .addition_model import addition_inputs, build_model, observed_sum_indices

RELABEL_EXAMPLES = 1000  # the training examples whose sums score a renaming


def training_sum_objective(data: AdditionDataset, examples: torch.Tensor, logits: torch.Tensor, device,
                           n_concepts: int = 10, max_batch: int = 200_000):
    """``orders [M, K] -> [M]`` mean log P(observed sum) of ``examples``, with their digit logits
    ``[n, 2, N, K]`` renamed by each order (all orders through one circuit, in chunks of ``max_batch``)."""
    scorer = build_model(data.n_digits, torch.nn.Identity(), n_concepts=n_concepts)
    n = len(examples)
    answers = observed_sum_indices(scorer, data, examples) if data.n_digits == 1 else None

    def mean_log_likelihood(orders: torch.Tensor) -> torch.Tensor:
        values = []
        with torch.no_grad():
            for chunk in orders.to(logits.device).split(max(1, max_batch // n)):
                renamed = logits[..., chunk].movedim(-2, 0).reshape(len(chunk) * n, *logits.shape[1:])
                query, inputs = addition_inputs(data, examples.repeat(len(chunk)), device, renamed)
                result = scorer(query, inputs)
                log_p = result.select(answers.repeat(len(chunk))) if answers is not None else result.log_probs[:, 0]
                values.append(log_p.view(len(chunk), n).mean(1).cpu())
        return torch.cat(values)

    return mean_log_likelihood


def relabel_by_training_sums(net: torch.nn.Module, optimizer: torch.optim.Optimizer | None, data: AdditionDataset,
                             device, n_concepts: int = 10, exhaustive: bool = False) -> dict:
    """Rename ``net``'s digits where that raises the mean log-likelihood of the sums of the first
    :data:`RELABEL_EXAMPLES` training examples (:func:`nesy_gedi.relabel.search_relabelling`).

    With ``exhaustive`` (single digits only) the search also starts from the best of all k! renamings
    of the hard predictions (:func:`nesy_gedi.relabel.best_renamings_by_counts`), so it is not trapped
    where every move of up to 4 names first loses likelihood."""
    examples = torch.arange(min(len(data), RELABEL_EXAMPLES))
    images = data.images(examples, device)
    info = {}
    if exhaustive and isinstance(net, ClusterPermutation):
        info = name_clusters_by_training_sums(net, optimizer, data, examples, images, device, n_concepts)
    logits = _digit_logits(net, images)
    objective = training_sum_objective(data, examples, logits, device, n_concepts)
    starts = None
    if exhaustive:  # also the best of all k! renamings of the hard predictions, counted
        predicted = logits[:, :, 0].argmax(-1)
        counts = sum_counts(predicted[:, 0], predicted[:, 1], data.sums[examples].long(), n_concepts)
        starts = best_renamings_by_counts(counts)
    order, before, after = search_relabelling(objective, n_concepts, starts=starts)
    if not torch.equal(order, torch.arange(n_concepts)):
        relabel_outputs(net, order, optimizer)
    return {"relabel_order": order.tolist(), "relabel_loglik_before": before, "relabel_loglik_after": after, **info}


def _digit_logits(net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``net``'s logits ``[n, 2, N, K]`` of addition images ``[n, 2, N, 1, 28, 28]``, in eval mode."""
    was_training = net.training
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(chunk) for chunk in images.view(-1, 1, 28, 28).split(4000)])
    net.train(was_training)
    return logits.view(*images.shape[:3], -1)


def name_clusters_by_training_sums(head: ClusterPermutation, optimizer: torch.optim.Optimizer | None,
                                   data: AdditionDataset, examples: torch.Tensor, images: torch.Tensor, device,
                                   n_concepts: int = 10) -> dict:
    """Name the clusterer's clusters directly (single digits): the best of all k! namings of its hard
    clusters, counted by the training sums they explain and rescored exactly on the cluster logits.
    Where that naming differs from the head's current map and explains the sums better (e.g. than the
    near-uniform map of a head that the NeSy loss has not trained yet), the head is set to it."""
    cluster_logits = _digit_logits(head.clusterer, images)
    predicted = cluster_logits[:, :, 0].argmax(-1)
    starts = best_renamings_by_counts(sum_counts(predicted[:, 0], predicted[:, 1], data.sums[examples].long(),
                                                 n_concepts))
    values = training_sum_objective(data, examples, cluster_logits, device, n_concepts)(starts)
    best = int(values.argmax())
    with torch.no_grad():  # the head's logits, from the same cluster logits (no second forward)
        head_logits = mix_logits(cluster_logits.flatten(0, 2), head.log_mixing()).view_as(cluster_logits)
    current = float(training_sum_objective(data, examples, head_logits, device, n_concepts)(
        torch.arange(n_concepts).unsqueeze(0))[0])
    names = torch.argsort(starts[best]).tolist()  # cluster c -> concept names[c]
    applied = names != head.assignment() and float(values[best]) > current + 1e-4
    if applied:
        set_cluster_permutation(head, starts[best], optimizer)
    return {"cluster_naming": starts[best].tolist(), "cluster_naming_loglik": float(values[best]),
            "head_loglik_before_naming": current, "cluster_naming_applied": applied}
