"""Presets: a recipe that works, as one word (``--preset NAME``) or a TOML file of one's own (``--config FILE``).

A preset file (``nesy_gedi/recipes/presets/NAME.toml``) holds::

    command = "train"                 # the recipe it is for: "train" or "pretrain"
    description = "..."               # one line, shown by --help
    needs = ["pretrained"]            # flags the user must still give (optional)
    [flags]                           # flag names without the leading dashes, and their values
    pairs = "evenodd"
    cluster-head = true

Its values become the parser's defaults, checked like the flags themselves, so flags on the command line
override them.  A ``--config`` file has the same form (``command`` may be left out); it applies after the preset.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESET_DIR = "presets"


@dataclass
class Preset:
    name: str
    command: str | None
    description: str = ""
    needs: list[str] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)


def _read(path: Path, name: str) -> Preset:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"command", "description", "needs", "flags"}
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; a preset has command, description, "
                         "needs and [flags]")
    if not isinstance(data.get("flags", {}), dict):
        raise ValueError(f"{path}: [flags] must be a table of flag = value")
    return Preset(name, data.get("command"), data.get("description", ""), list(data.get("needs", [])),
                  dict(data.get("flags", {})))


def available(command: str | None = None) -> dict[str, Preset]:
    """The shipped presets by name (only those for ``command`` if given)."""
    folder = files(__package__).joinpath(PRESET_DIR)
    found = {}
    for entry in sorted(Path(str(folder)).glob("*.toml")):
        preset = _read(entry, entry.stem)
        if command is None or preset.command == command:
            found[preset.name] = preset
    return found


def add_preset_arguments(group: argparse._ArgumentGroup, command: str) -> None:
    """``--preset NAME`` (the shipped presets of ``command``) and ``--config FILE``."""
    presets = available(command)
    listing = "; ".join(f"{name}: {p.description}" for name, p in presets.items())
    listing = listing.replace("%", "%%")  # argparse %-formats help text
    group.add_argument("--preset", choices=list(presets), default=None, metavar="NAME",
                       help=f"start from a recipe that works (flags still override it): {listing}")
    group.add_argument("--config", default=None, metavar="FILE",
                       help="a TOML file of flag values, in a preset's form (applied after --preset)")


def _action(parser: argparse.ArgumentParser, key: str) -> argparse.Action | None:
    return next((a for a in parser._actions if f"--{key}" in a.option_strings), None)


def _apply(parser: argparse.ArgumentParser, preset: Preset, source: str, command: str) -> None:
    if preset.command is not None and preset.command != command:
        parser.error(f"{source} is for 'nesy-gedi {preset.command}', not '{command}'")
    defaults = {}
    for key, value in preset.flags.items():
        action = _action(parser, key)
        if action is None or key in ("preset", "config"):
            parser.error(f"{source}: unknown flag --{key}")
        if action.nargs == 0:  # store_true / store_false
            if not isinstance(value, bool):
                parser.error(f"{source}: --{key} takes true or false, got {value!r}")
        else:
            if isinstance(value, (dict, list)):
                parser.error(f"{source}: --{key} takes one value, got {value!r}")
            if action.type is not None:
                try:
                    value = action.type(str(value))
                except argparse.ArgumentTypeError as exc:
                    parser.error(f"{source}: argument --{key}: {exc}")
            if action.choices is not None and value not in action.choices:
                parser.error(f"{source}: argument --{key}: invalid choice {value!r} (choose from "
                             f"{', '.join(map(str, action.choices))})")
        defaults[action.dest] = value
    parser.set_defaults(**defaults)


def parse_with_presets(parser: argparse.ArgumentParser, argv: Sequence[str] | None, command: str) -> argparse.Namespace:
    """Parse ``argv`` with the ``--preset`` and ``--config`` values as defaults; a flag the preset ``needs`` but
    that is not given is a usage error."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset")
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    applied = []
    presets = available(command)
    if known.preset is not None:  # an unknown name: the full parse says so, with the choices
        preset = presets.get(known.preset) or available().get(known.preset)
        if preset is not None:
            applied.append(preset)
            _apply(parser, preset, f"preset {known.preset}", command)
    if known.config is not None:
        path = Path(known.config).expanduser()
        if not path.is_file():
            parser.error(f"argument --config: {known.config} does not exist")
        try:
            config = _read(path, path.stem)
        except ValueError as exc:
            parser.error(f"argument --config: {exc}")
        applied.append(config)
        _apply(parser, config, f"--config {known.config}", command)
    args = parser.parse_args(argv)
    if getattr(args, "resume", False):  # the checkpoint holds the run's arguments
        return args
    for preset in applied:
        for key in preset.needs:
            action = _action(parser, key)
            if action is not None and getattr(args, action.dest) in (None, False):
                source = f"preset {preset.name}" if preset in presets.values() else f"--config {known.config}"
                parser.error(f"{source} needs --{key}")
    return args
