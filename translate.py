"""Translate with a trained run: ``python translate.py --model runs/default < input.txt``."""

import sys

from minirnnsearch import blas  # importing the package chooses the BLAS kernel, before NumPy
from minirnnsearch.translation import main

if __name__ == "__main__":
    print(blas.describe(), file=sys.stderr)
    sys.exit(main())
