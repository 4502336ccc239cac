"""Argument types shared by every command line (train.py, translate.py, the bench, the story,
the gradient check): bad values are refused while the arguments are parsed, with argparse's own
one-line error naming the flag, e.g.

    train.py: error: argument --batch-size: must be at least 1, got 0

and exit status 2, before any file is read or any model is built. Give them as ``type=``:

    ap.add_argument("--hidden", type=positive_int)

    positive_int          integers >= 1              sizes, --batch-size, --valid-every
    non_negative_int      integers >= 0              --seed, --warmup
    int_at_least(n, why)  integers >= n              (``why`` ends the error message)
    beam_size             integers >= 1              --beam ("1 = greedy" in the message)
    data.vocab.vocab_size integers >= 5              --vocab-size: the 4 specials and a word
    positive_float        finite numbers > 0         --lr, --clip, --max-time, --threshold
    non_negative_float    finite numbers >= 0        --alpha
    probability           numbers in [0, 1)          a dropout rate
    factor                numbers in (0, 1]          --lr-decay (1: no change)
    output_dir            not an existing file,      --out, --figures, --attention-png
                          nor inside one
    output_file           not a directory, and in    --output, --plot-lengths
                          a directory that exists

NaN and infinity are refused wherever a float is taken. Each helper is a plain function of the
argument's text, so it can be called directly too (it raises ``argparse.ArgumentTypeError``).
Checks between flags (``--nbest`` at most ``--beam``) stay in the command's own ``main``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return x


def int_at_least(low: int, why: str = "") -> Callable[[str], int]:
    """A type accepting integers >= ``low``; ``why`` (if given) ends the error message."""

    def parse(text: str) -> int:
        n = _int(text)
        if n < low:
            raise argparse.ArgumentTypeError(
                f"must be at least {low}{f' ({why})' if why else ''}, got {n}")
        return n

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
beam_size = int_at_least(1, "1 = greedy")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    x = _float(text)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return x


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    x = _float(text)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return x


def probability(text: str) -> float:
    """A number in [0, 1) (a rate of dropping, say: 1 would drop everything)."""
    x = _float(text)
    if not 0 <= x < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return x


def factor(text: str) -> float:
    """A number in (0, 1]: a factor that shrinks something (1 leaves it as it is)."""
    x = _float(text)
    if not 0 < x <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return x


def output_dir(text: str) -> str:
    """A directory to create or write into: refused if it, or a folder above it, is an existing
    file. Returned unchanged."""
    path = Path(text)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "" if p == path else f" (in {text})"
                raise argparse.ArgumentTypeError(f"{p}{where} is an existing file, not a directory")
            break
    return text


def output_file(text: str) -> str:
    """A file to write, in a directory that exists: refused if it is an existing directory or
    its directory is missing. Returned unchanged."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{path.parent} (for {text}) is not a directory")
    return text
