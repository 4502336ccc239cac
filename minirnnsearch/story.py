"""The story of attention in one command, on one built-in language pair or both.

    python -m minirnnsearch.story [--pair en-fr|en-de|both] [--minutes 15] [--out runs/story]
                                  [--figures docs]

Trains every model of the story (``ORDER``) on each pair with the same time budget each (or
reuses runs already in ``OUT/PAIR/VARIANT``; options it does not know go to train.py as they
are): RNNencdec (one fixed vector for the whole sentence), the hard-coded diagonal alignment (two
cursors moving in step) and RNNsearch (the soft search).
Then it translates the test set with each, prints BLEU and BLEU by source length, and writes

    FIGURES/bleu_by_length-PAIR.png   the paper's Figure 2: one curve per model
    FIGURES/alignment-PAIR.png        the paper's Figure 3: RNNsearch's alignment of a sentence
                                      chosen for its reordering (``SENTENCES``)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import sacrebleu

from . import training
from .checkpoint import checkpoint_exists
from .cli import beam_size, non_negative_int, output_dir, positive_float, positive_int
from .data.corpus import PAIRS, builtin_corpus, target_language
from .data.io import read_lines
from .data.tokenize import tokenize
from .report import (
    bleu_by_length,
    format_length_table,
    plot_attention,
    plot_bleu_by_length,
    text_heatmap,
)
from .translation import Translator

ORDER = ("encdec", "cursors", "diagonal", "rnnsearch")
LABELS = {"encdec": "RNNencdec (fixed vector)", "cursors": "cursors (marginalised by DP)",
          "diagonal": "diagonal (cursors in step)", "rnnsearch": "RNNsearch (soft alignment)"}
SENTENCES = {  # chosen by design, before any result: where each pair reorders most
    # adjectives after the noun in mirror order, as in the paper's Figure 3
    "en-fr": "The European economic area does not see the green houses of my friend.",
    # participle to the clause end across six words; subordinate verb and auxiliary last
    "en-de": "The teacher has seen the old house of my friend because the doctor has called "
             "the children.",
}


def tell(pair: str, args: argparse.Namespace, train_args: list[str]) -> int:
    """Train (or reuse) every model of ``ORDER`` on ``pair``, print their BLEU by source length
    and draw the pair's two figures; returns an exit code."""
    out, figures = Path(args.out) / pair, Path(args.figures)
    for variant in ORDER:
        run = out / variant
        if checkpoint_exists(run, "best") and not args.retrain:
            print(f"{pair} {variant}: reusing {run}", file=sys.stderr)
            continue
        print(f"{pair} {variant}: training for {args.minutes:g} minutes into {run}",
              file=sys.stderr)
        band = ["--band", str(args.band)] if variant == "cursors" and args.band else []
        code = training.main(["--pair", pair, "--variant", variant, "--max-time",
                              str(args.minutes), "--out", str(run), "--device", args.device,
                              *band, *train_args])
        if code:
            return code
    paths = builtin_corpus(training.DEFAULT_CORPUS_CACHE, seed=1234, pair=pair)
    src_all = read_lines(paths["test.en"])[: args.test_size]
    ref_all = read_lines(paths[f"test.{target_language(pair)}"])[: args.test_size]
    curves = {}
    for variant in ORDER:
        tr = Translator(out / variant, "best", args.device)
        keep = [k for k, s in enumerate(src_all) if len(tokenize(s)) <= tr.max_len]
        src, ref = [src_all[k] for k in keep], [ref_all[k] for k in keep]
        t0 = time.perf_counter()
        hyps = [hs[0][0] for hs in tr.translate(src, beam=args.beam)]
        rows = bleu_by_length(hyps, ref, src)
        curves[LABELS[variant]] = rows
        total = sacrebleu.corpus_bleu(hyps, [ref]).score
        print(f"\n{pair} {LABELS[variant]}: test BLEU {total:.2f} on {len(src)} sentences "
              f"(beam {args.beam}, {time.perf_counter() - t0:.0f} s to translate)")
        print(format_length_table(rows))
        if variant == "rnnsearch":
            search = tr
    bleu_png, align_png = figures / f"bleu_by_length-{pair}.png", figures / f"alignment-{pair}.png"
    plot_bleu_by_length(curves, bleu_png, f"BLEU by source length, built-in {pair} test set")
    _, _, weights, src_toks, tgt_toks = search.translate([SENTENCES[pair]], beam=args.beam)[0][0]
    plot_attention(weights, src_toks, tgt_toks, align_png)
    print(f"\n{pair} RNNsearch alignment of: {SENTENCES[pair]}\n"
          f"{text_heatmap(weights, src_toks, tgt_toks)}\n{pair} figures: {bleu_png}, {align_png}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.story", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", default="en-fr", choices=(*PAIRS, "both"),
                    help="the built-in language pair, or both in turn")
    ap.add_argument("--minutes", type=positive_float, default=15.0,
                    help="training budget per model")
    ap.add_argument("--out", type=output_dir, default="runs/story",
                    help="one run directory per pair and model")
    ap.add_argument("--figures", type=output_dir, default="docs", help="where the PNGs go")
    ap.add_argument("--retrain", action="store_true", help="train even where a run exists")
    ap.add_argument("--band", type=non_negative_int, default=0,
                    help="train the cursors with emissions within this many positions of the "
                         "diagonal (train.py --band; 0: the exact marginal)")
    ap.add_argument("--beam", type=beam_size, default=5)
    ap.add_argument("--test-size", type=positive_int,
                    help="translate only the first N test sentences")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    return ap


def main(argv: list[str] | None = None) -> int:
    args, train_args = build_parser().parse_known_args(argv)  # the rest goes to train.py as it is
    Path(args.figures).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for pair in PAIRS if args.pair == "both" else (args.pair,):
        code = tell(pair, args, train_args)
        if code:
            return code
    print(f"\n{(time.perf_counter() - started) / 60:.1f} minutes in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
