"""``nesy-gedi``: the package's command.

    nesy-gedi run alarm.pl                 # exact probabilities of a program's queries, as ProbLog prints them
    nesy-gedi run alarm.pl --format json   # {"burglary": 0.98965517241..., ...}; --stats: circuit sizes
    nesy-gedi train --n-digits 2           # MNIST addition through a ProbLog program (--help: every flag)
    nesy-gedi pretrain                     # GEDI pretraining of the digit network on unlabeled images
    nesy-gedi presets                      # the recipes that work, one word each (--preset NAME)

``nesy-gedi PROGRAM.pl`` is short for ``nesy-gedi run PROGRAM.pl``.
"""

from __future__ import annotations

import argparse
import json
import sys

from .commands import add_common_arguments, positive_int, run_command
from .errors import NoProofError
from .model import NeSyModel
from .program import Program


def show(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nesy-gedi run", description="Exact probabilities of a program's queries.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("program", help="a .pl file without neural predicates, with query/1 facts")
    parser.add_argument("--format", choices=("problog", "json"), default="problog")
    parser.add_argument("--stats", action="store_true", help="print circuit sizes and compile times")
    parser.add_argument("--compile-workers", type=positive_int, default=1, metavar="K",
                        help="ground and compile the distinct queries in K processes (default 1: in this one)")
    add_common_arguments(parser, device=False, data=False)
    args = parser.parse_args(argv)
    program = Program.from_file(args.program)
    model = NeSyModel(program, {})
    answers = {str(term): p for term, p in model.program_probabilities(args.compile_workers)}
    stats: dict[str, dict] = {}
    for query in model.grounder.queries if args.stats else ():
        try:
            s = model.compile(str(query), ()).stats
        except NoProofError:
            continue
        stats[str(query)] = {k: s[k] for k in ("nodes", "edges")} | {"compile_s": s["ground_s"] + s["sdd_s"]}
    if args.format == "json":
        print(json.dumps({"probabilities": answers, **({"circuits": stats} if args.stats else {})}, indent=2))
        return
    width = max((len(k) for k in answers), default=0)
    for term, p in sorted(answers.items()):  # ProbLog prints its answers sorted
        print(f"{term + ':':>{width + 1}}\t{p:.8g}")
    for query, s in stats.items():
        print(f"% {query}: circuit of {s['nodes']} nodes, {s['edges']} edges, compiled in {s['compile_s']:.3f}s")


def list_presets(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nesy-gedi presets", description="List the shipped presets.")
    parser.parse_args(argv)
    from .recipes.presets import available

    for name, preset in available().items():
        flags = " ".join(f"--{k}" + ("" if v is True else f" {v}") for k, v in preset.flags.items())
        needs = "".join(f" --{k} ..." for k in preset.needs)
        print(f"{name} (nesy-gedi {preset.command}): {preset.description}\n    {flags}{needs}")


def _train(argv: list[str] | None) -> object:
    from .recipes.addition import main as train

    return train(argv)


def _pretrain(argv: list[str] | None) -> object:
    from .recipes.gedi_pretrain import main as pretrain

    return pretrain(argv)


COMMANDS = {"run": show, "train": _train, "pretrain": _pretrain, "presets": list_presets}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    if args[0] in COMMANDS:
        return run_command(COMMANDS[args[0]], args[1:])
    if args[0].startswith("-") or not args[0].endswith(".pl"):
        print(f"nesy-gedi: error: unknown command {args[0]!r}; choose from {', '.join(COMMANDS)} "
              "(or give a .pl program)", file=sys.stderr)
        return 2
    return run_command(show, args)


if __name__ == "__main__":
    sys.exit(main())
