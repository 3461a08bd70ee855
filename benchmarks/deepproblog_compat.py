"""One DeepProbLog script, run twice: with ``deepproblog`` and with ``nesy_gedi.deepproblog`` imports.

    python -m benchmarks.deepproblog_compat                  # N = 1 and 2
    python -m benchmarks.deepproblog_compat --n-digits 1 --train-examples 3000 --test-examples 500
    python -m benchmarks.deepproblog_compat --task list-sum --max-length 5

The script (``SCRIPT`` below) is written the way DeepProbLog's own
``examples/MNIST/addition.py`` is: ``Network(..., batching=True)``, ``Model``,
``ExactEngine``, tensor sources, ``DataLoader(train_set, 2, False)``,
``train_model``, ``get_confusion_matrix``, ``save_state``.  Only the import
prefix differs between the two runs.  DeepProbLog runs in its own venv (made
on first use, ``--dpl-venv``); both use ``programs/addition.pl`` and the same
torch seed.  Writes ``benchmarks/deepproblog_compat.{json,md}``.

``--task noisy`` runs DeepProbLog's ``addition_noisy`` example: 20% of the training sums replaced by a uniform
draw, ``t(0.1)::noisy`` (``programs/noisy_addition.pl``) learned by ``optimizer.SGD(model, 1e-3)`` beside the
network; it reports the learned probability too.  Writes ``benchmarks/deepproblog_compat_noisy.{json,md}``.

``--examples --dpl-repo DIR`` runs DeepProbLog's own Forth Sort, Add and WAP scripts (from its installed
package or, for WAP, its repository; data from ``DIR``, a checkout of its repository) with the import prefix
rewritten, beside the unchanged ones, and reports the wall time and each run's last ``Test:`` accuracy
(``--example`` picks some, the table keeps the others' rows; ``--wap-epochs`` shortens WAP).  Writes
``benchmarks/deepproblog_examples.md``.

``--task list-sum`` runs a second script (``LIST_SCRIPT``): the sum of a list of
1 to ``--max-length`` MNIST images through ``programs/list_sum.pl``, each list
length its own query shape; its dataset class is written in the script against
DeepProbLog's ``Dataset``/``Query`` API and its MNIST ``datasets``, as a user would.
Writes ``benchmarks/deepproblog_compat_list_sum.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.peers import _site_packages, deepproblog_with_mnist
from nesy_gedi.commands import add_common_arguments, positive_int, run_command
from nesy_gedi.data.mnist import resolve_data_dir
from nesy_gedi.errors import DataError
from nesy_gedi.programs import program_path

ROOT = Path(__file__).resolve().parents[1]

# Imports shared by both scripts (``{P}``: the import prefix), then each script's own datasets,
# then the same training and testing code (``_TRAIN_AND_TEST``).
_IMPORTS = '''
import json, random, sys, time
import torch
from problog.logic import Constant, Term, list2term
from {P}.dataset import DataLoader, Dataset
from {P}.engines import ExactEngine
from {P}.evaluate import get_confusion_matrix
from {P}.examples.MNIST.data import MNIST_train, MNIST_test, addition, datasets
from {P}.examples.MNIST.network import MNIST_Net
from {P}.model import Model
from {P}.network import Network
from {P}.query import Query
from {P}.train import train_model
'''

_TRAIN_AND_TEST = '''
network = MNIST_Net()
net = Network(network, "mnist_net", batching=True)
net.optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
model = Model(program, [net])
model.set_engine(ExactEngine(model), cache=True)
model.add_tensor_source("train", MNIST_train)
model.add_tensor_source("test", MNIST_test)
loader = DataLoader(train_set, 2, False)
start = time.perf_counter()
train = train_model(model, loader, 1, log_iter=100000, profile=0)
train_s = time.perf_counter() - start
model.save_state(snapshot)
start = time.perf_counter()
accuracy = get_confusion_matrix(model, test_set, verbose=0).accuracy()
test_s = time.perf_counter() - start
print(json.dumps({{"train_examples": len(train_set), "train_s": train_s, "test_examples": len(test_set),
                  "test_s": test_s, "accuracy": float(accuracy)}}))
'''

SCRIPT = _IMPORTS + '''
N, n_train, n_test, seed, program, snapshot = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
torch.manual_seed(seed)
train_set = addition(N, "train").subset(n_train)
test_set = addition(N, "test").subset(n_test)
''' + _TRAIN_AND_TEST

LIST_SCRIPT = _IMPORTS + '''

class ListSum(Dataset):
    """sum_list([p0, ..., pk], Sum) over disjoint random lists of 1 to max_length images."""

    def __init__(self, split, max_length, seed):
        self.split = split
        self.labels = datasets[split].targets
        rng = random.Random(seed)
        indices = list(range(len(self.labels)))
        rng.shuffle(indices)
        self.data, position = [], 0
        while True:
            length = rng.randint(1, max_length)
            if position + length > len(indices):
                break
            self.data.append(indices[position:position + length])
            position += length

    def __len__(self):
        return len(self.data)

    def to_query(self, i):
        names = [Term("p%d" % j) for j in range(len(self.data[i]))]
        substitution = {{n: Term("tensor", Term(self.split, Constant(k))) for n, k in zip(names, self.data[i])}}
        total = sum(int(self.labels[k]) for k in self.data[i])
        return Query(Term("sum_list", list2term(names), Constant(total)), substitution)


max_length, n_train, n_test, seed, program, snapshot = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
torch.manual_seed(seed)
train_set = ListSum("train", max_length, seed).subset(n_train)
test_set = ListSum("test", max_length, seed).subset(n_test)
''' + _TRAIN_AND_TEST

NOISY_SCRIPT = _IMPORTS.replace("from {P}.query import Query", """from {P}.query import Query
from {P}.dataset import MutatingDataset, NoiseMutatorDecorator
from {P}.examples.MNIST.data import MNISTOperator
from {P}.optimizer import SGD""") + '''

def noise(index, query):
    return query.replace_output([Constant(random.Random(index).randint(0, 18))])


n_train, n_test, seed = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
program, snapshot = sys.argv[5], sys.argv[6]
torch.manual_seed(seed)
clean = MNISTOperator(dataset_name="train", function_name="addition_noisy", operator=sum, size=1).subset(n_train)
train_set = MutatingDataset(clean, NoiseMutatorDecorator(0.2, noise, seed=seed))
test_set = addition(1, "test").subset(n_test)
''' + _TRAIN_AND_TEST.replace("loader = DataLoader", "model.optimizer = SGD(model, 1e-3)\nloader = DataLoader").replace(
    '"accuracy": float(accuracy)}}', '"accuracy": float(accuracy), "noisy": float(model.parameters[0])}}')

TASKS = {"addition": (SCRIPT, "addition.pl", "deepproblog_compat"),
         "list-sum": (LIST_SCRIPT, "list_sum.pl", "deepproblog_compat_list_sum"),
         "noisy": (NOISY_SCRIPT, "noisy_addition.pl", "deepproblog_compat_noisy")}


def run_script(python: str, prefix: str, n: int, n_train: int, n_test: int, seed: int, env: dict,
               task: str = "addition") -> dict:
    """One run of the ``task`` script with ``prefix`` imports (``n``: digits per number, or the longest list)."""
    source, program, _ = TASKS[task]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "script.py"
        script.write_text(source.format(P=prefix))
        command = [python, str(script), str(n), str(n_train), str(n_test), str(seed),
                   str(program_path(program)), str(Path(tmp) / "snapshot.pth")]
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"the {prefix} run failed (exit {done.returncode}): {last}")
    row = json.loads(lines[-1])
    row.update(system=prefix, task=task, n_digits=n, train_examples_per_s=row["train_examples"] / row["train_s"],
               test_examples_per_s=row["test_examples"] / row["test_s"])
    return row


def markdown(rows: list[dict], task: str = "addition") -> str:
    _, program, _ = TASKS[task]
    command = "python -m benchmarks.deepproblog_compat" + ("" if task == "addition" else f" --task {task}")
    n = "longest list" if task == "list-sum" else "N"
    lines = [f"# One DeepProbLog script, two import prefixes ({task})", "",
             f"Made by `{command}`; same script, program (`programs/{program}`), seed,",
             "data order and batch size 2; one epoch over the first examples; CPU.", "",
             f"| {n} | imports | train examples | train ex/s | test examples | test ex/s | test sum accuracy |"
             + (" learned `noisy` |" if task == "noisy" else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if task == "noisy" else "")]
    for r in rows:
        lines.append(f"| {r['n_digits']} | `{r['system']}` | {r['train_examples']} | {r['train_examples_per_s']:,.1f} | "
                     f"{r['test_examples']} | {r['test_examples_per_s']:,.1f} | {r['accuracy']:.3f} |"
                     + (f" {r['noisy']:.4f} |" if task == "noisy" else ""))
    by_n: dict[int, dict[str, dict]] = {}
    for r in rows:
        by_n.setdefault(r["n_digits"], {})[r["system"]] = r
    lines.append("")
    for n, pair in sorted(by_n.items()):
        if len(pair) == 2:
            ours, theirs = pair["nesy_gedi.deepproblog"], pair["deepproblog"]
            lines.append(f"{'longest list' if task == 'list-sum' else 'N'}={n}: training {ours['train_examples_per_s'] / theirs['train_examples_per_s']:.1f}x, "
                         f"testing {ours['test_examples_per_s'] / theirs['test_examples_per_s']:.1f}x faster.")
    return "\n".join(lines) + "\n"


EXAMPLES = {"Forth Sort": ("Forth/Sort", "sort.py", "compare.pl", "train2_test8_*.txt"),
            "Forth Add": ("Forth/Add", "add.py", "choose.pl", "train2_test8_*.txt"),
            "Forth WAP": ("Forth/WAP", "wap.py", "wap.pl", "*")}
WAP_NETWORKS = ("wap_network.py", "from deepproblog.examples.Forth.WAP.wap_network", "from wap_network")
WAP_EPOCHS = ("DataLoader(train_queries, 10),\n    40,", "DataLoader(train_queries, 10),\n    {epochs},")


def run_example(python: str, prefix: str, package: Path, repo: Path, name: str, env: dict,
                wap_epochs: int = 40) -> dict:
    """DeepProbLog's example ``name`` as shipped (imports rewritten to ``prefix``) in a folder with its data.

    WAP's script and networks are in DeepProbLog's repository only (its package ships the data): both come from
    ``repo``, the script importing ``wap_network`` from its own folder, for both prefixes, and training for
    ``wap_epochs`` epochs instead of 40."""
    folder, script, program, data = EXAMPLES[name]
    example = repo / "src" / "deepproblog" / "examples" / folder
    files = sorted(f for f in (example / "data").glob(data) if f.is_file())
    if not files:
        raise DataError(f"no data/{data} under {example}: pass --dpl-repo, a checkout of "
                        "https://github.com/ML-KULeuven/deepproblog")
    wap = name == "Forth WAP"
    origin = example if wap else package / "examples" / folder
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "data").mkdir()
        for f in files:
            (Path(tmp) / "data" / f.name).write_bytes(f.read_bytes())
        (Path(tmp) / program).write_text((origin / program).read_text())
        text = (origin / script).read_text()
        if wap:
            networks, old, new = WAP_NETWORKS
            before, after = WAP_EPOCHS
            if old not in text or before not in text:
                raise DataError(f"{origin / script} is not the WAP script this benchmark knows (DeepProbLog 2.1.0)")
            text = text.replace(old, new).replace(before, after.format(epochs=wap_epochs))
            (Path(tmp) / networks).write_text((origin / networks).read_text().replace("from deepproblog",
                                                                                      f"from {prefix}"))
        (Path(tmp) / script).write_text(text.replace("from deepproblog", f"from {prefix}"))
        start = time.perf_counter()
        done = subprocess.run([python, script], capture_output=True, text=True, cwd=tmp, env=env)
        seconds = time.perf_counter() - start
    tests = re.findall(r"Test:\s+\[\('Accuracy', (?:np\.float64\()?([0-9.]+)", done.stdout)
    if done.returncode != 0 or not tests:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"{name} with {prefix} failed (exit {done.returncode}): {last}")
    return {"example": name, "system": prefix, "seconds": seconds, "tests": [float(t) for t in tests]}


EXAMPLES_TABLE = ROOT / "benchmarks" / "deepproblog_examples.md"


def _table_rows(text: str) -> dict[str, dict]:
    """The rows of a table written by :func:`examples` (one per example and prefix), read back so that running
    some examples again keeps the others."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or cells[0] in ("example", "---"):
            continue
        name, prefix, epochs, _, seconds, _, runs = cells
        rows[f"{name} | {prefix.strip('`')}"] = {
            "example": name, "system": prefix.strip("`"), "epochs": None if epochs == "as shipped" else int(epochs),
            "mean_seconds": float(seconds), "last_tests": [float(t) for t in runs.split(",")]}
    return rows


def examples(python_dpl: Path, repo: Path, env: dict, repeats: int, names: list[str], wap_epochs: int) -> str:
    """Runs the examples ``names`` and returns the table of every example run so far (the rows of the others are
    read back from :data:`EXAMPLES_TABLE`)."""
    package = _site_packages(python_dpl, "deepproblog")
    rows = _table_rows(EXAMPLES_TABLE.read_text()) if EXAMPLES_TABLE.exists() else {}
    for name in names:
        for python, prefix in ((sys.executable, "nesy_gedi.deepproblog"), (str(python_dpl), "deepproblog")):
            runs = []
            for _ in range(repeats):
                runs.append(run_example(python, prefix, package, repo, name, env, wap_epochs))
                print(json.dumps(runs[-1]), flush=True)
            rows[f"{name} | {prefix}"] = {
                "example": name, "system": prefix, "epochs": wap_epochs if name == "Forth WAP" else None,
                "mean_seconds": sum(r["seconds"] for r in runs) / repeats, "last_tests": [r["tests"][-1] for r in runs]}
    lines = ["# DeepProbLog's own example scripts, two import prefixes", "",
             "Made by `python -m benchmarks.deepproblog_compat --examples --dpl-repo DIR`: each script as DeepProbLog "
             "2.1.0 ships it, with its data, run with its imports and with `nesy_gedi.deepproblog`; the scripts set "
             "no seed, so each run starts from other weights; CPU.  WAP's script and networks come from the "
             "repository (its package ships only the data): the script imports `wap_network` from its folder and "
             "trains for the epochs given (its own 40 would take either system about 20 minutes at the 5-epoch "
             "speed).", "",
             "| example | imports | epochs | runs | wall s (mean) | last `Test:` accuracy, mean ± std | per run |",
             "|---|---|---|---|---|---|---|"]
    for row in rows.values():
        last = torch.tensor(row["last_tests"], dtype=torch.float64)
        spread = float(last.std()) if len(last) > 1 else 0.0
        lines.append(f"| {row['example']} | `{row['system']}` | {row.get('epochs') or 'as shipped'} | {len(last)} | "
                     f"{row['mean_seconds']:.1f} | {float(last.mean()):.3f} ± {spread:.3f} | "
                     f"{', '.join(f'{t:.3f}' for t in last.tolist())} |")
    return "\n".join(lines) + "\n"


def benchmark(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=list(TASKS), default="addition")
    parser.add_argument("--n-digits", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--max-length", type=positive_int, nargs="+", default=[5],
                        help="longest list of --task list-sum (default 5)")
    parser.add_argument("--train-examples", type=positive_int, default=None,
                        help="default: 3000 for N=1, 300 for N=2 (DeepProbLog's speed)")
    parser.add_argument("--test-examples", type=positive_int, default=None, help="default: 500 for N=1, 50 for N=2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dpl-venv", default=str(ROOT / "benchmarks" / ".deepproblog-venv"))
    parser.add_argument("--skip-deepproblog", action="store_true")
    parser.add_argument("--examples", action="store_true", help="run DeepProbLog's Forth example scripts instead")
    parser.add_argument("--dpl-repo", type=Path, default=None, help="a checkout of DeepProbLog's repository (data)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs per example and prefix (default 3)")
    parser.add_argument("--example", choices=list(EXAMPLES), nargs="+", default=list(EXAMPLES),
                        help="which of --examples to run (default: all)")
    parser.add_argument("--wap-epochs", type=positive_int, default=40,
                        help="epochs of the Forth WAP script (its own: 40)")
    add_common_arguments(parser, device=False, data=True)
    args = parser.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    if data_dir is None:
        raise DataError("pass --data-dir or set $NESY_GEDI_DATA (MNIST IDX files)")
    env = {**os.environ, "NESY_GEDI_DATA": str(data_dir)}
    if args.examples:
        if args.dpl_repo is None:
            raise DataError("--examples needs --dpl-repo, a checkout of https://github.com/ML-KULeuven/deepproblog")
        text = examples(deepproblog_with_mnist(Path(args.dpl_venv), data_dir), args.dpl_repo, env, args.repeats,
                        args.example, args.wap_epochs)
        EXAMPLES_TABLE.write_text(text)
        print(text)
        return
    dpl = None
    if not args.skip_deepproblog:
        dpl = deepproblog_with_mnist(Path(args.dpl_venv), data_dir)
    rows = []
    sizes = {"addition": args.n_digits, "list-sum": args.max_length, "noisy": [1]}[args.task]
    for n in sizes:
        small = args.task == "addition" and n > 1
        n_train = args.train_examples or (300 if small else 3000)
        n_test = args.test_examples or (50 if small else 500)
        rows.append(run_script(sys.executable, "nesy_gedi.deepproblog", n, n_train, n_test, args.seed, env, args.task))
        print(json.dumps(rows[-1]), flush=True)
        if dpl is not None:
            rows.append(run_script(str(dpl), "deepproblog", n, n_train, n_test, args.seed, env, args.task))
            print(json.dumps(rows[-1]), flush=True)
    stem = TASKS[args.task][2]
    (ROOT / "benchmarks" / f"{stem}.json").write_text(json.dumps(rows, indent=2) + "\n")
    (ROOT / "benchmarks" / f"{stem}.md").write_text(markdown(rows, args.task))
    print(markdown(rows, args.task))


def main(argv: list[str] | None = None) -> int:
    return run_command(benchmark, argv)


if __name__ == "__main__":
    sys.exit(main())
