"""The benchmark's exact evaluation and peer set-up, checked without the peers themselves."""

from __future__ import annotations

import importlib
import itertools

import numpy as np
import pytest
import torch

from nesy_gedi.data import AdditionDataset, load_mnist
from nesy_gedi.errors import DataError
from nesy_gedi.networks import MnistCNN



def test_most_probable_sum_equals_enumeration():
    """N=2: scoring every candidate sum through multi_add.pl gives the argmax of P(sum) by enumeration."""
    run = importlib.import_module("benchmarks.run")
    torch.manual_seed(0)
    net = MnistCNN().eval()
    data = AdditionDataset(load_mnist("test"), n_digits=2, seed=0, size=4)
    best = run.most_probable_sums(run.logit_model(2), net, data, rows_per_chunk=300)
    with torch.no_grad():
        probs = net(data.images(torch.arange(4)).view(-1, 1, 28, 28)).softmax(1).view(4, 2, 2, 10).double()
    for e in range(4):
        p_sum = torch.zeros(199, dtype=torch.float64)
        for a1, a0, b1, b0 in itertools.product(range(10), repeat=4):
            p = probs[e, 0, 0, a1] * probs[e, 0, 1, a0] * probs[e, 1, 0, b1] * probs[e, 1, 1, b0]
            p_sum[10 * (a1 + b1) + a0 + b0] += p
        assert int(best[e]) == int(p_sum.argmax())


def test_missing_meta_program_is_reported(tmp_path, monkeypatch):
    """DeepStochLog's missing data file: a given path that does not exist is named."""
    from benchmarks import peers

    package = tmp_path / "site" / "deepstochlog"
    package.mkdir(parents=True)
    (package / "logic.py").write_text("from collections import Sized\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    monkeypatch.setattr(peers.shutil, "which", lambda name: "/usr/bin/swipl")
    monkeypatch.setattr(peers, "_site_packages", lambda python, name: package)
    with pytest.raises(DataError, match="nosuch.pl: no such file"):
        peers.dsl_python(venv, tmp_path / "nosuch.pl")
    assert (package / "logic.py").read_text() == "from collections.abc import Sized\n"
    (tmp_path / "meta.pl").write_text("main.\n")
    peers.dsl_python(venv, tmp_path / "meta.pl")
    assert (package / peers.DSL_META_PROGRAM).read_text() == "main.\n"


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    unification = importlib.import_module("experiments.gedi.unification")
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=generator).double().numpy()
    b = (torch.randn(20000, 3, generator=generator).double() * 2 + 1).numpy()
    # N(0, I) vs N(1, 4I) in 3 dimensions: |mu|^2 + tr(I + 4I - 2 * 2I) = 3 + 3 = 6
    assert unification.frechet(a, b) == pytest.approx(6.0, abs=0.15)
    assert unification.frechet(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fresh_chain_length_follows_short_run_training():
    unification = importlib.import_module("experiments.gedi.unification")
    assert unification.run_chain_steps({"sgld_steps": 40, "sgld_restart": 1.0}) == 40
    assert unification.run_chain_steps({"sgld_steps": 10, "sgld_restart": 0.05}) == 200
    assert unification.chain_steps("run") == "run" and unification.chain_steps("7") == 7


def test_conditional_sample_agreement_and_per_digit_flip_auroc(monkeypatch):
    unification = importlib.import_module("experiments.gedi.unification")

    class PixelJudge(torch.nn.Module):  # reads the digit from the first pixel
        def forward(self, x):
            return 20.0 * torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 10).float()

    samples = torch.zeros(4, 1, 28, 28)
    samples[:, 0, 0, 0] = torch.tensor([3.0, 3.0, 5.0, 7.0])
    monkeypatch.setattr(unification, "features", lambda judge, images: images.flatten(1)[:, :3].double().numpy())
    quality = unification.sample_quality(PixelJudge(), samples, unification.features(None, samples))
    assert quality["confident_fraction"] == 1.0 and quality["classes_covered"] == 3
    assert quality["largest_digit_share"] == 0.5 and quality["frechet"] == pytest.approx(0.0, abs=1e-6)
    cluster_digit = np.array([3, 5, 0, 1, 2, 4, 6, 7, 8, 9])
    quality = unification.conditional_quality(PixelJudge(), samples, torch.tensor([0, 0, 1, 1]), cluster_digit)
    assert quality == {"conditional_confident_fraction": 1.0, "conditional_classes_covered": 3,
                       "conditional_agreement": 0.75}

    labels = torch.arange(10).repeat(5)
    images = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    images[labels == 4, :, :14] += 1  # digit 4 images are bright on top: their flips are told apart
    top_minus_bottom = lambda x: x[:, 0, :14].mean((1, 2)) - x[:, 0, 14:].mean((1, 2))  # noqa: E731
    by_digit = unification.vflip_by_digit(top_minus_bottom(images), top_minus_bottom(images.flip(-2)), labels)
    assert len(by_digit) == 10 and by_digit[4] == 1.0
    assert all(0.0 <= v <= 1.0 for v in by_digit)


def test_claims_name_each_verdict_from_the_rows():
    unification = importlib.import_module("experiments.gedi.unification")

    def row(config, nmi, conf, **extra):
        return {"config": config, "nmi": nmi, "confident_fraction": conf, "classes_covered": 10, "frechet": 20.0,
                "conditional_agreement": 0.9, "auroc_fashion": 0.995, "auroc_noise": 1.0, "auroc_vflip": 0.80,
                **extra}

    rows = [row("one", 0.91, 0.85), row("one", 0.93, 0.87), row("clusterer", 0.92, 0.1), row("clusterer", 0.92, 0.1),
            row("generator", 0.1, 0.5, frechet=300.0), row("generator", 0.2, 0.6, frechet=200.0)]
    baseline = {"energy": {"vflip": {"auroc": 0.86}}}
    lines = unification.claims(rows, baseline, "one", "clusterer", "generator")
    assert len(lines) == 8
    assert lines[0].startswith("One network clusters: NMI 0.920 ± 0.014") and lines[0].endswith(": holds.")
    assert lines[1].endswith(": holds.") and lines[2].endswith(": holds.") and lines[5].endswith(": holds.")
    assert lines[3].endswith("no difference beyond the seeds' spread).")  # 0.92 vs 0.92
    assert lines[4].endswith(": holds.")  # Fréchet 20 vs 250 ± 71
    assert lines[6].endswith("no difference beyond the seeds' spread).")  # the same Fashion AUROC
    assert lines[7].endswith(": does not hold.")  # 0.80 < 0.86
    worse = unification.claims(rows, baseline, "generator", "clusterer", "one")
    assert worse[0].endswith("does not hold.") and worse[3].endswith("(it is worse).")
    assert worse[4].endswith("(it is worse).")  # Fréchet 250 vs 20
    with pytest.raises(unification.DataError, match="'other'"):
        unification.claims(rows, baseline, "one", "other", "generator")


def _ebm_run(run):
    """A judged run folder ``run`` holding an untrained ``EnergyCNN`` (seed 0) and its ``results.json``."""
    import json

    from nesy_gedi.networks import EnergyCNN
    from nesy_gedi.train.checkpoint import save_network

    run.mkdir(parents=True)
    torch.manual_seed(0)
    save_network(run / "mnist_net.pt", EnergyCNN(), "ebm", "gedi_pretrain")
    (run / "results.json").write_text(json.dumps({"args": {"arch": "ebm"}}))
    return run


def test_chain_length_sweep_scores_each_run_and_length_on_the_same_noise(tmp_path):
    import json

    run = _ebm_run(tmp_path / "runs" / "gen_sr" / "seed0")
    sweep = importlib.import_module("experiments.gedi.chain_length")
    rows = sweep.main(["--runs", str(tmp_path / "runs"), "--chain-steps", "1,3", "--samples", "30",
                       "--judge-steps", "3", "--device", "cpu", "--out", str(tmp_path / "out")])
    assert [(r["config"], r["seed"], r["chain_steps"]) for r in rows] == [
        ("gen_sr", "seed0", 1), ("gen_sr", "seed0", 3)]
    assert all(0 <= r["confident_fraction"] <= 1 and r["frechet"] > 0 for r in rows)
    # energies: MNIST test's under the run's network, and the samples' (SGLD lowers it along the chain)
    from nesy_gedi.data import load_mnist
    from nesy_gedi.train.checkpoint import load_network
    net = load_network(run / "mnist_net.pt")
    with torch.no_grad():
        expected = float(-torch.logsumexp(net.eval()(load_mnist("test").normalized()), 1).mean())
    assert rows[0]["data_energy"] == rows[1]["data_energy"] == pytest.approx(expected, rel=1e-4)
    assert rows[1]["sample_energy"] < rows[0]["sample_energy"]
    saved = json.loads((tmp_path / "out" / "chain_length.json").read_text())
    assert saved["rows"] == rows and 0 < saved["judge_test_accuracy"] <= 1
    again = sweep.main(["--runs", str(tmp_path / "runs"), "--chain-steps", "3", "--samples", "30",
                        "--judge-steps", "3", "--device", "cpu", "--out", str(tmp_path / "again")])
    # each length starts from the same seeded noise: reproducible row by row (the Fréchet distance of 30
    # near-identical samples is near-singular: equal to rounding)
    approximate = ("frechet", "sample_energy")
    assert {k: v for k, v in again[0].items() if k not in approximate} == \
        {k: v for k, v in rows[1].items() if k not in approximate}
    assert again[0]["frechet"] == pytest.approx(rows[1]["frechet"], rel=1e-2)
    assert again[0]["sample_energy"] == pytest.approx(rows[1]["sample_energy"], rel=1e-4)


def test_chain_length_sweep_starts_from_the_replay_buffer_and_rows_do_not_depend_on_order(tmp_path):
    from nesy_gedi.train.checkpoint import CHECKPOINT_FORMAT, VERSION, atomic_save

    run = _ebm_run(tmp_path / "runs" / "gen" / "seed0")
    buffer = torch.rand(40, 1, 28, 28) * 2 - 1
    atomic_save({"format": CHECKPOINT_FORMAT, "version": VERSION, "kind": "gedi_pretrain",
                 "extra": {"replay_buffer": {"samples": buffer}}}, run / "checkpoint.pt")
    sweep = importlib.import_module("experiments.gedi.chain_length")
    common = ["--runs", str(tmp_path / "runs"), "--samples", "20", "--judge-steps", "3", "--device", "cpu",
              "--sgld-noise", "0.5"]  # noise large enough that a different Langevin draw shows
    rows = sweep.main([*common, "--chain-steps", "1,2", "--from-buffer", "--out", str(tmp_path / "a")])
    assert [(r["start"], r["chain_steps"]) for r in rows] == [
        ("noise", 1), ("noise", 2), ("buffer", 0), ("buffer", 1), ("buffer", 2)]
    assert all(sum(r["class_counts"]) == round(r["confident_fraction"] * 20) for r in rows)
    # length 0 is the buffer itself: 20 of its 40 chains, drawn with the seeded generator
    chosen = buffer[torch.randperm(40, generator=torch.Generator().manual_seed(0))[:20]]
    from nesy_gedi.train.checkpoint import load_network
    with torch.no_grad():
        expected = float(-torch.logsumexp(load_network(run / "mnist_net.pt").eval()(chosen), 1).mean())
    assert rows[2]["sample_energy"] == pytest.approx(expected, rel=1e-5)
    # a row's Langevin noise does not depend on the rows run before it
    alone = sweep.main([*common, "--chain-steps", "2", "--from-buffer", "--out", str(tmp_path / "b")])
    assert alone[0]["sample_energy"] == rows[1]["sample_energy"]
    assert alone[2]["sample_energy"] == rows[4]["sample_energy"]
    empty = tmp_path / "none" / "gen" / "seed0"
    empty.mkdir(parents=True)
    for name in ("mnist_net.pt", "results.json"):
        (empty / name).write_bytes((run / name).read_bytes())
    atomic_save({"format": CHECKPOINT_FORMAT, "version": VERSION, "kind": "gedi_pretrain", "extra": {}},
                empty / "checkpoint.pt")
    with pytest.raises(sweep.DataError, match="holds no replay buffer"):
        sweep.main(["--runs", str(tmp_path / "none"), "--samples", "20", "--judge-steps", "3", "--device", "cpu",
                    "--chain-steps", "1", "--from-buffer", "--out", str(tmp_path / "c")])


def test_vflip_benchmark_scores_runs_next_to_the_oracle(tmp_path):
    import json

    from nesy_gedi.networks import EnergyCNN
    from nesy_gedi.train.checkpoint import save_network

    run = tmp_path / "runs" / "clusterer" / "seed3"
    run.mkdir(parents=True)
    torch.manual_seed(0)
    save_network(run / "mnist_net.pt", EnergyCNN(), "ebm", "gedi_pretrain")
    (run / "results.json").write_text(json.dumps({"args": {"arch": "ebm", "seed": 3}, "nmi": 0.5}))
    vflip = importlib.import_module("experiments.gedi.vflip")
    rows = vflip.main(["--runs", str(tmp_path / "runs"), "--judge-steps", "3", "--device", "cpu",
                       "--out", str(tmp_path / "out")])
    assert [r["score"] for r in rows] == ["log-odds upright", "energy", "energy", "gradient_norm", "max_softmax"]
    assert rows[2]["model"] == "clusterer seed 3" and rows[2]["nmi"] == 0.5
    assert all(0 <= r["auroc"] <= 1 and len(r["by_digit"]) == 10 for r in rows)
    assert json.loads((tmp_path / "out" / "vflip.json").read_text())["rows"] == rows
    assert "| clusterer seed 3 | gradient_norm |" in (tmp_path / "out" / "vflip.md").read_text()


def test_saturation_windows_find_where_the_generative_loss_sits_at_its_floor(tmp_path):
    import json

    bench = importlib.import_module("experiments.gedi.saturation")
    run = tmp_path / "runs" / "a" / "seed0"
    run.mkdir(parents=True)
    gens = [0.0] * 3 + [1.0] * 100 + [-4.95] * 60 + [0.2] * 10 + [-4.9] * 130  # updates 1..303
    run.joinpath("metrics.jsonl").write_text("".join(
        json.dumps({"step": i + 1, "gen": g, "data_energy": -5.0, "sample_energy": 5.0}) + "\n"
        for i, g in enumerate(gens)))
    rows = bench.main(["--runs", str(tmp_path / "runs"), "--energy-l2", "0.1", "--out", str(tmp_path / "s.json")])
    (row,) = rows
    assert row["first_gen_update"] == 4
    assert [w["fraction_at_floor"] for w in row["windows"]] == [0.0, 0.9, 1.0]  # from updates 4, 104, 204
    assert row["saturated_from"] == 104 and row["last_fraction_at_floor"] == 1.0
    assert json.loads((tmp_path / "s.json").read_text())["floor"] == -5.0


def test_nmi_over_time_reads_checkpoints_and_network_files_in_update_order(tmp_path):
    import json

    from nesy_gedi.networks import EnergyCNN
    from nesy_gedi.train.checkpoint import CHECKPOINT_FORMAT, VERSION, save_network
    from nesy_gedi.train.evaluate import evaluate_clusters

    run = tmp_path / "run"
    run.mkdir()
    nets = {}
    for step in (20, 10):  # written out of order: rows come back by update
        torch.manual_seed(step)
        nets[step] = EnergyCNN()
        with torch.no_grad():  # a random network puts every image in one cluster; sharper logits split them
            nets[step].classifier[2].weight.mul_(50)
            nets[step].classifier[2].bias.zero_()
        torch.save({"format": CHECKPOINT_FORMAT, "version": VERSION, "kind": "gedi_pretrain", "arch": "ebm",
                    "step": step, "modules": {"net": nets[step].state_dict()}}, run / f"snap_{step}.pt")
    save_network(run / "mnist_net.pt", nets[20], "ebm", "gedi_pretrain")
    script = importlib.import_module("experiments.gedi.nmi_over_time")
    rows = script.main(["--checkpoints", str(run), "--device", "cpu", "--out", str(tmp_path / "nmi.json")])
    assert [r["step"] for r in rows] == [None, 10, 20]
    test = load_mnist("test")
    for row, step in zip(rows[1:], (10, 20)):
        assert row["nmi"] == pytest.approx(evaluate_clusters(nets[step], test, "cpu")["nmi"])
    assert rows[0]["nmi"] == pytest.approx(rows[2]["nmi"])  # the network file of the last checkpoint's net
    assert rows[1]["nmi"] != pytest.approx(rows[2]["nmi"])
    assert json.loads((tmp_path / "nmi.json").read_text())["rows"] == rows
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .pt files"):
        script.main(["--checkpoints", str(tmp_path / "empty"), "--device", "cpu"])
    with pytest.raises(DataError, match="architecture 'ebm'"):
        script.main(["--checkpoints", str(run / "mnist_net.pt"), "--arch", "mnist_cnn", "--device", "cpu"])


def test_gpu_benchmark_runs_its_rows_on_the_cpu(tmp_path):
    """``benchmarks.gpu --smoke``: the same rows, uncaptured, on the CPU; every row reports its rate."""
    gpu = importlib.import_module("benchmarks.gpu")
    report = gpu.main(["--smoke", "--out", str(tmp_path), "--rows", "train", "overhead", "--train-steps", "20",
                       "--replays", "2", "--n-digits", "1"])
    rows = report["rows"]
    assert "error" not in rows["train_n1_captured"] and rows["train_n1_captured"]["steps"] == 20
    assert rows["train_n1_eager"]["examples_per_s"] > 0 and "--no-compile" in rows["train_n1_eager"]["command"]
    assert "--out" not in rows["train_n1_eager"]["command"]
    assert rows["overhead"][0]["ratio"] > 0 and rows["overhead"][0]["captured_updates"] == 0
    assert (tmp_path / "gpu_speed.json").exists()


def test_compiled_network_gives_the_eager_loss_and_gradients():
    """torch.compile of the digit network (CPU): the NeSy loss and its gradients on a fixed batch equal eager ones."""
    from nesy_gedi.recipes.addition_model import batch_forward, build_model

    torch.manual_seed(0)
    data = AdditionDataset(load_mnist("train"), n_digits=2, seed=0, size=64)
    net = MnistCNN()
    results = []
    for network in (net, torch.compile(net)):
        model = build_model(2, network)
        loss = -batch_forward(model, data, torch.arange(32), "cpu")[0].mean()
        grads = torch.autograd.grad(loss, list(net.parameters()))
        results.append((loss.detach(), torch.cat([g.flatten() for g in grads])))
    (eager_loss, eager_grads), (compiled_loss, compiled_grads) = results
    assert torch.allclose(compiled_loss, eager_loss, rtol=1e-6)
    assert torch.allclose(compiled_grads, eager_grads, rtol=1e-4, atol=1e-6)


def test_scaling_benchmark_compiles_with_workers_into_the_same_circuits(tmp_path):
    scaling = importlib.import_module("benchmarks.scaling")
    out = tmp_path / "scaling.json"
    out.write_text('{"rows": [{"processes": 1}]}')
    rows = scaling.main(["--procs", "1", "2", "--compile-digits", "2", "3", "--out", str(out)])
    assert [r["workers"] for r in rows] == [1, 2] and all(r["same_circuits_as_first"] for r in rows)
    import json

    written = json.loads(out.read_text())
    assert written["rows"] == [{"processes": 1}]  # the training rows are kept
    assert written["compile_pool"]["templates"] == ["N=2", "N=3"]


def test_unification_judges_a_run_the_same_beside_other_runs(tmp_path):
    """Every run's chains start from the same seeded noise: a run's row does not depend on the runs judged before it."""
    import json

    from nesy_gedi.train.checkpoint import save_network

    for folder, config, seed in (("both", "a_first", 0), ("both", "b_second", 1), ("alone", "b_second", 1)):
        run = tmp_path / folder / config / "seed0"
        run.mkdir(parents=True)
        torch.manual_seed(seed)
        save_network(run / "mnist_net.pt", MnistCNN(), "mnist_cnn", "gedi_pretrain")
        (run / "results.json").write_text(json.dumps({"args": {"seed": 0, "sgld_steps": 2}, "nmi": 0.5,
                                                      "matched_accuracy": 0.5}))
    unification = importlib.import_module("experiments.gedi.unification")
    # Langevin noise as large as the images: rows differ unless every run draws the same chain noise too
    common = ["--samples", "20", "--per-cluster", "2", "--sgld-steps", "2", "--sgld-noise", "1", "--judge-steps", "3",
              "--device", "cpu"]
    alone = unification.main(["--runs", str(tmp_path / "alone"), "--out", str(tmp_path / "out_alone"), *common])
    both = unification.main(["--runs", str(tmp_path / "both"), "--out", str(tmp_path / "out_both"), *common])
    assert [r["config"] for r in both] == ["a_first", "b_second"]
    second, first = {k: v for k, v in both[1].items() if k != "run"}, {k: v for k, v in alone[0].items() if k != "run"}
    assert second.pop("frechet") == pytest.approx(first.pop("frechet"), rel=1e-3)
    assert second == first
