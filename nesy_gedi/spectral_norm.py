"""Spectral normalisation of a network's weights (Miyato et al., 2018), as IGEBM (Du and Mordatch, 2019) uses
to keep an energy smooth.

:func:`spectrally_normalised` puts torch's ``spectral_norm`` parametrization on every ``Conv2d`` and ``Linear``
weight: each weight, as a matrix of its rows, is divided by an estimate of its largest singular value (one power
iteration per forward in training mode; for a convolution this bounds its kernel's matrix, not the convolution's
own norm).  :func:`folded_state` turns the state dict of such a network into the plain one of the same
architecture, ``W / sigma`` with the stored power-iteration vectors (the weight the network uses in eval mode), so
that every loader reads it as an ordinary network.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

ORIGINAL = ".parametrizations.weight.original"
U, V = ".parametrizations.weight.0._u", ".parametrizations.weight.0._v"


def spectrally_normalised(network: nn.Module) -> nn.Module:
    """``network`` (changed in place) with every ``Conv2d`` and ``Linear`` weight spectrally normalised."""
    layers = [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise ValueError(f"{type(network).__name__} has no Conv2d or Linear layer to normalise")
    for layer in layers:
        spectral_norm(layer)
    return network


def folded_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A plain state dict from one with spectral-norm parametrizations (each ``weight = original / sigma``,
    ``sigma = u . (original v)`` over the weight as a matrix of its rows); other entries and states without
    parametrizations pass unchanged."""
    prefixes = [key[:-len(ORIGINAL)] for key in state if key.endswith(ORIGINAL)]
    if not prefixes:
        return state
    folded = dict(state)
    for prefix in prefixes:
        try:
            original, u, v = (folded.pop(prefix + suffix) for suffix in (ORIGINAL, U, V))
        except KeyError as missing:
            raise ValueError(f"spectral-norm weights of {prefix!r} lack their power-iteration vector {missing}") \
                from None
        sigma = torch.dot(u, original.flatten(1) @ v)
        folded[prefix + ".weight"] = original / sigma
    return folded
