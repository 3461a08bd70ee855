"""Train MNIST addition (N-digit numbers) through a ProbLog program.

    python tasks/mnist_add.py --n-digits 1 --epochs 1 --batch-size 32

``python tasks/mnist_add.py --help`` lists the options; the recipe lives in
``nesy_gedi.recipes.addition``.
"""

import sys

from nesy_gedi.commands import run_command
from nesy_gedi.recipes.addition import main

if __name__ == "__main__":
    sys.exit(run_command(main))
