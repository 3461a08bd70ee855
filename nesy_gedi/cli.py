"""``nesy-gedi PROGRAM.pl``: exact probabilities of a program's queries, printed as ProbLog prints them.

    nesy-gedi alarm.pl                 # burglary:	0.98965517
    nesy-gedi alarm.pl --format json   # {"burglary": 0.98965517241..., ...}
    nesy-gedi alarm.pl --stats         # also the circuit size of every query
"""

from __future__ import annotations

import argparse
import json
import sys

from .commands import add_common_arguments, run_command
from .errors import NoProofError
from .model import NeSyModel
from .program import Program


def show(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nesy-gedi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("program", help="a .pl file without neural predicates, with query/1 facts")
    parser.add_argument("--format", choices=("problog", "json"), default="problog")
    parser.add_argument("--stats", action="store_true", help="print circuit sizes and compile times")
    add_common_arguments(parser, device=False, data=False)
    args = parser.parse_args(argv)
    program = Program.from_file(args.program)
    model = NeSyModel(program, {})
    answers = {str(term): p for term, p in model.program_probabilities()}
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


def main(argv: list[str] | None = None) -> int:
    return run_command(show, argv)


if __name__ == "__main__":
    sys.exit(main())
