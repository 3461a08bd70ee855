"""Tests read MNIST from $NESY_GEDI_DATA, by default ../shared/data next to the checkout (as CI does)."""

import os
from pathlib import Path

os.environ.setdefault("NESY_GEDI_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
