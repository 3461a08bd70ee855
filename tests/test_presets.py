"""Presets and the one flag vocabulary: a preset is its flags, flags override it, and bad files are one-line errors."""

import argparse
from dataclasses import fields

import pytest

from nesy_gedi.gedi import EstimatorConfig, GEDIWeights, SGLDConfig
from nesy_gedi.recipes import addition, gedi_pretrain
from nesy_gedi.recipes.presets import available

RECIPES = {"train": addition, "pretrain": gedi_pretrain}


def _parse(recipe, argv):
    return vars(recipe.parse_args(argv))


@pytest.mark.parametrize("name", sorted(available()))
def test_a_preset_is_the_same_as_its_flags(name, tmp_path):
    preset = available()[name]
    recipe = RECIPES[preset.command]
    needs = []
    for key in preset.needs:  # e.g. --pretrained: an existing file
        (tmp_path / "net.pt").write_bytes(b"")
        needs += [f"--{key}", str(tmp_path / "net.pt")]
    flags = []
    for key, value in preset.flags.items():
        flags += [f"--{key}"] if value is True else [f"--{key}", str(value)]
    with_preset = _parse(recipe, ["--preset", name, *needs])
    with_flags = _parse(recipe, [*flags, *needs])
    assert with_preset.pop("preset") == name and with_flags.pop("preset") is None
    assert with_preset == with_flags
    assert with_flags != _parse(recipe, needs) | {"preset": None}  # the preset changes something


def test_the_evenodd_scratch_preset_is_the_measured_command():
    """The 15 flags of experiments/shortcuts' from-scratch recipe (the rsbench-evenodd study setting and the
    nesy+gedi+clusterhead+relabel configuration included)."""
    measured = ("--pairs evenodd --split rsbench --gedi-weight 1 --cluster-head --relabel --arch ebm --epochs 46 "
                "--batch-size 64 --schedule constant --lr 2e-3 --gen-weight 0 --gedi-views augmented "
                "--prior-weight 5 --nesy-after 4200 --aug-warmup 500 --relabel-exhaustive --estimate-sizes 1000")
    preset = _parse(addition, ["--preset", "evenodd-scratch"])
    assert preset.pop("preset") == "evenodd-scratch"
    assert preset == {k: v for k, v in _parse(addition, measured.split()).items() if k != "preset"}


def test_the_gedi_sn_preset_is_the_measured_command():
    """experiments/gedi_estimators' arm: gedi-kl with --cluster-temperature 0.3 --spectral-norm."""
    preset = _parse(gedi_pretrain, ["--preset", "gedi-sn"])
    measured = _parse(gedi_pretrain, "--preset gedi-kl --cluster-temperature 0.3 --spectral-norm".split())
    assert preset.pop("preset") == "gedi-sn" and measured.pop("preset") == "gedi-kl"
    assert preset == measured and preset["spectral_norm"] and preset["cluster_temperature"] == 0.3


def test_the_gedi_digits_preset_is_the_measured_command():
    """experiments/gedi_estimators' arm: gedi-sn with --sgld-restart 0.2 --cluster-temperature 0.2."""
    preset = _parse(gedi_pretrain, ["--preset", "gedi-digits"])
    measured = _parse(gedi_pretrain, "--preset gedi-sn --sgld-restart 0.2 --cluster-temperature 0.2".split())
    assert preset.pop("preset") == "gedi-digits" and measured.pop("preset") == "gedi-sn"
    assert preset == measured and preset["sgld_restart"] == 0.2 and preset["cluster_temperature"] == 0.2


def test_flags_override_a_preset():
    args = addition.parse_args(["--preset", "evenodd-scratch", "--epochs", "2", "--gen-weight", "0.5"])
    assert args.epochs == 2 and args.gen_weight == 0.5 and args.nesy_after == 4200


def test_a_config_file_applies_after_the_preset(tmp_path):
    config = tmp_path / "mine.toml"
    config.write_text('[flags]\nepochs = 7\nrelabel = false\n')
    args = addition.parse_args(["--preset", "evenodd-scratch", "--config", str(config)])
    assert args.epochs == 7 and args.relabel is False and args.arch == "ebm"


@pytest.mark.parametrize("text,needle", [
    ("[flags]\nno-such-flag = 1\n", "unknown flag --no-such-flag"),
    ("[flags]\nepochs = 0\n", "argument --epochs: must be a positive integer, got 0"),
    ("[flags]\narch = \"resnet\"\n", "invalid choice 'resnet'"),
    ("[flags]\ncluster-head = 1\n", "--cluster-head takes true or false"),
    ("flags = [\n", "is not valid TOML"),
    ("command = \"pretrain\"\n", "is for 'nesy-gedi pretrain', not 'train'"),
    ("colour = \"red\"\n", "unknown key(s) colour"),
])
def test_bad_config_files_are_usage_errors(text, needle, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SystemExit) as stop:
        addition.parse_args(["--config", str(config)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and needle in err and "Traceback" not in err, err


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def test_gedi_and_sgld_flags_share_names_and_defaults_across_commands():
    train, pretrain = _options(addition.build_parser()), _options(gedi_pretrain.build_parser())
    flagged = [f for cls in (GEDIWeights, SGLDConfig, EstimatorConfig) for f in fields(cls) if "flag" in f.metadata]
    assert len(flagged) == 22
    for f in flagged:
        flag = f.metadata["flag"]
        assert train[flag].default == pretrain[flag].default == f.default, flag
    assert train["--aug-warmup"].default == pretrain["--aug-warmup"].default == 500
    old_names = ("--gedi-gen-weight", "--gedi-prior-weight", "--gedi-aug-warmup", "--buffer-size")
    assert not set(old_names) & (set(train) | set(pretrain))


def test_help_groups_the_flags():
    text = addition.build_parser().format_help()
    positions = [text.index(title) for title in ("task:", "training:", "GEDI and SGLD", "experimental:")]
    assert positions == sorted(positions)
    experimental = text[text.index("experimental:"):]
    assert "--relabel-exhaustive" in experimental and "--cluster-temperature" in experimental


@pytest.mark.parametrize("command", ["run", "train", "pretrain", "presets"])
def test_every_command_prints_its_help(command, capsys):
    from nesy_gedi.cli import main
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"nesy-gedi {command}" in capsys.readouterr().out
