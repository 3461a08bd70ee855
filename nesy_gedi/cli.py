"""``nesy-gedi PROGRAM.pl``: exact probabilities of a program's queries, with circuit sizes."""

from __future__ import annotations

import argparse
import sys

from .commands import add_common_arguments, run_command
from .model import NeSyModel
from .program import Program


def show(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nesy-gedi", description=__doc__)
    parser.add_argument("program", help="a .pl file without neural predicates, with query/1 facts")
    add_common_arguments(parser, device=False, data=False)
    args = parser.parse_args(argv)
    program = Program.from_file(args.program)
    model = NeSyModel(program, {})
    for query in program.queries:
        for answer, p in model.probabilities(str(query)).items():
            print(f"{query} {answer}: {p:.10g}")
        stats = model.compile(str(query), ()).stats
        print(f"  circuit: {stats['nodes']} nodes, {stats['edges']} edges, "
              f"compiled in {stats['ground_s'] + stats['sdd_s']:.3f}s")


def main(argv: list[str] | None = None) -> int:
    return run_command(show, argv)


if __name__ == "__main__":
    sys.exit(main())
