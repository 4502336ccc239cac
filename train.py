"""Train RNNsearch: ``python train.py`` (built-in corpus) or ``python train.py --help``."""

import sys

from minirnnsearch import blas

blas.init()  # before NumPy loads: OpenBLAS picks its kernel once, when it loads

from minirnnsearch.training import main

if __name__ == "__main__":
    print(blas.describe(), file=sys.stderr)
    sys.exit(main())
