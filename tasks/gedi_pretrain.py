"""Pretrain the MNIST CNN on unlabeled MNIST with GEDI; report clustering quality.

    python tasks/gedi_pretrain.py --minutes 15 --out runs/gedi_pretrain

Writes ``mnist_net.pt`` (loadable by ``tasks/mnist_add.py --pretrained``),
``results.json`` (NMI, Hungarian-matched accuracy, ... on the test set; the
cluster -> digit mapping) and ``sgld_samples.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torchvision.utils import save_image
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nesy_gedi.augment import DigitAugment  # noqa: E402
from nesy_gedi.data import load_mnist  # noqa: E402
from nesy_gedi.gedi import GEDIObjective, GEDIWeights, SGLDConfig  # noqa: E402
from nesy_gedi.metrics import cluster_matching, concept_report  # noqa: E402
from nesy_gedi.networks import MnistCNN  # noqa: E402


@torch.no_grad()
def predict(net: torch.nn.Module, split, device, batch_size: int = 2000) -> torch.Tensor:
    """Softmax assignments ``[n, K]`` for every image of a split."""
    net.eval()
    out = [net(split.normalized(torch.arange(i, min(i + batch_size, len(split))), device)).softmax(1).cpu()
           for i in range(0, len(split), batch_size)]
    net.train()
    return torch.cat(out)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100, help="upper bound; --minutes usually stops first")
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many updates")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--gen-weight", type=float, default=GEDIWeights.gen)
    parser.add_argument("--invariance-weight", type=float, default=GEDIWeights.invariance)
    parser.add_argument("--prior-weight", type=float, default=GEDIWeights.prior)
    parser.add_argument("--gen-after", type=int, default=1500,
                        help="steps of clustering (invariance + prior) before the generative term starts")
    parser.add_argument("--energy-l2", type=float, default=GEDIWeights.energy_l2)
    parser.add_argument("--sgld-steps", type=int, default=SGLDConfig.steps)
    parser.add_argument("--sgld-step-size", type=float, default=SGLDConfig.step_size)
    parser.add_argument("--sgld-noise", type=float, default=SGLDConfig.noise)
    parser.add_argument("--sgld-restart", type=float, default=SGLDConfig.restart)
    parser.add_argument("--buffer-size", type=int, default=SGLDConfig.buffer_size)
    parser.add_argument("--train-size", type=int, default=None, help="use only this many training images")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/gedi_pretrain")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    train, test = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    n_train = min(args.train_size or len(train), len(train))
    net = MnistCNN().to(device)
    weights = GEDIWeights(args.gen_weight, args.invariance_weight, args.prior_weight, args.energy_l2)
    sgld = SGLDConfig(args.sgld_steps, args.sgld_step_size, args.sgld_noise, args.buffer_size, args.sgld_restart)
    generator = torch.Generator().manual_seed(args.seed)
    gedi = GEDIObjective(net, (1, 28, 28), replace(weights), sgld, device, generator)
    augment = DigitAugment()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)

    budget, start, steps, history = args.minutes * 60, time.perf_counter(), 0, []

    def finished() -> bool:
        return time.perf_counter() - start > budget or steps == args.max_steps

    for epoch in range(args.epochs):
        order = torch.randperm(n_train, generator=generator)
        bar = tqdm(range(0, n_train - args.batch_size + 1, args.batch_size), desc=f"epoch {epoch + 1}",
                   disable=args.no_progress)
        for i in bar:
            images = train.normalized(order[i : i + args.batch_size], device)
            gedi.weights.gen = weights.gen if steps >= args.gen_after else 0.0
            data_logits = net(images) if gedi.weights.gen > 0 else None  # only the data energy needs it
            terms = gedi(augment(images, generator), augment(images, generator), data_logits)
            optimizer.zero_grad()
            terms.total.backward()
            optimizer.step()
            steps += 1
            if steps % 50 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items().items()})
            if finished():
                break
        history.append({"epoch": epoch + 1, "steps": steps, "seconds": time.perf_counter() - start, **terms.items()})
        if finished():
            break
    train_seconds = time.perf_counter() - start

    probs = predict(net, test, device)
    report = concept_report(probs, test.labels)
    mapping = cluster_matching(probs.argmax(1), test.labels, 10)
    results = {
        "args": vars(args),
        "weights": asdict(weights),
        "sgld": asdict(sgld),
        "steps": steps,
        "train_seconds": train_seconds,
        "nmi": report["nmi"],
        "matched_accuracy": report["matched_accuracy"],
        "collapse": report["collapse"],
        "cluster_to_digit": mapping.tolist(),
        "confusion_matrix": report["confusion_matrix"],
        "history": history,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "cluster_to_digit": mapping.tolist()}, out / "mnist_net.pt")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    samples = gedi.sampler.buffer.samples[:64].cpu()
    save_image(samples * 0.5 + 0.5, out / "sgld_samples.png", nrow=8)
    print(json.dumps({k: results[k] for k in ("steps", "train_seconds", "nmi", "matched_accuracy", "collapse")}, indent=2))
    return results


if __name__ == "__main__":
    main()
