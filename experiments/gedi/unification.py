"""Does the unification pay?  Clustering, generation and OOD detection of GEDI runs, side by side.

    python tasks/gedi_pretrain.py --seed 0 --out runs/gedi/full/seed0                      # all terms
    python tasks/gedi_pretrain.py --seed 0 --gen-weight 0 --out runs/gedi/no_gen/seed0      # clusterer only
    python tasks/gedi_pretrain.py --seed 0 --invariance-weight 0 --prior-weight 0 --gen-after 0 \\
        --out runs/gedi/gen_only/seed0                                                     # EBM only
    python -m experiments.gedi.unification --runs runs/gedi --out runs/gedi/unification

For every run folder ``RUNS/<config>/<seed>`` with a ``mnist_net.pt``:

* clustering: NMI and matched accuracy from its ``results.json``;
* generation: ``--samples`` fresh samples from the run's own sampler (SGLD
  chains from uniform noise; annealed Langevin for ``dsm``; chains from the
  saved generator's proposals, ``proposal.pt``, for ``amortised``), judged by a
  supervised CNN trained here on MNIST train: the fraction classified with
  confidence >= 0.9, the number of classes they cover, and the Fréchet
  distance between the judge's penultimate features of samples and of MNIST
  test (the floor: MNIST test vs train);
* generation and clustering in one network: ``--per-cluster`` fresh samples
  per cluster on the cluster-conditional energy E(x, y) = -f(x)[y], judged
  the same way, and their agreement: the fraction the judge names as the
  digit their cluster is matched to (Hungarian matching on MNIST test);
* OOD: AUROC and FPR at 95% TPR of the energy score, MNIST test vs
  Fashion-MNIST test, uniform noise and vertically flipped MNIST test, and
  the flipped-digit AUROC per digit (test images of digit d vs their flips:
  a flipped 0, 1, 3 or 8 is often still a plausible digit).

Every run's chains start from the same seeded noise and draw the same Langevin
noise (``--seed``), so a run's row is the same whichever runs are judged beside
it.  The judge itself, scored by max-softmax and by its own energy, is the
supervised OOD baseline.  Writes ``OUT/unification.json``, ``OUT/unification.md``
and a sample grid per run.  ``--claims ONE CLUSTERER GENERATOR`` names three
configurations (all terms; without the generative term; the generative term
alone) and adds one sentence per claim of the GEDI paper to the table: whether it
holds here, against the targets in :data:`TARGETS`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from nesy_gedi.commands import (add_common_arguments, existing_dir, nonnegative_int, output_dir, positive_int,
                                run_command)
from nesy_gedi.data import load_mnist
from nesy_gedi.errors import DataError
from nesy_gedi.gedi import SGLDConfig, ood_report
from nesy_gedi.gedi.ood import auroc, energy_scores
from nesy_gedi.gedi.estimators import EstimatorConfig, fresh_conditional_samples, fresh_samples
from nesy_gedi.gedi.proposal import load_proposal
from nesy_gedi.gedi.sgld import fresh_chain_steps
from nesy_gedi.metrics import cluster_matching
from nesy_gedi.networks import MnistCNN
from nesy_gedi.train.checkpoint import load_network
from nesy_gedi.train.loop import LoopConfig, Trainer


def chain_steps(value: str) -> int | str:
    """``--sgld-steps``: a positive number of steps or ``run``."""
    if value == "run":
        return value
    return positive_int(value)


def run_estimator(results: dict) -> EstimatorConfig:
    """How a run's generative term was trained (runs from before the estimators: SGLD)."""
    return EstimatorConfig(**results.get("estimator", {}))


def run_chain_steps(run_args: dict) -> int:
    """The fresh-chain length a run was trained for (see :func:`fresh_chain_steps`)."""
    return fresh_chain_steps(run_args.get("sgld_steps", 0), run_args.get("sgld_restart", 0),
                             run_args.get("gen_estimator", "sgld"))


def add_judged_sampling_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """The flags of a benchmark that samples trained runs and judges the samples: ``--runs``, ``--samples``, the
    SGLD step size and noise, ``--judge-steps``, ``--seed``, ``--out`` (default ``out``) and the common ones."""
    parser.add_argument("--runs", type=existing_dir, required=True, help="folder of <config>/<seed>/ run folders")
    parser.add_argument("--samples", type=positive_int, default=1000, help="fresh-noise samples per run")
    parser.add_argument("--sgld-step-size", type=float, default=SGLDConfig.step_size)
    parser.add_argument("--sgld-noise", type=float, default=SGLDConfig.noise)
    parser.add_argument("--judge-steps", type=positive_int, default=2000)
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--out", type=output_dir, default=out)
    add_common_arguments(parser)


def open_judged_sampling(args: argparse.Namespace) -> tuple[torch.device, list[Path], Path, object, object]:
    """What a benchmark with :func:`add_judged_sampling_arguments` starts from: the device, the run folders
    (:func:`find_runs`), the created output folder, MNIST train and test."""
    device = torch.device(args.device)
    runs = find_runs(args.runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return device, runs, out, load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)


def find_runs(folder: str | Path) -> list[Path]:
    """The run folders ``folder/<config>/<seed>/`` that hold a ``mnist_net.pt``, sorted."""
    runs = sorted(p.parent for p in Path(folder).glob("*/*/mnist_net.pt"))
    if not runs:
        raise DataError(f"no run folders <config>/<seed>/mnist_net.pt under {folder}")
    return runs


def load_run(run: Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """A run's network (its ``--arch``, in eval mode, on ``device``) and its ``results.json``."""
    results = json.loads((run / "results.json").read_text())
    arch = results["args"].get("arch", "mnist_cnn")
    return load_network(run / "mnist_net.pt", arch).to(device).eval(), results


def train_supervised_cnn(train, device, steps: int, seed: int, out: Path, batch_fn, n_classes: int = 10,
                         name: str = "judge") -> MnistCNN:
    """A MnistCNN with ``n_classes`` outputs trained by cross-entropy on ``batch_fn(indices) -> (images, targets)``
    of MNIST train (Adam 1e-3, batch 128, ``steps`` updates), through the package's training loop."""
    torch.manual_seed(seed)
    net = MnistCNN(n_classes=n_classes).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        images, targets = batch_fn(batch)
        return {"loss": F.cross_entropy(net(images), targets)}

    loop = LoopConfig(out=out, epochs=-(-steps * 128 // len(train)), batch_size=128, max_steps=steps,
                      progress=False, description=name)
    Trainer(loop, len(train), step, {"net": net}, optimizer, torch.Generator().manual_seed(seed),
            run_info={"kind": name, "arch": "mnist_cnn"}).fit()
    return net.eval()


def train_judge(train, device, steps: int, seed: int, out: Path) -> MnistCNN:
    """The judge: a supervised digit classifier (:func:`train_supervised_cnn` on MNIST train's labels)."""
    return train_supervised_cnn(train, device, steps, seed, out,
                                lambda batch: (train.normalized(batch, device), train.labels[batch].to(device)))


def judge_reference(train, test, device, steps: int, seed: int,
                    out: Path) -> tuple[MnistCNN, float, np.ndarray, float]:
    """The judge (:func:`train_judge`), its MNIST test accuracy, its features of MNIST test (the reference of
    the Fréchet distance) and the Fréchet floor (MNIST test vs the first 10,000 train images)."""
    judge = train_judge(train, device, steps, seed, out)
    inside = test.normalized(None, device)
    with torch.no_grad():
        accuracy = float((judge(inside).argmax(1).cpu() == test.labels).float().mean())
    test_features = features(judge, inside)
    floor = frechet(test_features, features(judge, train.normalized(torch.arange(10000), device)))
    return judge, accuracy, test_features, floor


@torch.no_grad()
def features(judge: MnistCNN, images: torch.Tensor) -> np.ndarray:
    """The judge's penultimate (84-unit) features."""
    out = []
    for i in range(0, len(images), 1000):
        h = judge.encoder(images[i:i + 1000]).flatten(1)
        out.append(judge.classifier[:-1](h).cpu())
    return torch.cat(out).double().numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) for covariances A, B: the eigenvalues of A B are real and >= 0 (up to rounding)
    root_trace = np.sqrt(np.clip(np.linalg.eigvals(cov_a @ cov_b).real, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b) - 2 * root_trace)


def judged_digits(judge: MnistCNN, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The digit the judge names for each sample, and whether it names it with confidence >= 0.9."""
    with torch.no_grad():
        probs = judge(samples).softmax(1)
    return probs.argmax(1), probs.max(1).values >= 0.9


def confident_counts(digits: torch.Tensor, confident: torch.Tensor) -> torch.Tensor:
    """How many samples the judge names as each digit with confidence >= 0.9 (:func:`judged_digits`'s output)."""
    return digits[confident].bincount(minlength=10)


def sample_quality(judge: MnistCNN, samples: torch.Tensor, test_features: np.ndarray) -> dict:
    """The confident fraction, the classes among the confident samples, the largest digit's share of them (a
    crowding that "10 classes" hides; None without confident samples) and the Fréchet distance to the test set."""
    digits, confident = judged_digits(judge, samples)
    counts = confident_counts(digits, confident)
    return {"confident_fraction": float(confident.float().mean()),
            "classes_covered": int((counts > 0).sum()),
            "largest_digit_share": float(counts.max() / counts.sum()) if counts.sum() > 0 else None,
            "frechet": frechet(features(judge, samples), test_features)}


def conditional_quality(judge: MnistCNN, samples: torch.Tensor, clusters: torch.Tensor,
                        cluster_digit: np.ndarray) -> dict:
    """Judge cluster-conditional samples: confident fraction, classes covered, and the fraction the
    judge names as their cluster's matched digit."""
    digits, confident = judged_digits(judge, samples)
    named = digits.cpu().numpy() == cluster_digit[clusters.cpu().numpy()]
    return {"conditional_confident_fraction": float(confident.float().mean()),
            "conditional_classes_covered": int(digits[confident].unique().numel()),
            "conditional_agreement": float(named.mean())}


def vflip_by_digit(inside_scores: torch.Tensor, flipped_scores: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """AUROC of each digit's test images vs the same images flipped vertically, from the scores of all test
    images and of their flips (same order; higher = inside)."""
    inside_scores, flipped_scores, labels = inside_scores.cpu(), flipped_scores.cpu(), labels.cpu()
    return [auroc(inside_scores[labels == d], flipped_scores[labels == d]) for d in range(10)]


TARGETS = {"nmi": 0.90, "confident_fraction": 0.8, "classes_covered": 10, "frechet": 30.0,
           "conditional_agreement": 0.8, "auroc_fashion": 0.99, "auroc_noise": 0.99}


def _stats(rows: list[dict], config: str, key: str) -> tuple[float, float]:
    """Mean and standard deviation (0 for one seed) of ``key`` over the runs of ``config``."""
    values = [r[key] for r in rows if r["config"] == config]
    if not values:
        raise DataError(f"--claims names configuration {config!r}, which has no run here")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _compared(rows: list[dict], key: str, better: str, worse: str, lower_is_better: bool = False) -> str:
    """Whether ``better``'s mean ``key`` beats ``worse``'s by more than the two spreads together."""
    (a, sa), (b, sb) = _stats(rows, better, key), _stats(rows, worse, key)
    if lower_is_better:
        a, b = -a, -b
    if a - b > sa + sb:
        return "holds"
    if b - a > sa + sb:
        return "does not hold (it is worse)"
    return "does not hold (no difference beyond the seeds' spread)"


def claims(rows: list[dict], baseline: dict, one: str, clusterer: str, generator: str) -> list[str]:
    """One sentence per claim of the GEDI paper, for the configuration ``one`` (all terms) beside ``clusterer``
    (without the generative term) and ``generator`` (the generative term alone): the numbers and whether the claim
    holds here (:data:`TARGETS`; a comparison holds when the means differ by more than the two standard
    deviations together)."""
    def mean(config: str, key: str) -> float:
        return _stats(rows, config, key)[0]

    def verdict(ok: bool) -> str:
        return "holds" if ok else "does not hold"

    t = TARGETS
    nmi, sd = _stats(rows, one, "nmi")
    conf, classes, fid = (mean(one, k) for k in ("confident_fraction", "classes_covered", "frechet"))
    agreement = mean(one, "conditional_agreement")
    fashion, noise, vflip = (mean(one, f"auroc_{k}") for k in ("fashion", "noise", "vflip"))
    supervised_vflip = baseline["energy"]["vflip"]["auroc"]
    return [
        f"One network clusters: NMI {nmi:.3f} ± {sd:.3f} (target ≥ {t['nmi']:.2f}): {verdict(nmi >= t['nmi'])}.",
        f"The same network generates digits from noise: {conf:.3f} of its samples confident, {classes:.1f} classes, "
        f"Fréchet {fid:.0f} (targets ≥ {t['confident_fraction']}, {t['classes_covered']}, ≤ {t['frechet']:.0f}): "
        f"{verdict(conf >= t['confident_fraction'] and classes >= t['classes_covered'] and fid <= t['frechet'])}.",
        f"Its clusters generate their own digits: cluster-conditional samples agree with their cluster's digit "
        f"{agreement:.3f} of the time (target ≥ {t['conditional_agreement']}): "
        f"{verdict(agreement >= t['conditional_agreement'])}.",
        f"The generative half helps the clusters: NMI {nmi:.3f} with it, {mean(clusterer, 'nmi'):.3f} without it "
        f"({clusterer}): {_compared(rows, 'nmi', one, clusterer)}.",
        f"The clustering half helps generation: samples at Fréchet {fid:.0f} with it, "
        f"{mean(generator, 'frechet'):.0f} with the generative term alone ({generator}; confident "
        f"{conf:.3f} and {mean(generator, 'confident_fraction'):.3f}, but confident noise is no digit, so "
        f"Fréchet decides): {_compared(rows, 'frechet', one, generator, lower_is_better=True)}.",
        f"Its energy detects far-away inputs: AUROC {fashion:.3f} against Fashion-MNIST and {noise:.3f} against "
        f"noise (targets ≥ {t['auroc_fashion']}, ≥ {t['auroc_noise']}): "
        f"{verdict(fashion >= t['auroc_fashion'] and noise >= t['auroc_noise'])}.",
        f"The generative half makes the energy a better detector: AUROC against Fashion-MNIST {fashion:.3f} with it, "
        f"{mean(clusterer, 'auroc_fashion'):.3f} without it: {_compared(rows, 'auroc_fashion', one, clusterer)}.",
        f"Its energy detects flipped digits as well as a supervised CNN's energy: AUROC {vflip:.3f} against "
        f"{supervised_vflip:.3f}: {verdict(vflip >= supervised_vflip)}.",
    ]


def markdown(rows: list[dict], floor: float, baseline: dict, claim_lines: list[str] | None = None) -> str:
    cols = [("nmi", "NMI"), ("matched_accuracy", "matched acc"), ("confident_fraction", "samples conf>=0.9"),
            ("classes_covered", "classes"), ("frechet", "Fréchet"), ("auroc_fashion", "AUROC Fashion"),
            ("auroc_noise", "AUROC noise"), ("auroc_vflip", "AUROC vflip"), ("fpr95_vflip", "FPR95 vflip"),
            ("conditional_confident_fraction", "cond. conf>=0.9"), ("conditional_agreement", "cond. agreement")]
    lines = ["| configuration | seeds | " + " | ".join(c[1] for c in cols) + " |", "|---|---|" + "---|" * len(cols)]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["config"], []).append(r)
    for config, rs in groups.items():
        cells = []
        for key, _ in cols:
            values = [r[key] for r in rs]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {sd:.3f}" if key != "frechet" else
                         f"{statistics.mean(values):.1f} ± {sd:.1f}")
        lines.append(f"| {config} | {len(rs)} | " + " | ".join(cells) + " |")
    for score, results in baseline.items():
        lines.append(f"| supervised CNN, {score.replace('_', '-')} | 1 | - | - | - | - | - | {results['fashion']['auroc']:.3f} | "
                     f"{results['noise']['auroc']:.3f} | {results['vflip']['auroc']:.3f} | "
                     f"{results['vflip']['fpr95']:.3f} | - | - |")
    by_digit = [("supervised CNN, energy", baseline.get("energy", {}).get("vflip_by_digit"))]
    by_digit += [(f"{r['config']} seed {r['seed']}", r.get("auroc_vflip_by_digit")) for r in rows]
    lines += ["", "Flipped-digit AUROC per digit (energy score):", "",
              "| model | " + " | ".join(str(d) for d in range(10)) + " |", "|---|" + "---|" * 10]
    lines += [f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |" for name, values in by_digit if values]
    lines.append(f"\nFréchet floor (MNIST test vs train features of the judge): {floor:.2f}\n")
    if claim_lines:
        lines += ["The paper's claims, here:", ""] + [f"* {line}" for line in claim_lines] + [""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m experiments.gedi.unification", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_judged_sampling_arguments(parser, out="runs/gedi/unification")
    parser.add_argument("--sgld-steps", type=chain_steps, default=200,
                        help="SGLD steps of a fresh chain, or 'run': each run's own training --sgld-steps where it "
                             "trained on fresh chains (--sgld-restart 1, short-run sampling), else 200")
    parser.add_argument("--per-cluster", type=positive_int, default=100,
                        help="fresh cluster-conditional chains per cluster (the first 10 are drawn in the grid)")
    parser.add_argument("--claims", nargs=3, metavar=("ONE", "CLUSTERER", "GENERATOR"),
                        help="configurations with all terms, without the generative term and with it alone: add "
                             "one sentence per claim of the paper")
    args = parser.parse_args(argv)
    device, runs, out, train, test = open_judged_sampling(args)
    missing = sorted(set(args.claims or ()) - {run.parent.name for run in runs})
    if missing:  # before any judging
        raise DataError(f"--claims names configurations without runs under {args.runs}: {', '.join(missing)}")
    fashion = load_mnist("test", args.data_dir, dataset="fashion_mnist")
    inside = test.normalized(None, device)
    generator = torch.Generator().manual_seed(args.seed)
    outsides = {"fashion": fashion.normalized(None, device),
                "noise": (torch.rand(10000, 1, 28, 28, generator=generator) * 2 - 1).to(device),
                "vflip": inside.flip(-2)}
    judge, judge_acc, test_features, floor = judge_reference(train, test, device, args.judge_steps, args.seed,
                                                             out / "judge")
    baseline = ood_report(judge, inside, outsides, ("max_softmax", "energy"))
    baseline["energy"]["vflip_by_digit"] = vflip_by_digit(energy_scores(judge, inside),
                                                          energy_scores(judge, outsides["vflip"]), test.labels)
    print(json.dumps({"judge_test_accuracy": judge_acc, "frechet_floor": floor, "baseline": baseline}), flush=True)

    sgld = SGLDConfig(step_size=args.sgld_step_size, noise=args.sgld_noise)
    chains_start = generator.get_state()
    rows = []
    for run in runs:
        # every run's chains draw their starts and Langevin noise from the same generator state (anything else from
        # the same global seed), so a row does not depend on the runs judged beside it
        generator.set_state(chains_start)
        torch.manual_seed(args.seed)
        net, results = load_run(run, device)
        steps = run_chain_steps(results["args"]) if args.sgld_steps == "run" else args.sgld_steps
        estimator = run_estimator(results)
        proposal = load_proposal(run / "proposal.pt", device) if estimator.name == "amortised" else None
        samples = fresh_samples(net, args.samples, (1, 28, 28), estimator, sgld, steps, generator, device,
                                proposal=proposal)
        save_image(samples[:100].cpu() * 0.5 + 0.5, out / f"samples_{run.parent.name}_{run.name}.png", nrow=10)
        with torch.no_grad():
            test_logits = torch.cat([net(chunk) for chunk in inside.split(1000)])
        n_clusters = int(test_logits.shape[1])
        cluster_digit = cluster_matching(test_logits.argmax(1).cpu(), test.labels, max(n_clusters, 10))
        conditional = fresh_conditional_samples(net, args.per_cluster, n_clusters, (1, 28, 28), estimator, sgld,
                                                steps, generator, device, proposal)
        clusters = torch.arange(n_clusters).repeat_interleave(args.per_cluster)
        grid = conditional.view(n_clusters, args.per_cluster, 1, 28, 28)[:, :10].reshape(-1, 1, 28, 28)
        save_image(grid.cpu() * 0.5 + 0.5, out / f"conditional_{run.parent.name}_{run.name}.png",
                   nrow=min(10, args.per_cluster))
        detection = ood_report(net, inside, outsides, ("energy",))["energy"]
        row = {"config": run.parent.name, "run": str(run), "seed": results["args"].get("seed"),
               "estimator": estimator.name, "chain_steps": "annealed" if estimator.name == "dsm" else steps,
               "nmi": results["nmi"], "matched_accuracy": results["matched_accuracy"],
               **sample_quality(judge, samples, test_features),
               **{f"{m}_{name}": v[m] for name, v in detection.items() for m in ("auroc", "fpr95")},
               "auroc_vflip_by_digit": vflip_by_digit(test_logits.logsumexp(1), energy_scores(net, outsides["vflip"]),
                                                      test.labels),
               **conditional_quality(judge, conditional, clusters, cluster_digit)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"judge_test_accuracy": judge_acc, "frechet_floor": floor, "baseline": baseline, "runs": rows,
               "args": vars(args)}
    claim_lines = claims(rows, baseline, *args.claims) if args.claims else None
    summary["claims"] = claim_lines
    (out / "unification.json").write_text(json.dumps(summary, indent=2))
    (out / "unification.md").write_text(markdown(rows, floor, baseline, claim_lines))
    print(markdown(rows, floor, baseline, claim_lines))
    return rows


if __name__ == "__main__":
    sys.exit(run_command(main))
