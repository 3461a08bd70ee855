"""GEDI pretraining on unlabeled MNIST (or Fashion-MNIST); clustering quality on the test set.

    python tasks/gedi_pretrain.py --out runs/gedi_pretrain

``--help`` lists the options; the recipe lives in ``nesy_gedi.recipes.gedi_pretrain``.
"""

import sys

from nesy_gedi.commands import run_command
from nesy_gedi.recipes.gedi_pretrain import main

if __name__ == "__main__":
    sys.exit(run_command(main))
