"""Check every analytic gradient of the model against central finite differences.

    python -m minirnnsearch.gradcheck [--variant all|rnnsearch|encdec|diagonal|cursors]
                                      [--threshold 1e-6] [--band 0] [--dropout P]
                                      [--label-smoothing EPS]

Float64, a tiny model with random parameters (not the paper's near-zero initialisation, so that
every path carries signal) and a batch of unequal lengths, padded on the source and target side.
For each parameter it prints the relative error (cs231n's ``rel_error``)

    max|a - n| / max(1e-8, max(|a| + |n|))      a analytic, n numerical (h = 1e-5)

and exits 1 if any is above the threshold. ``--band`` checks the cursors with their training
band (source lengths 6, 3 and 4 with </s>: band 1 leaves 3 cells per step). With ``--dropout P``
the check runs with dropout masks drawn once and held fixed, so the loss is a fixed function of
the parameters. With ``--label-smoothing EPS`` the loss checked is the smoothed one training
uses. A variant without dropout (``model.supports_dropout``: the cursors) is checked without it,
one without label smoothing (``model.supports_label_smoothing``: the cursors) without that, and
only a variant with a band (``model.supports_band``) with ``--band``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np

from . import model
from .backend import get_backend
from .cli import non_negative_int, positive_float, probability
from .data.batching import Batch, make_batch
from .oserrors import reports_os_errors


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """max|a-n| / max(1e-8, max(|a|+|n|)): the worst entry relative to the array's scale."""
    return float(np.max(np.abs(a - n)) / max(1e-8, float(np.max(np.abs(a) + np.abs(n)))))


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences (f(x+h) - f(x-h)) / 2h of a scalar f of the NumPy array x, which is
    changed in place and restored entry by entry."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = f()
        x[i] = old - h
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def tiny_problem(variant: str, seed: int = 0, band: int = 0
                 ) -> tuple[model.Config, dict, Batch]:
    """A tiny float64 model with random parameters and a batch of unequal lengths (NumPy)."""
    rng = np.random.default_rng(seed)
    cfg = model.Config(src_vocab=11, tgt_vocab=13, variant=variant,
                       emb=4, hidden=5, align=4, maxout=3, band=band)
    params = {k: rng.normal(0.0, 0.5, v.shape)
              for k, v in model.init_params(cfg, get_backend("cpu"), seed, "float64").items()}
    src = [list(rng.integers(4, cfg.src_vocab, n)) for n in (5, 2, 3)]
    tgt = [list(rng.integers(4, cfg.tgt_vocab, n)) for n in (2, 4, 1)]
    return cfg, params, make_batch(src, tgt)


def check_model(variant: str, seed: int = 0, band: int = 0, dropout: float = 0.0,
                label_smoothing: float = 0.0) -> dict[str, float]:
    """The relative error of every parameter's gradient for ``variant``, by name; with
    ``dropout`` > 0, under one fixed set of dropout masks; with ``label_smoothing`` > 0, of the
    smoothed loss."""
    cfg, params, batch = tiny_problem(variant, seed, band)
    masks = model.dropout_masks(cfg, batch.src.shape[0], dropout, np.random.default_rng(seed),
                                get_backend("cpu"), "float64")
    _, grads = model.loss_and_grads(params, cfg, batch, masks, label_smoothing)
    return {name: rel_error(grads[name], numerical_gradient(
                lambda: float(model.loss(params, cfg, batch, masks, label_smoothing)),
                params[name]))
            for name in params}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.gradcheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="all", choices=("all", *model.VARIANTS))
    ap.add_argument("--threshold", type=positive_float, default=1e-6)
    ap.add_argument("--seed", type=non_negative_int, default=0)
    ap.add_argument("--band", type=non_negative_int, default=0,
                    help="the cursors' training band (0: none)")
    ap.add_argument("--dropout", type=probability, default=0.0,
                    help="check with dropout masks of this rate, held fixed")
    ap.add_argument("--label-smoothing", type=probability, default=0.0, metavar="EPS",
                    help="check the loss smoothed by EPS (train.py --label-smoothing)")
    return ap


@reports_os_errors  # a full stdout: one line
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    variants = model.VARIANTS if args.variant == "all" else (args.variant,)
    worst = 0.0
    for variant in variants:
        errors = check_model(variant, args.seed,
                             args.band if model.supports_band(variant) else 0,
                             args.dropout if model.supports_dropout(variant) else 0.0,
                             args.label_smoothing
                             if model.supports_label_smoothing(variant) else 0.0)
        print(f"{variant}: max relative error {max(errors.values()):.2e}")
        for name, err in errors.items():
            flag = "  FAIL" if err > args.threshold else ""
            print(f"  {name:<12} {err:.2e}{flag}")
        worst = max(worst, *errors.values())
    ok = worst <= args.threshold
    print(f"{'OK' if ok else 'FAILED'}: worst {worst:.2e}, threshold {args.threshold:.0e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
