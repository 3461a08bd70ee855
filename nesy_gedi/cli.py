"""``nesy-gedi PROGRAM.pl``: exact probabilities of a program's queries, with circuit sizes."""

from __future__ import annotations

import argparse
import sys

from .errors import NesyError
from .model import NeSyModel
from .program import Program


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nesy-gedi", description=__doc__)
    parser.add_argument("program", help="a .pl file without neural predicates, with query/1 facts")
    args = parser.parse_args(argv)
    try:
        program = Program.from_file(args.program)
        model = NeSyModel(program, {})
        for query in program.queries:
            for answer, p in model.probabilities(str(query)).items():
                print(f"{query} {answer}: {p:.10g}")
            stats = model.compile(str(query), ()).stats
            print(f"  circuit: {stats['nodes']} nodes, {stats['edges']} edges, "
                  f"compiled in {stats['ground_s'] + stats['sdd_s']:.3f}s")
    except NesyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
