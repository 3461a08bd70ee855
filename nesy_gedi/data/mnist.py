"""MNIST and Fashion-MNIST from the standard IDX files (``.gz`` or plain), with a download fallback."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

ENV_VAR = "NESY_GEDI_DATA"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MEAN, STD = 0.5, 0.5  # images are scaled to [-1, 1]
# dataset name -> (folder under the data dir, torchvision class); both use the same IDX file names
DATASETS = {"mnist": ("MNIST", "MNIST"), "fashion_mnist": ("FashionMNIST", "FashionMNIST")}


@dataclass
class MnistSplit:
    """Raw images ``[N, 28, 28]`` (uint8) and labels ``[N]`` (int64) of one split."""

    images: torch.Tensor
    labels: torch.Tensor
    name: str
    _on_device: dict[torch.device, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def normalized(self, index: torch.Tensor | slice | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
        """Float images ``[n, 1, 28, 28]`` in ``[-1, 1]``.

        On an accelerator the uint8 images are kept there (copied once, about 50 MB for MNIST) and a batch is a
        gather on the device: with ``index`` on the device, no copy from the host."""
        device = torch.device(device)
        if device.type == "cpu":
            images = self.images if index is None else self.images[index]
            return normalize(images.to(device))
        if device not in self._on_device:
            self._on_device[device] = self.images.to(device)
            settle(device)
        images = self._on_device[device]
        if isinstance(index, torch.Tensor):
            index = index.to(device)
        return normalize(images if index is None else images[index])


def settle(device: torch.device) -> None:
    """Wait for a copy to ``device`` to land (runs on other CUDA streams may read it next)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def normalize(images: torch.Tensor) -> torch.Tensor:
    return ((images.float() / 255.0 - MEAN) / STD).unsqueeze(-3)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data directory from the argument or ``$NESY_GEDI_DATA`` (None if neither)."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nesy_gedi"


def find_idx(directory: Path, stem: str, folder_name: str = "MNIST") -> Path | None:
    """``stem`` (.gz or plain) under ``directory``/``folder_name``/raw, ``directory``/raw or ``directory``."""
    for folder in (directory / folder_name / "raw", directory / "raw", directory):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (unsigned-byte data), gzipped or plain."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DataError(f"{path}: only unsigned-byte IDX files are supported (type 0x{data[2]:02x})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) if shape else 0
    if len(data) - header != expected:
        raise DataError(f"{path} is truncated: header says {shape}, found {len(data) - header} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _download(cache: Path, dataset: str = "mnist") -> Path:
    try:
        import torchvision.datasets

        cls = getattr(torchvision.datasets, DATASETS[dataset][1])
        cls(str(cache), train=True, download=True)
        cls(str(cache), train=False, download=True)
    except Exception as exc:  # network errors come in many types
        reason = " ".join(str(exc).split())[:200]
        raise DataError(
            f"{DATASETS[dataset][0]} not found and the download into {cache} failed ({reason}); "
            f"put the IDX files in <dir>/{DATASETS[dataset][0]}/raw and pass --data-dir <dir> or set ${ENV_VAR}"
        ) from None
    return cache


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = True,
               dataset: str = "mnist") -> MnistSplit:
    """Load the ``train`` or ``test`` split of ``mnist`` or ``fashion_mnist``.

    Looks in ``data_dir`` (or ``$NESY_GEDI_DATA``) under ``MNIST/raw`` (or
    ``FashionMNIST/raw``), ``raw`` and the directory itself.  Without a
    directory, uses (and if needed downloads with torchvision into)
    ``~/.cache/nesy_gedi``.
    """
    if split not in FILES:
        raise DataError(f"unknown MNIST split {split!r}; use 'train' or 'test'")
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; use {' or '.join(DATASETS)}")
    folder = DATASETS[dataset][0]
    directory = resolve_data_dir(data_dir)
    explicit = directory is not None
    if directory is None:
        directory = default_cache_dir()
    paths = [find_idx(directory, stem, folder) for stem in FILES[split]]
    if None in paths:
        missing = [stem for stem, p in zip(FILES[split], paths) if p is None]
        if explicit or not download:
            raise DataError(
                f"{folder} {split} files {', '.join(missing)} (.gz or plain) not found in {directory} "
                f"(looked in {directory / folder / 'raw'}, {directory / 'raw'} and {directory})"
            )
        _download(directory, dataset)
        paths = [find_idx(directory, stem, folder) for stem in FILES[split]]
        if None in paths:
            raise DataError(f"download into {directory} did not produce the {folder} {split} files")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{folder} {split}: images {images.shape} and labels {labels.shape} do not match")
    if tuple(images.shape[1:]) != (28, 28):
        raise DataError(f"{paths[0]}: images are {tuple(images.shape[1:])}, expected 28x28")
    return MnistSplit(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), split)
