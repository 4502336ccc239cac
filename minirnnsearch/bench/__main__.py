"""``python -m minirnnsearch.bench``: the command line of ``cli.py``. Importing the package
``minirnnsearch`` first chose the BLAS kernel (``blas.init``), before any module loads NumPy."""

import sys

from .cli import main

sys.exit(main())
