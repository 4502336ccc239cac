"""Train RNNsearch: ``python train.py`` (built-in corpus) or ``python train.py --help``."""

import sys

from minirnnsearch.training import main

if __name__ == "__main__":
    sys.exit(main())
