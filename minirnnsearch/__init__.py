"""RNNsearch (Bahdanau, Cho & Bengio 2014) from scratch in NumPy/CuPy, every backward pass by
hand. The Python API (docs/api.md):

    Settings     every option of train.py, its default and its rule on resume (settings.py)
    Result       how a run ended: updates, epochs, best dev BLEU, seconds, why it stopped
    train        train(Settings(...)) -> Result, what train.py runs (training.py)
    Translator   a trained run loaded from its directory: .translate(lines) (translation.py)
    Config       the model's sizes and variant (config.py)
    model        the model's functions: init_params, loss, loss_and_grads, encode, ...

Importing the package chooses the BLAS kernel (``blas.init``) before anything loads NumPy,
since OpenBLAS picks its kernel once, when it loads; so the names above are loaded on first
use (PEP 562), and ``import minirnnsearch`` itself loads no NumPy. A program that imported
NumPy before this package keeps OpenBLAS's own choice (``blas.describe`` says so).
"""

from __future__ import annotations

import importlib
from typing import Any

from . import blas

blas.init()

# name -> the module that holds it (a module itself when the two are the same)
_API = {"Settings": "settings", "Result": "trainer", "train": "training",
        "Translator": "translation", "Config": "config", "model": "model"}


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'minirnnsearch' has no attribute {name!r}")
    module = importlib.import_module(f".{_API[name]}", __name__)
    return module if name == _API[name] else getattr(module, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
