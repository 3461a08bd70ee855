"""Data sets: MNIST from IDX files and multi-digit addition built on it."""

from .addition import AdditionDataset
from .mnist import MnistSplit, load_mnist, resolve_data_dir

__all__ = ["AdditionDataset", "MnistSplit", "load_mnist", "resolve_data_dir"]
