"""DeepProbLog's ``deepproblog.dataset``: datasets of queries, their combinations and mutations, query files,
image folders, and ``DataLoader`` with DeepProbLog's batching order."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from math import ceil
from pathlib import Path
from typing import Callable, Iterator, Sequence, TextIO

import torch
from PIL import Image
from problog.logic import Constant, Term, term2list
from problog.parser import PrologParser
from problog.program import ExtendedPrologFactory

from ..errors import DataError
from .query import Query


class Dataset(ABC):
    """A sequence of examples, each turned into a :class:`Query` by :meth:`to_query`."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def to_query(self, i: int) -> Query: ...

    def __getitem__(self, index):
        """The ``index``-th raw example (an image, a tensor): defined by datasets that hold raw examples."""
        raise NotImplementedError(f"{type(self).__name__} does not define __getitem__")

    def __iter__(self) -> Iterator:
        for i in range(len(self)):
            yield self[i]

    def to_queries(self) -> list[Query]:
        return [self.to_query(i) for i in range(len(self))]

    def subset(self, i: int, j: int | None = None) -> "Dataset":
        """Examples ``[0, i)``, or ``[i, j)`` when ``j`` is given."""
        return Subset(self, 0, i) if j is None else Subset(self, i, j)

    def __add__(self, other: "Dataset") -> "Dataset":
        return Extension(self, other)

    def fold(self, n: int, i: int) -> tuple["Dataset", "Dataset"]:
        """``(training folds, held-out fold)`` of an ``n``-fold split by example index modulo ``n``."""
        return Fold(self, n, i, False), Fold(self, n, i, True)

    def to_file_repr(self, i: int) -> str:
        """Example ``i`` as a line of a query file (:func:`load` reads it back)."""
        return str(self.to_query(i).to_text_query())

    def write_to_file(self, f: TextIO) -> None:
        for i in range(len(self)):
            f.write(self.to_file_repr(i) + "\n")

    def __str__(self) -> str:
        return "\n".join(str(self.to_query(i)) for i in range(min(len(self), 5)))


class Subset(Dataset):
    """Examples ``[i, j)`` of ``dataset``."""

    def __init__(self, dataset: Dataset, i: int, j: int) -> None:
        self.dataset, self.i, self.j = dataset, i, min(j, len(dataset))

    def __len__(self) -> int:
        return max(0, self.j - self.i)

    def to_query(self, i: int, *args) -> Query:
        return self.dataset.to_query(self.i + i, *args)

    def to_file_repr(self, i: int) -> str:
        return self.dataset.to_file_repr(self.i + i)

    def __getitem__(self, item):
        return self.dataset[self.i + item]


class Extension(Dataset):
    """The examples of ``a``, then those of ``b``."""

    def __init__(self, a: Dataset, b: Dataset) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a) + len(self.b)

    def _part(self, i: int) -> tuple[Dataset, int]:
        return (self.a, i) if i < len(self.a) else (self.b, i - len(self.a))

    def to_query(self, i: int, *args) -> Query:
        part, j = self._part(i)
        return part.to_query(j, *args)

    def to_file_repr(self, i: int) -> str:
        part, j = self._part(i)
        return part.to_file_repr(j)

    def __getitem__(self, item):
        part, j = self._part(item)
        return part[j]


class Fold(Dataset):
    """The examples of ``parent`` whose index modulo ``n`` is ``i`` (``split``: the held-out fold) or is not."""

    def __init__(self, parent: Dataset, n: int, i: int, split: bool) -> None:
        if not 0 <= i < n:
            raise ValueError(f"fold {i} of {n} does not exist")
        self.parent, self.n, self.i, self.split = parent, n, i, split
        self.indices = [i] if split else [x for x in range(n) if x != i]
        full, extra = divmod(len(parent), n)
        self._len = full * len(self.indices) + sum(1 for x in self.indices if x < extra)

    def __len__(self) -> int:
        return self._len

    def _index(self, i: int) -> int:
        block, position = divmod(i, len(self.indices))
        return block * self.n + self.indices[position]

    def to_query(self, i: int) -> Query:
        return self.parent.to_query(self._index(i))

    def to_file_repr(self, i: int) -> str:
        return self.parent.to_file_repr(self._index(i))


class MutatingDataset(Dataset):
    """``inner_dataset`` with each query passed through ``mutator(index, query)`` (noise, negative examples)."""

    def __init__(self, inner_dataset: Dataset, mutator: Callable[[int, Query], Query]) -> None:
        self.inner_dataset, self.mutator = inner_dataset, mutator

    def __len__(self) -> int:
        return len(self.inner_dataset)

    def to_query(self, i: int) -> Query:
        return self.mutator(i, self.inner_dataset.to_query(i))

    def __getitem__(self, item):
        return self.inner_dataset[item]


def _seed(seed: int | None) -> int:
    return random.SystemRandom().randint(0, 2 ** 64) if seed is None else seed


class NoiseMutatorDecorator:
    """A mutator that applies ``inner_mutator`` to each example with probability ``p``, the same examples for the
    same ``seed`` (each example's draw comes from ``random.Random(seed ^ index)``)."""

    def __init__(self, p: float, inner_mutator: Callable[[int, Query], Query], seed: int | None = None) -> None:
        self.p, self.inner_mutator, self.seed = p, inner_mutator, _seed(seed)

    def __call__(self, index: int, query: Query) -> Query:
        if random.Random(self.seed ^ index).random() < self.p:
            return self.inner_mutator(index, query)
        return query


class NumericIncorrectOutputMutator:
    """A mutator that replaces each numeric output argument by another value of ``domain``; with ``change_p`` the
    query's target probability becomes ``1 - p``."""

    def __init__(self, domain: Sequence[int], change_p: bool = False, seed: int | None = None) -> None:
        self.domain, self.change_p, self.seed = list(domain), change_p, _seed(seed)

    def __call__(self, index: int, query: Query) -> Query:
        rng = random.Random(self.seed ^ index)
        args = list(query.query.args)
        for i in query.output_ind:
            if not isinstance(args[i], Constant):
                raise ValueError(f"output argument {i} of {query.query} is not a number")
            choices = [v for v in self.domain if v != args[i].value]
            args[i] = Constant(rng.choice(choices))
        return Query(Term(query.query.functor, *args), query.substitution,
                     1.0 - query.p if self.change_p else query.p, query.output_ind)


class ImageDataset(Dataset, ABC):
    """Images ``ROOT/<index>.<extension>`` as RGB, through ``transform``; subclasses define :meth:`to_query`."""

    def __init__(self, root: str | Path, extension: str = "png", transform: Callable | None = None) -> None:
        self.root, self.extension, self.transform = Path(root), extension, transform

    def __getitem__(self, index):
        if isinstance(index, tuple):
            index = index[0]
        path = self.root / f"{index}.{self.extension}"
        try:
            with open(path, "rb") as f:
                image = Image.open(f).convert("RGB")
        except FileNotFoundError:
            raise DataError(f"image {path} not found") from None
        return self.transform(image) if self.transform is not None else image


def load(filename: str | Path, max_size: int | None = None) -> list[Query]:
    """The queries of a file written by :meth:`Dataset.write_to_file`: one per line, ``p::term`` or
    ``p::subs(term, [[var, value], ...])``."""
    parser = PrologParser(ExtendedPrologFactory())
    queries = []
    try:
        lines = Path(filename).read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"query file {filename} not found") from None
    for i, line in enumerate(lines):
        if max_size is not None and i >= max_size:
            break
        for term in parser.parseString(line):
            p = 1.0
            if term.probability is not None:
                p = float(term.probability)
                term = term.with_probability()
            if term.functor == "subs":
                substitution = {}
                for pair in term2list(term.args[1], False):
                    key, value = term2list(pair, False)
                    substitution[key] = value
                queries.append(Query(term.args[0], substitution, p))
            else:
                queries.append(Query(term, p=p))
    return queries


class QueryDataset(Dataset):
    """Queries given as a list, or read from a file by :func:`load`."""

    def __init__(self, queries: list[Query] | str | Path) -> None:
        self.queries = queries if isinstance(queries, list) else load(queries)

    def __len__(self) -> int:
        return len(self.queries)

    def to_query(self, i: int) -> Query:
        return self.queries[i]


class DataLoader:
    """Batches of queries; shuffled each epoch with ``random.Random(seed)`` when ``shuffle`` is true.

    Iterating gives lists of :class:`Query` as DeepProbLog's loader does;
    :func:`~nesy_gedi.deepproblog.train.train_model` asks :meth:`epoch_order`
    for each epoch's order instead, so that it can checkpoint the loader's state.
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset.to_queries()
        self.batch_size = batch_size
        self.length = len(self.dataset)
        self.shuffle = shuffle
        self.epoch = 0
        self.i = 0  # position of the next query in the current epoch's order
        self.rng = random.Random(seed)
        self._iterator = None

    def _shuffling(self) -> bool:
        return bool(self.shuffle(self.epoch)) if callable(self.shuffle) else bool(self.shuffle)

    def epoch_order(self) -> torch.Tensor:
        """Example indices of the next epoch."""
        indices = list(range(self.length))
        if self._shuffling():
            self.rng.shuffle(indices)
        self.epoch += 1
        return torch.tensor(indices, dtype=torch.long)

    def __iter__(self):
        order = self.epoch_order().tolist()
        for start in range(0, self.length, self.batch_size):
            self.i = min(start + self.batch_size, self.length)
            yield [self.dataset[i] for i in order[start:start + self.batch_size]]
        self.i = 0

    def __len__(self) -> int:
        return int(ceil(self.length / self.batch_size))

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.rng.setstate(state["rng"])
