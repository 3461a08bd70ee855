"""Tests read MNIST from $NESY_GEDI_DATA, by default ../shared/data next to the checkout (as CI does)."""

import os
from pathlib import Path

os.environ.setdefault("NESY_GEDI_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))


import pytest


@pytest.fixture(params=["native", "torch"])
def evaluator(request, monkeypatch):
    """Run a test with the C circuit kernels (where a C compiler exists) and with the torch ops."""
    import nesy_gedi.circuit as circuit_module
    from nesy_gedi import kernels

    if request.param == "torch":
        monkeypatch.setattr(circuit_module, "circuit_kernels", lambda: None)
    elif kernels.circuit_kernels() is None:
        pytest.skip("no C compiler: the native kernels are unavailable")
    return request.param
