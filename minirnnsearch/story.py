"""The story of attention in one command.

    python -m minirnnsearch.story [--minutes 15] [--out runs/story] [--figures docs]

Trains the three models of the story on the built-in corpus with the same time budget each
(or reuses runs already in ``--out``; options it does not know go to train.py as they are):
RNNencdec (one fixed vector for the whole sentence), the hard-coded diagonal alignment (two
cursors moving in step) and RNNsearch (the soft search).
Then it translates the test set with each, prints BLEU and BLEU by source length, and writes

    FIGURES/bleu_by_length.png   the paper's Figure 2: the three curves
    FIGURES/alignment.png        the paper's Figure 3: RNNsearch's alignment of a sentence
                                 whose adjectives move behind their noun in French
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import sacrebleu

from . import training
from .checkpoint import checkpoint_exists
from .cli import beam_size, output_dir, positive_float, positive_int
from .data.corpus import builtin_corpus
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
# adjectives after the noun in mirror order, as in the paper's Figure 3
SENTENCE = "The European economic area does not see the green houses of my friend."


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.story", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=positive_float, default=15.0,
                    help="training budget per model")
    ap.add_argument("--out", type=output_dir, default="runs/story",
                    help="one run directory per model inside")
    ap.add_argument("--figures", type=output_dir, default="docs", help="where the two PNGs go")
    ap.add_argument("--retrain", action="store_true", help="train even where a run exists")
    ap.add_argument("--beam", type=beam_size, default=5)
    ap.add_argument("--test-size", type=positive_int,
                    help="translate only the first N test sentences")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    args, train_args = ap.parse_known_args(argv)  # the rest goes to train.py as it is
    out, figures = Path(args.out), Path(args.figures)
    figures.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for variant in ORDER:
        run = out / variant
        if checkpoint_exists(run, "best") and not args.retrain:
            print(f"{variant}: reusing {run}", file=sys.stderr)
            continue
        print(f"{variant}: training for {args.minutes:g} minutes into {run}", file=sys.stderr)
        code = training.main(["--variant", variant, "--max-time", str(args.minutes),
                              "--out", str(run), "--device", args.device, *train_args])
        if code:
            return code
    paths = builtin_corpus(training.DEFAULT_CORPUS_CACHE, seed=1234)
    src_all = read_lines(paths["test.en"])[: args.test_size]
    ref_all = read_lines(paths["test.fr"])[: args.test_size]
    curves = {}
    for variant in ORDER:  # rnnsearch last: its translator draws the alignment below
        tr = Translator(out / variant, "best", args.device)
        keep = [k for k, s in enumerate(src_all) if len(tokenize(s)) <= tr.max_len]
        src, ref = [src_all[k] for k in keep], [ref_all[k] for k in keep]
        t0 = time.perf_counter()
        hyps = [hs[0][0] for hs in tr.translate(src, beam=args.beam)]
        rows = bleu_by_length(hyps, ref, src)
        curves[LABELS[variant]] = rows
        total = sacrebleu.corpus_bleu(hyps, [ref]).score
        print(f"\n{LABELS[variant]}: test BLEU {total:.2f} on {len(src)} sentences "
              f"(beam {args.beam}, {time.perf_counter() - t0:.0f} s to translate)")
        print(format_length_table(rows))
    plot_bleu_by_length(curves, figures / "bleu_by_length.png",
                        "BLEU by source length, built-in En-Fr test set")
    _, _, weights, src_toks, tgt_toks = tr.translate([SENTENCE], beam=args.beam)[0][0]
    plot_attention(weights, src_toks, tgt_toks, figures / "alignment.png")
    print(f"\nRNNsearch alignment of: {SENTENCE}\n{text_heatmap(weights, src_toks, tgt_toks)}")
    print(f"\nfigures: {figures / 'bleu_by_length.png'}, {figures / 'alignment.png'}; "
          f"{(time.perf_counter() - started) / 60:.1f} minutes in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
