"""Export a gedi_pretrain checkpoint.pt (mid-run) to a run folder with mnist_net.pt + results.json (NMI at that step)."""
import json, sys
from pathlib import Path
import torch
from nesy_gedi.data import load_mnist
from nesy_gedi.networks import build_network
from nesy_gedi.train.checkpoint import load_checkpoint, load_weights, network_state, save_network
from nesy_gedi.train.evaluate import evaluate_clusters

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
ck = load_checkpoint(src / "checkpoint.pt", "gedi_pretrain")
args = ck["args"]
net = build_network(args["arch"])
load_weights(net, network_state(src / "checkpoint.pt", args["arch"])[0], src, args["arch"])
test = load_mnist("test")
clusters = evaluate_clusters(net, test, torch.device("cpu"))
dst.mkdir(parents=True, exist_ok=True)
save_network(dst / "mnist_net.pt", net, args["arch"], "gedi_pretrain", cluster_to_label=clusters["cluster_to_label"])
step = ck.get("step")
(dst / "results.json").write_text(json.dumps({"args": args, "checkpoint_step": step, **clusters}))
print(dst, step, {k: clusters[k] for k in ("nmi", "matched_accuracy", "collapse")})
