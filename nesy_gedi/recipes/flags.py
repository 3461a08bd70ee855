"""One command-line vocabulary for every recipe: flag groups, and the GEDI and SGLD flags generated from
:class:`~nesy_gedi.gedi.GEDIWeights`, :class:`~nesy_gedi.gedi.SGLDConfig` and
:class:`~nesy_gedi.gedi.EstimatorConfig`, so that ``nesy-gedi pretrain`` and
``nesy-gedi train --gedi-weight W`` share their names and defaults.

Each dataclass field that names a ``flag`` in its metadata becomes one option in the GEDI group (or the experimental
group, where its metadata says so); :func:`from_flags` builds the dataclass back from the parsed arguments.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from typing import TypeVar

from ..commands import nonnegative_float, nonnegative_int, positive_float, positive_int, probability

T = TypeVar("T")

GROUPS = {
    "task": "task: what is learned, from which data",
    "training": "training: budget, optimizer, run folder",
    "gedi": "GEDI and SGLD (the same names and defaults in every command)",
    "experimental": "experimental: research settings, measured in experiments/",
}

_KINDS = {"positive": positive_float, "nonnegative": nonnegative_float, "probability": probability,
          "count": nonnegative_int}


def flag_groups(parser: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """The four argument groups every recipe's ``--help`` shows, by key (``task``, ``training``, ``gedi``,
    ``experimental``)."""
    return {key: parser.add_argument_group(title) for key, title in GROUPS.items()}


def dest(flag: str) -> str:
    """The attribute name argparse gives ``flag`` (``--gen-weight`` -> ``gen_weight``)."""
    return flag.lstrip("-").replace("-", "_")


def add_dataclass_flags(groups: dict[str, argparse._ArgumentGroup], cls: type) -> None:
    """One option per field of ``cls`` whose metadata names a ``flag``, with the field's default."""
    for f in fields(cls):
        meta = f.metadata
        if "flag" not in meta:
            continue
        default = f.default if f.default is not MISSING else None
        kind = meta.get("kind")
        if "choices" in meta:
            parse = str
        elif kind is not None:
            parse = _KINDS[kind]
        elif f.type in ("int", int):
            parse = positive_int
        else:
            parse = nonnegative_float
        shown = "none" if default is None else default
        group = groups["experimental" if meta.get("experimental") else "gedi"]
        group.add_argument(meta["flag"], type=parse, default=default, metavar=meta.get("metavar"),
                           choices=meta.get("choices"), help=f"{meta['help']} (default {shown})")


def from_flags(cls: type[T], args: argparse.Namespace) -> T:
    """``cls`` with each flagged field taken from ``args`` (other fields keep their defaults)."""
    return cls(**{f.name: getattr(args, dest(f.metadata["flag"])) for f in fields(cls) if "flag" in f.metadata})


AUG_WARMUP = 500  # updates over which GEDI's augmentation strength ramps from 0 to 1


def add_aug_warmup(group: argparse._ArgumentGroup) -> None:
    """``--aug-warmup``: the ramp of GEDI's view augmentation, the same in every command."""
    group.add_argument("--aug-warmup", type=nonnegative_int, default=AUG_WARMUP, metavar="STEPS",
                       help="ramp GEDI's augmentation strength from 0 to 1 over the first STEPS updates; with "
                            "full-strength views from the start the all-uniform assignment attracts training "
                            f"(default {AUG_WARMUP}; 0: full strength at once)")
