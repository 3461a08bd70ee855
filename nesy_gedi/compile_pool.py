"""Grounding and compiling distinct query templates in several worker processes.

Each worker is a fresh interpreter: it parses the program once, from its
text and source path so that ``consult`` resolves as in the parent, compiles its share of the templates and writes
the circuits, pickled, to a file the parent reads back.  A fresh interpreter, unlike ``multiprocessing``, neither
re-runs the user's script (no ``if __name__ == "__main__"`` guard needed) nor forks torch's thread pools.
Compilation is deterministic, so a worker's circuit is the one the parent would build (``CompiledQuery.digest``).
ProbLog terms cache their hash, and string hashes differ between interpreters: terms cross between processes
without those caches (:func:`dumps`), or the receiving grounder would miss them.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

from problog.logic import Term

from .compiled import CompiledQuery
from .errors import NesyError
from .program import Program
from .template import QueryTemplate


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, Term):
            return _restored_term, (type(obj), {**obj.__dict__, "_Term__hash": None, "reprhash": None})
        return NotImplemented


def _restored_term(kind: type, state: dict) -> Term:
    term = kind.__new__(kind)
    term.__dict__.update(state)
    if term.repr is not None:
        term.reprhash = hash(term.repr)
    return term


def dumps(obj: object) -> bytes:
    """``pickle.dumps``, with every ProbLog term's cached hash left out (it is recomputed where it is loaded)."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


_WORKER = ("import sys; from pathlib import Path; from nesy_gedi.compile_pool import _work; "
           "_work(*map(Path, sys.argv[1:]))")


def compile_in_pool(program: Program, domain_sizes: dict[str, int], templates: list[QueryTemplate],
                    workers: int, time_limit: float | None = None) -> list[CompiledQuery | NesyError]:
    """Compile ``templates`` in up to ``workers`` processes; per template, in the order given, its circuit or the
    :class:`NesyError` compiling it raised (e.g. no proof).  A worker that fails otherwise raises RuntimeError."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    shares = [list(range(i, len(templates), workers)) for i in range(min(workers, len(templates)))]
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    results: list[CompiledQuery | NesyError | None] = [None] * len(templates)
    with tempfile.TemporaryDirectory(prefix="nesy_gedi_compile_") as scratch:
        running = []
        for k, share in enumerate(shares):
            job, out, log = (Path(scratch) / f"{name}{k}" for name in ("job", "out", "log"))
            job.write_bytes(dumps((program.text, program.source, dict(domain_sizes),
                                          [templates[i] for i in share], time_limit)))
            with open(log, "wb") as stderr:
                process = subprocess.Popen([sys.executable, "-c", _WORKER, str(job), str(out)],
                                           env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            running.append((process, share, out, log))
        for process, share, out, log in running:
            if process.wait() != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no message"]
                raise RuntimeError(f"a compile worker failed (exit code {process.returncode}): {tail[0]}")
            for i, built in zip(share, pickle.loads(out.read_bytes())):  # our own worker's file
                results[i] = built
    return results  # type: ignore[return-value]


def _work(job: Path, out: Path) -> None:
    from .grounding import Grounder

    text, source, domain_sizes, templates, time_limit = pickle.loads(job.read_bytes())
    program = Program(text, source)
    grounder = Grounder(program)
    built: list[CompiledQuery | NesyError] = []
    for template in templates:
        evidence = grounder.evidence + list(template.evidence) if template.evidence else None
        try:
            built.append(CompiledQuery.build(program, grounder, template, domain_sizes, evidence, time_limit))
        except NesyError as exc:  # the user's error, about this template: the caller decides
            built.append(exc)
    out.write_bytes(dumps(built))

