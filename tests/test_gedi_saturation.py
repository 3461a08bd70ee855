"""The generative term's floor and the monitor that reports a saturated term."""

import math

import pytest
import torch

from nesy_gedi.gedi import SaturationMonitor, gen_floor


def test_floor_is_the_minimum_of_the_generative_loss():
    a, b = 0.1, 0.03
    grid = torch.linspace(-40, 40, 8001)
    data_part = (grid + a * grid.pow(2)).min()
    sample_part = (-grid + b * grid.pow(2)).min()
    assert gen_floor(a, b) == pytest.approx(float(data_part + sample_part), abs=1e-3)
    assert gen_floor(0.1) == pytest.approx(-5.0)
    assert gen_floor(0.1, 0.0) == -math.inf
    with pytest.raises(ValueError, match="non-negative"):
        gen_floor(-0.1)


def test_monitor_counts_updates_at_the_floor_over_its_window():
    monitor = SaturationMonitor(gen_floor(0.1), window=4)
    assert monitor.summary() == {} and monitor.warning() is None
    for gen in (0.3, -4.9, -4.7, -4.99, -5.0):  # the first leaves the window; -4.7 is 0.3 above: outside 5% of 5
        monitor.observe(gen, -5.0, 5.0)
    s = monitor.summary()
    assert s["updates"] == 4 and s["fraction_at_floor"] == pytest.approx(0.75)
    assert s["mean_sample_energy"] == pytest.approx(5.0)
    assert "floor (-5)" in monitor.warning() and "75%" in monitor.warning()
    assert monitor.warning(threshold=0.8) is None

    resumed = SaturationMonitor(gen_floor(0.1), window=4)
    resumed.load_state_dict(monitor.state_dict())
    assert resumed.summary() == s


def test_an_unbounded_loss_never_counts_as_saturated():
    monitor = SaturationMonitor(gen_floor(0.1, 0.0), window=3)
    for gen in (-100.0, -1000.0):
        monitor.observe(gen, -5.0, 1000.0)
    assert monitor.fraction_at_floor() == 0.0 and monitor.warning() is None
