"""Atomic, validated files: training checkpoints, network weights, results JSON.

Every file is written to a temporary file in the same directory, flushed,
fsync'ed and moved into place with ``os.replace``, so a crash or a kill leaves
either the old file or the new one, never half of one.

Two kinds of ``.pt`` files, both dicts with a ``format`` key:

* ``nesy_gedi.checkpoint`` (``checkpoint.pt``): everything a run needs to
  resume (networks, optimizer, scheduler, RNG states, step, data order, extra
  state such as GEDI's replay buffer, the arguments);
* ``nesy_gedi.network`` (e.g. ``mnist_net.pt``): one network's weights, its
  architecture name and the task that made it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import DataError
from ..spectral_norm import folded_state

CHECKPOINT_FORMAT = "nesy_gedi.checkpoint"
NETWORK_FORMAT = "nesy_gedi.network"
VERSION = 1


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def _load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError, TypeError,
            AttributeError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a nesy_gedi checkpoint or torch weights file "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None


def load_checkpoint(path: str | Path, kind: str, map_location: str | torch.device = "cpu") -> dict:
    """A training checkpoint of a ``kind`` run (e.g. ``"mnist_add"``), validated."""
    path = Path(path)
    state = _load(path, map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path} is not a nesy_gedi training checkpoint")
    if state.get("version") != VERSION:
        raise DataError(f"{path} has checkpoint version {state.get('version')}; this nesy_gedi reads {VERSION}")
    if state.get("kind") != kind:
        raise DataError(f"{path} is a checkpoint of a {state.get('kind')} run, not of {kind}")
    return state


def save_network(path: str | Path, network: nn.Module, arch: str | None, kind: str | None, **extra: Any) -> None:
    """One network's weights with its architecture name (atomic; ``None`` where the run names none); spectrally
    normalised weights are saved as the plain weights they compute (:func:`~nesy_gedi.spectral_norm.folded_state`)."""
    atomic_save({"format": NETWORK_FORMAT, "version": VERSION, "arch": arch, "kind": kind,
                 "state_dict": folded_state(network.state_dict()), **extra}, path)


def network_state(path: str | Path, arch: str, map_location: str | torch.device = "cpu") -> tuple[dict, dict]:
    """``(state_dict, metadata)`` of a network file, a training checkpoint (whose metadata has its ``step``) or a
    raw state dict; spectrally normalised weights (a ``--spectral-norm`` run's checkpoint) come folded into plain ones.

    Raises :class:`DataError` if the file is none of these or holds another architecture.
    """
    path = Path(path)
    state = _load(path, map_location)
    if not isinstance(state, dict):
        raise DataError(f"{path} holds a {type(state).__name__}, not network weights")
    fmt = state.get("format")
    if fmt == CHECKPOINT_FORMAT:
        meta = {"arch": state.get("arch"), "kind": state.get("kind"), "step": state.get("step")}
        weights = state.get("modules", {}).get("net")
    elif fmt == NETWORK_FORMAT:
        meta = {k: v for k, v in state.items() if k != "state_dict"}
        weights = state.get("state_dict")
    elif fmt is None and all(isinstance(v, torch.Tensor) for v in state.values()) and state:
        meta, weights = {"arch": None}, state  # a plain state_dict, e.g. torch.save(net.state_dict())
    elif fmt is None and isinstance(state.get("state_dict"), dict):
        meta, weights = {k: v for k, v in state.items() if k != "state_dict"}, state["state_dict"]
    else:
        raise DataError(f"{path} is not a nesy_gedi network or checkpoint file")
    if not isinstance(weights, dict):
        raise DataError(f"{path} holds no network weights")
    try:
        weights = folded_state(weights)  # a checkpoint of a --spectral-norm run: its plain weights
    except ValueError as error:
        raise DataError(f"{path}: {error}") from None
    if meta.get("arch") not in (None, arch):
        raise DataError(f"{path} holds a network of architecture {meta['arch']!r}; this run uses {arch!r} "
                        f"(pass --arch {meta['arch']})")
    return weights, meta


def load_network(path: str | Path, arch: str | None = None, map_location: str | torch.device = "cpu") -> nn.Module:
    """The network saved at ``path`` (a network file, training checkpoint or raw state dict), rebuilt by the
    architecture name the file records, with as many outputs as its last layer.  ``arch``, if given, is the
    architecture the caller expects (and the one used where the file records none).

    Raises :class:`DataError` if the file holds no weights of that architecture.
    """
    from ..networks import ARCHITECTURES, build_network

    path = Path(path)
    state = _load(path, map_location)
    recorded = None
    if isinstance(state, dict) and state.get("format") in (CHECKPOINT_FORMAT, NETWORK_FORMAT):
        recorded = state.get("arch")
    name = arch or recorded
    if name is None:
        raise DataError(f"{path} does not record its network's architecture; pass one of {', '.join(ARCHITECTURES)}")
    if name not in ARCHITECTURES:
        raise DataError(f"{path} holds a network of unknown architecture {name!r}")
    weights, _ = network_state(path, name, map_location)
    matrices = [v for v in weights.values() if isinstance(v, torch.Tensor) and v.dim() == 2]
    network = build_network(name, int(matrices[-1].shape[0]) if matrices else 10)
    load_weights(network, weights, path, name)
    return network


def load_weights(network: nn.Module, weights: dict, source: str | Path, arch: str) -> None:
    """``network.load_state_dict(weights)`` with a one-line error naming the first mismatches."""
    own = network.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else ""))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected[:3]) + (" ..." if len(unexpected) > 3 else ""))
        if shapes:
            parts.append("shape mismatch " + ", ".join(shapes[:3]))
        raise DataError(f"{source} does not fit the {arch} network: {'; '.join(parts)}")
    network.load_state_dict(weights)
