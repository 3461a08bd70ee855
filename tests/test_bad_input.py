"""Bad input to every command and to the Python API: one clear line, the right exit code, no traceback."""

from __future__ import annotations

import gzip
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nesy_gedi import InputError, NeSyModel, QueryError, UnknownNetworkError
from nesy_gedi.commands import run_command
from nesy_gedi.networks import EnergyCNN, MnistCNN
from nesy_gedi.recipes import addition, gedi_pretrain
from nesy_gedi.train.checkpoint import save_network

from .scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
DATA = os.environ.get("NESY_GEDI_DATA", str(ROOT.parent / "shared" / "data"))
PY = sys.executable


def run_in_process(main, argv, capsys) -> tuple[int, str]:
    """Exit code and stderr of ``run_command(main, argv)`` as the scripts run it."""
    try:
        code = run_command(main, argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def assert_clean(code: int, err: str, expected_code: int, *needles: str) -> None:
    assert code == expected_code, err
    assert "Traceback" not in err, err
    message = [line for line in err.strip().splitlines() if "error" in line]
    assert message, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


@pytest.fixture
def bad_data(tmp_path) -> dict[str, Path]:
    """Data folders whose train images file is truncated, or not IDX at all, and an empty one."""
    raw = Path(DATA) / "MNIST" / "raw"
    with gzip.open(raw / "train-images-idx3-ubyte.gz") as handle:
        head = handle.read(5000)
    folders = {}
    for kind, images in (("truncated", head), ("garbage", b"hello, this is not an IDX file")):
        folder = tmp_path / kind / "MNIST" / "raw"
        folder.mkdir(parents=True)
        for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
            (folder / name).symlink_to(raw / name)
        (folder / "train-images-idx3-ubyte").write_bytes(images)
        folders[kind] = tmp_path / kind
    folders["empty"] = tmp_path / "empty"
    folders["empty"].mkdir()
    return folders


# -- tasks/mnist_add.py: usage errors (exit 2) -------------------------------------------------------
USAGE = [
    (["--n-digits", "0"], "--n-digits"),
    (["--n-digits", "-3"], "--n-digits"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "abc"], "--lr"),
    (["--epochs", "-1"], "--epochs"),
    (["--train-size", "0"], "--train-size"),
    (["--test-size", "-5"], "--test-size"),
    (["--device", "banana"], "unknown device"),
    (["--data-dir", "/no/such/folder"], "does not exist"),
    (["--pretrained", "/no/such/file.pt"], "does not exist"),
    (["--pairs", "bogus"], "--pairs"),
    (["--sgld-steps", "0"], "--sgld-steps"),
    (["--gedi-weight", "-1"], "--gedi-weight"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
    (["--arch", "resnet"], "--arch"),
    (["--augment", "1.5"], "--augment"),
    (["--nesy-after", "-1"], "--nesy-after"),
    (["--early-prior-weight", "-1"], "--early-prior-weight"),
    (["--gedi-views", "both"], "--gedi-views"),
    (["--aug-warmup", "x"], "--aug-warmup"),
    (["--prior-floor", "-0.1"], "--prior-floor"),
    (["--prior-floor", "1.5"], "--prior-floor"),
    (["--preset", "nosuch"], "--preset"),
    (["--preset", "gedi-ebm"], "preset gedi-ebm is for 'nesy-gedi pretrain'"),
    (["--preset", "n100"], "preset n100 needs --pretrained"),
    (["--config", "/no/such/file.toml"], "does not exist"),
    (["--estimate-sizes", "-1"], "--estimate-sizes"),
]


@pytest.mark.parametrize("argv,needle", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_mnist_add_usage_errors(argv, needle, tmp_path, capsys):
    code, err = run_in_process(addition.main, argv + ["--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "Traceback" not in err and needle in err, err
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu_says_so(tmp_path, capsys):
    code, err = run_in_process(addition.main, ["--device", "cuda", "--out", str(tmp_path)], capsys)
    assert code == 2 and "CUDA is not available" in err and "--device cpu" in err


def test_out_naming_a_file(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, err = run_in_process(addition.main, ["--out", str(target)], capsys)
    assert code == 2 and "is not a directory" in err


# -- tasks/mnist_add.py: errors found when running (exit 1) -----------------------------------------
def test_missing_truncated_and_garbage_data(bad_data, tmp_path, capsys):
    for folder, needle in ((bad_data["empty"], "not found"), (bad_data["truncated"], "truncated"),
                           (bad_data["garbage"], "not an IDX file")):
        code, err = run_in_process(addition.main, ["--data-dir", str(folder), "--out", str(tmp_path / "r")], capsys)
        assert_clean(code, err, 1, needle)
        assert not (tmp_path / "r" / "results.json").exists()


def test_bad_pretrained_files(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    other_arch = tmp_path / "ebm.pt"
    save_network(other_arch, EnergyCNN(), "ebm", "gedi_pretrain")
    wrong_shapes = tmp_path / "five.pt"
    torch.save(MnistCNN(n_classes=5).state_dict(), wrong_shapes)
    a_list = tmp_path / "list.pt"
    torch.save([1, 2, 3], a_list)
    for path, needle in ((text, "not a nesy_gedi checkpoint"), (other_arch, "architecture 'ebm'"),
                         (wrong_shapes, "shape mismatch classifier.4.weight"), (a_list, "not network weights")):
        code, err = run_in_process(addition.main, ["--pretrained", str(path), "--train-size", "10",
                                                   "--out", str(tmp_path / "r")], capsys)
        assert_clean(code, err, 1, needle, str(path))


def test_resume_without_or_with_a_foreign_checkpoint(tmp_path, capsys):
    code, err = run_in_process(addition.main, ["--resume", "--out", str(tmp_path / "nothing")], capsys)
    assert_clean(code, err, 1, "no checkpoint")
    gedi_run = tmp_path / "gedi"
    gedi_pretrain.main(["--steps", "2", "--batch-size", "16", "--train-size", "64", "--out", str(gedi_run),
                        "--no-progress"])
    code, err = run_in_process(addition.main, ["--resume", "--out", str(gedi_run)], capsys)
    assert_clean(code, err, 1, "checkpoint of a gedi_pretrain run")


def test_pairs_need_one_digit(tmp_path, capsys):
    code, err = run_in_process(addition.main, ["--pairs", "evenodd", "--n-digits", "2", "--out", str(tmp_path)], capsys)
    assert_clean(code, err, 1, "--pairs needs --n-digits 1")
    code, err = run_in_process(addition.main, ["--relabel", "--n-digits", "3", "--out", str(tmp_path)], capsys)
    assert_clean(code, err, 1, "--relabel supports --n-digits 1 or 2, not 3")
    code, err = run_in_process(addition.main, ["--relabel-exhaustive", "--out", str(tmp_path)], capsys)
    assert_clean(code, err, 1, "--relabel-exhaustive needs --relabel and --n-digits 1")
    code, err = run_in_process(addition.main, ["--nesy-after", "10", "--out", str(tmp_path)], capsys)
    assert_clean(code, err, 1, "--nesy-after needs another loss term")
    code, err = run_in_process(addition.main, ["--gedi-weight", "1", "--early-prior-weight", "1",
                                               "--out", str(tmp_path)], capsys)
    assert_clean(code, err, 1, "--early-prior-weight needs --gedi-weight and --nesy-after")
    code, err = run_in_process(addition.main, ["--estimate-sizes", "100", "--out", str(tmp_path)], capsys)
    assert_clean(code, err, 1, "--estimate-sizes needs --gedi-weight")
    code, err = run_in_process(addition.main, ["--gedi-weight", "1", "--estimate-sizes", "100",
                                               "--prior-floor", "0.5", "--out", str(tmp_path)], capsys)
    assert_clean(code, err, 1, "two different priors")


# -- tasks/gedi_pretrain.py ------------------------------------------------------------------------
GEDI_USAGE = [
    (["--batch-size", "0"], "--batch-size"),
    (["--steps", "0"], "--steps"),
    (["--sgld-restart", "1.5"], "--sgld-restart"),
    (["--dataset", "cifar10"], "--dataset"),
    (["--lr", "inf"], "--lr"),
    (["--minutes", "-2"], "--minutes"),
    (["--prior-floor", "-0.1"], "--prior-floor"),
    (["--gen-warmup", "-1"], "--gen-warmup"),
    (["--late-after", "10"], "--late-after: it says when --late-cluster-temperature starts"),
    (["--late-cluster-temperature", "0.5", "--late-after", "6000"], "--late-after: 6000 is not before"),
    (["--late-cluster-temperature", "0"], "--late-cluster-temperature"),
    (["--preset", "evenodd-labels"], "preset evenodd-labels is for 'nesy-gedi train'"),
]


@pytest.mark.parametrize("argv,needle", GEDI_USAGE, ids=[" ".join(a) for a, _ in GEDI_USAGE])
def test_gedi_pretrain_usage_errors(argv, needle, tmp_path, capsys):
    code, err = run_in_process(gedi_pretrain.main, argv + ["--out", str(tmp_path)], capsys)
    assert code == 2 and "Traceback" not in err and needle in err, err


def test_gedi_init_from_another_architecture_or_a_missing_file(tmp_path, capsys):
    lenet = tmp_path / "lenet.pt"
    save_network(lenet, MnistCNN(), "mnist_cnn", "gedi_pretrain")
    code, err = run_in_process(gedi_pretrain.main, ["--arch", "ebm", "--init", str(lenet), "--steps", "1",
                                                    "--out", str(tmp_path / "r")], capsys)
    assert_clean(code, err, 1, "architecture 'mnist_cnn'", "pass --arch mnist_cnn")
    code, err = run_in_process(gedi_pretrain.main, ["--init", str(tmp_path / "none.pt"), "--out", str(tmp_path)],
                               capsys)
    assert code == 2 and "Traceback" not in err and "--init" in err, err


def test_gedi_batch_larger_than_data(tmp_path, capsys):
    code, err = run_in_process(gedi_pretrain.main, ["--batch-size", "100", "--train-size", "50",
                                                    "--out", str(tmp_path)], capsys)
    assert_clean(code, err, 1, "larger than the 50 training images")


# -- nesy-gedi CLI ---------------------------------------------------------------------------------
def test_cli_bad_programs(tmp_path, capsys):
    from nesy_gedi.cli import show

    binary = tmp_path / "binary.pl"
    binary.write_bytes(b"\xff\xfe\x00query(a).")
    broken = tmp_path / "broken.pl"
    broken.write_text("0.5::a.\nquery(a :- .\n")
    unknown = tmp_path / "unknown.pl"
    unknown.write_text("0.5::a.\nquery(b).\n")
    for path, needle in ((tmp_path / "missing.pl", "not found"), (binary, "not UTF-8"), (broken, "broken.pl"),
                         (tmp_path, "is not a file"), (unknown, "b")):
        code, err = run_in_process(show, [str(path)], capsys)
        assert_clean(code, err, 1, needle)


# -- benchmarks and the shortcut study ---------------------------------------------------------------
def _script(name: str):
    """A command's ``main``: a script of the repository (``tasks/x.py``) or a module (``benchmarks.run``)."""
    return load_script(name).main if name.endswith(".py") else importlib.import_module(name).main


@pytest.mark.parametrize("path,argv,needle", [
    ("benchmarks.run", ["--n-digits", "0"], "--n-digits"),
    ("benchmarks.overhead", ["--batch-size", "0"], "--batch-size"),
    ("benchmarks.circuits", ["--digits", "-1"], "--digits"),
    ("tasks/shortcut_study.py", ["--seeds", "-1"], "--seeds"),
    ("tasks/shortcut_study.py", ["--settings", "nosuch"], "--settings"),
    ("tasks/shortcut_study.py", ["--concept-labels", "0"], "--concept-labels"),
    ("benchmarks.run", ["--dpl-max-n", "0"], "--dpl-max-n"),
    ("experiments.gedi.chain_length", ["--runs", ".", "--chain-steps", "40,0"], "--chain-steps"),
    ("experiments.gedi.vflip", ["--runs", ".", "--judge-steps", "0"], "--judge-steps"),
    ("experiments.gedi.saturation", ["--runs", ".", "--window", "0"], "--window"),
    ("experiments.gedi.nmi_over_time", ["--checkpoints", ".", "--arch", "nosuch"], "--arch"),
])
def test_other_commands_usage_errors(path, argv, needle, capsys):
    code, err = run_in_process(_script(path), argv, capsys)
    assert code == 2 and "Traceback" not in err and needle in err, err


def test_shortcut_study_without_pretrained_checkpoint(tmp_path, capsys):
    code, err = run_in_process(_script("tasks/shortcut_study.py"),
                               ["--configs", "nesy+pretrained", "--pretrained", str(tmp_path / "none.pt"),
                                "--out", str(tmp_path)], capsys)
    assert_clean(code, err, 1, "none.pt does not exist")


# -- the scripts themselves, as a user runs them ------------------------------------------------------
@pytest.mark.parametrize("argv,code,needle", [
    (["tasks/mnist_add.py", "--n-digits", "0"], 2, "--n-digits"),
    (["tasks/gedi_pretrain.py", "--data-dir", "{empty}"], 1, "not found"),
    (["-m", "nesy_gedi.cli", "{binary}"], 1, "not UTF-8"),
    (["-m", "nesy_gedi.cli", "run", "{binary}"], 1, "not UTF-8"),
    (["-m", "nesy_gedi.cli", "train", "--n-digits", "0"], 2, "--n-digits"),
    (["-m", "nesy_gedi.cli", "pretrain", "--data-dir", "{empty}"], 1, "not found"),
    (["-m", "nesy_gedi.cli", "nosuch"], 2, "unknown command 'nosuch'"),
    (["-m", "benchmarks.run", "--skip-deepproblog", "--data-dir", "{empty}", "--out", "{out}"], 1, "not found"),
    (["-m", "benchmarks.deepproblog_compat", "--n-digits", "0"], 2, "--n-digits"),
    (["tasks/deepproblog_addition.py", "--data-dir", "{empty}", "--out", "{out}"], 1, "not found"),
    (["-m", "experiments.gedi.chain_length", "--runs", "{empty}", "--out", "{out}"], 1, "no run folders"),
    (["-m", "experiments.gedi.vflip", "--runs", "{empty}", "--out", "{out}"], 1, "no run folders"),
    (["-m", "experiments.gedi.saturation", "--runs", "{empty}", "--out", "{out}"], 1, "no metrics.jsonl"),
    (["-m", "experiments.gedi.nmi_over_time", "--checkpoints", "{empty}"], 1, "no .pt files"),
    (["-m", "experiments.gedi.nmi_over_time", "--checkpoints", "{out}/none.pt"], 1, "does not exist"),
])
def test_scripts_exit_cleanly(argv, code, needle, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "binary.pl").write_bytes(b"\xff\xfe\x00")
    argv = [a.format(empty=tmp_path / "empty", binary=tmp_path / "binary.pl", out=tmp_path / "out") for a in argv]
    done = subprocess.run([PY, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and needle in done.stderr
    assert len([line for line in done.stderr.splitlines() if "error:" in line]) == 1, done.stderr


def test_benchmark_without_swipl_says_so(tmp_path):
    env = {**os.environ, "PATH": str(Path(PY).parent), "NESY_GEDI_DATA": str(DATA)}
    done = subprocess.run([PY, "-m", "benchmarks.run", "--skip-deepproblog", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "swipl" in done.stderr and "--skip-deepstochlog" in done.stderr, done.stderr


def test_debug_shows_the_traceback(tmp_path):
    done = subprocess.run([PY, "tasks/gedi_pretrain.py", "--data-dir", str(tmp_path), "--debug"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" in done.stderr and "not found" in done.stderr


# -- the Python API ----------------------------------------------------------------------------------
def test_api_errors_name_the_culprit():
    with pytest.raises(UnknownNetworkError, match="mnist_net"):
        NeSyModel(ROOT / "programs" / "mnist_add.pl", {})
    model = NeSyModel(ROOT / "programs" / "mnist_add.pl", {"mnist_net": MnistCNN()})
    with pytest.raises(InputError, match="mnist_net"):
        model("addition(X, Y, Z)", {"X": torch.zeros(2, 3, 32, 32), "Y": torch.zeros(2, 3, 32, 32)})
    with pytest.raises(InputError, match="batch sizes"):
        model("addition(X, Y, Z)", {"X": torch.zeros(2, 1, 28, 28), "Y": torch.zeros(3, 1, 28, 28)})
    with pytest.raises(QueryError, match="subtraction"):
        model("subtraction(X, Y, Z)", {"X": torch.zeros(2, 1, 28, 28), "Y": torch.zeros(2, 1, 28, 28)})
    with pytest.raises(QueryError, match="cannot parse"):
        model("addition(X, Y", {"X": torch.zeros(2, 1, 28, 28)})
    five = NeSyModel(ROOT / "programs" / "mnist_add.pl", {"mnist_net": MnistCNN(n_classes=5)})
    with pytest.raises(InputError, match=r"\[batch, 10\]"):
        five("addition(X, Y, Z)", {"X": torch.zeros(2, 1, 28, 28), "Y": torch.zeros(2, 1, 28, 28)})
