"""Translate with a trained run: ``python translate.py --model runs/default < input.txt``."""

import sys

from minirnnsearch.translation import main

if __name__ == "__main__":
    sys.exit(main())
