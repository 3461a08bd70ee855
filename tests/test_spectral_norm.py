"""Spectral normalisation: folded weights equal the normalised network, files of a normalised run load as plain
networks, and ``nesy-gedi pretrain --spectral-norm`` trains, resumes and saves such a network."""

import pytest
import torch

from nesy_gedi.networks import ARCHITECTURES, build_network
from nesy_gedi.spectral_norm import folded_state, spectrally_normalised
from nesy_gedi.train.checkpoint import load_network, network_state, save_network


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_folded_weights_compute_what_the_normalised_network_computes(arch):
    torch.manual_seed(0)
    net = spectrally_normalised(build_network(arch))
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    for _ in range(3):  # training-mode forwards move the power-iteration vectors
        net(x)
    net.eval()
    plain = build_network(arch).eval()
    plain.load_state_dict(folded_state(net.state_dict()))  # strict: every key of the plain network, no other
    assert torch.allclose(plain(x), net(x), atol=1e-6)
    # the largest singular value of each folded weight matrix is about 1 (one power iteration per forward)
    first = next(k for k in plain.state_dict() if k.endswith("weight"))
    assert torch.linalg.matrix_norm(plain.state_dict()[first].flatten(1), ord=2) == pytest.approx(1.0, abs=0.1)
    fresh = build_network(arch).state_dict()[first]  # without normalisation it is not
    assert torch.linalg.matrix_norm(fresh.flatten(1), ord=2) != pytest.approx(1.0, abs=0.1)


def test_plain_states_pass_and_a_missing_vector_is_named():
    plain = build_network("mnist_cnn").state_dict()
    assert folded_state(plain) is plain
    state = spectrally_normalised(build_network("mnist_cnn")).state_dict()
    del state["classifier.0.parametrizations.weight.0._v"]
    with pytest.raises(ValueError, match=r"'classifier.0'.*_v"):
        folded_state(state)


def test_a_saved_normalised_network_loads_as_a_plain_one(tmp_path):
    torch.manual_seed(1)
    net = spectrally_normalised(build_network("mnist_cnn"))
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    net(x)
    save_network(tmp_path / "net.pt", net, "mnist_cnn", "gedi_pretrain")
    saved = torch.load(tmp_path / "net.pt", weights_only=True)["state_dict"]
    assert set(saved) == set(build_network("mnist_cnn").state_dict())
    loaded = load_network(tmp_path / "net.pt", "mnist_cnn").eval()
    assert torch.allclose(loaded(x), net.eval()(x), atol=1e-6)


def test_pretraining_with_spectral_norm_resumes_and_saves_plain_weights(tmp_path):
    from nesy_gedi.recipes import gedi_pretrain

    common = ["--batch-size", "16", "--train-size", "64", "--gen-after", "2", "--sgld-steps", "2", "--sample-steps",
              "2", "--sgld-buffer-size", "64", "--checkpoint-every", "2", "--no-progress", "--device", "cpu",
              "--sampler-kl-weight", "0.1"]
    straight = gedi_pretrain.main(["--steps", "4", *common, "--spectral-norm", "--out", str(tmp_path / "straight")])
    gedi_pretrain.main(["--steps", "2", *common, "--spectral-norm", "--out", str(tmp_path / "resumed")])
    checkpoint = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert any(k.endswith("parametrizations.weight.original") for k in checkpoint["modules"]["net"])
    resumed = gedi_pretrain.main(["--steps", "4", "--resume", "--no-progress", "--out", str(tmp_path / "resumed")])
    assert resumed["args"]["spectral_norm"] and resumed["steps"] == straight["steps"] == 4
    a, _ = network_state(tmp_path / "straight" / "mnist_net.pt", "mnist_cnn")
    b, _ = network_state(tmp_path / "resumed" / "mnist_net.pt", "mnist_cnn")
    assert set(a) == set(build_network("mnist_cnn").state_dict())
    assert all(torch.equal(a[k], b[k]) for k in a)  # the resumed run re-normalised and continued exactly
    for k in a:  # every weight matrix is normalised: largest singular value about 1
        if k.endswith("weight"):
            assert torch.linalg.matrix_norm(a[k].flatten(1), ord=2) == pytest.approx(1.0, abs=0.1), k
    plain = gedi_pretrain.main(["--steps", "4", *common, "--out", str(tmp_path / "plain")])
    c, _ = network_state(tmp_path / "plain" / "mnist_net.pt", "mnist_cnn")
    assert not plain["args"]["spectral_norm"]
    assert not all(torch.linalg.matrix_norm(c[k].flatten(1), ord=2) == pytest.approx(1.0, abs=0.1)
                   for k in c if k.endswith("weight"))
