"""Train RNNsearch: ``python train.py`` (built-in corpus) or ``python train.py --help``."""

import sys

from minirnnsearch import blas  # importing the package chooses the BLAS kernel, before NumPy
from minirnnsearch.training import main

if __name__ == "__main__":
    print(blas.describe(), file=sys.stderr)
    sys.exit(main())
