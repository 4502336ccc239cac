"""The story of attention in one command, on one built-in language pair or both.

    python -m minirnnsearch.story [--pair en-fr|en-de|both] [--valid-every N] [--patience N]
                                  [--max-steps N] [--minutes M] [--out runs/story]
                                  [--figures docs] [--retrain] [--resume]

Trains every model of the story (``ORDER``) on each pair to its plateau: its learning rate
shrunk by ``--lr-decay`` at every validation without a better dev BLEU, until ``--patience``
validations in a row have brought none (one every ``--valid-every`` updates, on
``--valid-size`` dev sentences), with a cap in updates (``--max-steps``) and, if given, one in
minutes (``--minutes``). A budget in updates, not minutes, makes a model's result independent of
what else the machine was doing. Every model gets the paper's initialisation and batches
(``--init paper --sort-pool 20``, not train.py's defaults). Options the story does not know go
to train.py as they are, after those (so ``--init fan-in`` given here wins).
A run already in ``OUT/PAIR/VARIANT`` is reused (``--retrain`` trains it again, replacing it:
train.py ``--overwrite``): the record of its training, ``story.json`` beside its checkpoints,
says how it stopped. A run without a record was interrupted (or trained elsewhere): ``--resume``
continues it from its last checkpoint. One stopped before its first validation (no ``best``) is
neither reused nor trained over: train.py refuses its directory until ``--resume`` or
``--retrain`` says which.
The models are RNNencdec (one fixed vector for the whole sentence), the cursors (a latent
monotone alignment summed out by dynamic programming over every position, or with ``--band w``
only within w words of the diagonal in training), the hard-coded diagonal (two cursors
moving in step) and RNNsearch (the soft search). Then it translates the test set with each,
prints test BLEU and BLEU by source length, and writes

    OUT/PAIR/results.md              the tables: per model updates, epochs, why it stopped,
                                     wall minutes, the machine's load and test BLEU; BLEU by length
    FIGURES/bleu_by_length-PAIR.png  the paper's Figure 2: one curve per model
    FIGURES/alignment-PAIR.png       the paper's Figure 3: RNNsearch's alignment of a sentence
                                     chosen for its reordering (``SENTENCES``)
    FIGURES/four-contexts-PAIR.png   that sentence under each model: how each chooses the context
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import sacrebleu

from . import model, training
from .checkpoint import checkpoint_exists
from .cli import beam_size, factor, non_negative_int, output_dir, positive_float, positive_int
from .data.batching import CHUNK_BATCHES
from .data.corpus import PAIRS, builtin_corpus, target_language
from .data.io import read_lines
from .data.tokenize import tokenize
from .oserrors import doing, make_dir, reports_os_errors, write_atomic
from .report import (
    Panel,
    bleu_by_length,
    format_length_table,
    plot_attention,
    plot_bleu_by_length,
    plot_contexts,
    text_heatmap,
)
from .traindata import DEFAULT_CORPUS_CACHE
from .translation import Translator

ORDER = ("encdec", "cursors", "diagonal", "rnnsearch")
LABELS = {"encdec": "RNNencdec (fixed vector)", "cursors": "cursors (marginalised by DP)",
          "diagonal": "diagonal (cursors in step)", "rnnsearch": "RNNsearch (soft alignment)"}
CONTEXTS = {  # what each model's panel of the four-context figure shows
    "encdec": "no alignment", "cursors": "posterior p(a_i = j | y, x)",
    "diagonal": "fixed one-hot, c_i = h_min(i, S)", "rnnsearch": "soft weights α_ij"}
NO_ALIGNMENT = "no alignment:\nevery target word\nsees one vector\nc = [→h_S ; ←h_1]"
SENTENCES = {  # chosen by design, before any result: where each pair reorders most
    # adjectives after the noun in mirror order, as in the paper's Figure 3
    "en-fr": "The European economic area does not see the green houses of my friend.",
    # participle to the clause end across six words; subordinate verb and auxiliary last
    "en-de": "The teacher has seen the old house of my friend because the doctor has called "
             "the children.",
}
# The budget, in updates. The built-in pairs have about 50,000 training pairs: 625 updates an
# epoch at batch 80. Calibrated on RNNsearch's dev-BLEU curve on En->Fr at a constant Adam 3e-3
# (docs/story.md): learnt by 1,000 updates, then swinging between 73 and 99.7 from one
# validation to the next, so that patience alone never ran out in 5,000 updates. Hence the
# decay: the rate halves at every validation without a better dev BLEU, and a model stops after
# PATIENCE of them in a row, its rate by then a sixteenth of where it stood.
VALID_EVERY = 250   # updates between validations: 2.5 per epoch, so a curve has its shape
PATIENCE = 4        # validations without a better dev BLEU: 1,000 updates, 1.6 epochs
LR_DECAY = 0.5      # train.py --lr-decay: the rate's factor after each of them
VALID_SIZE = 200    # dev sentences translated (greedy) per validation, as train.py --valid-size
MAX_STEPS = 20000   # the cap in updates, 32 epochs: meant never to be reached (the table says
                    # so when it is)
BAND = 0            # the cursors' training band (train.py --band), 0: the exact marginal, as
                    # Bahdanau had it: a step 7.7 times RNNsearch's (docs/cursors.md). A band of
                    # 2 is cheaper (2.2 times, bench --variant rnnsearch cursors --band 2) but no
                    # neutral saving: a diagonal prior that changed what the cursors learnt on
                    # both pairs (docs/story.md, "Read with care")
TEST_SIZE = 1000    # test sentences translated: beam 5 with the cursors takes about 3 sentences
                    # a second here (bench --variant cursors), the others about 100
RECORD = "story.json"  # in each run directory: how its training went


def load_average() -> list[float]:
    """The machine's load averages over 1, 5 and 15 minutes (/proc/loadavg's first three)."""
    return [round(x, 2) for x in os.getloadavg()]


def story_settings(pair: str, variant: str, run: Path, args: argparse.Namespace,
                   train_args: list[str]) -> tuple[training.Settings, list[str]]:
    """The training settings of one model of the story: the story's, then train.py's options
    ``train_args`` over them (so a flag given wins); and the fields given by either, which a
    resumed run checks against its own."""
    story = dict(pair=pair, variant=variant, out=str(run), device=args.device,
                 valid_every=args.valid_every, patience=args.patience,
                 valid_size=args.valid_size, max_steps=args.max_steps,
                 epochs=args.max_steps,  # an epoch has >= 1 update: never binds first
                 lr_decay=args.lr_decay,
                 # the paper's initialisation and batches, not train.py's defaults for a user's
                 # corpus
                 init="paper", sort_pool=CHUNK_BATCHES)
    if args.minutes is not None:
        story["max_time"] = args.minutes
    if model.supports_band(variant) and args.band:
        story["band"] = args.band
    settings, given = training.parse(train_args, training.Settings(**story))
    return settings, [*story, *(k for k in given if k not in story)]


def train(settings: training.Settings, given: Collection[str], resume: bool = False,
          overwrite: bool = False) -> tuple[int, dict[str, Any] | None]:
    """Train one model with ``settings`` into ``settings.out`` and write its record; returns
    train.py's exit status and the record. A resumed run checks the fields ``given`` against
    its own. A new run replaces the run there with ``overwrite``
    (train.py --overwrite, and its record goes) and is refused by train.py over one without it.
    With ``resume``, continue the interrupted run there from its last checkpoint instead
    (train.py --resume, appending to its log): the record then says at which update it was
    resumed and counts the minutes of its log before that (to its last validation) in
    ``minutes``."""
    run = Path(settings.out)
    earlier = {}
    if resume:
        with doing("read", run / "last.json"):
            step = json.loads((run / "last.json").read_text(encoding="utf-8"))["step"]
        with doing("read", run / "log.jsonl"):
            log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()] \
                if (run / "log.jsonl").exists() else []
        earlier = dict(resumed_at=step, earlier_minutes=max(
            [r["elapsed"] / 60 for r in log if r["step"] <= step], default=0.0))
    elif overwrite:
        (run / RECORD).unlink(missing_ok=True)  # a record of the run this one replaces
    settings = dataclasses.replace(settings, resume=resume, overwrite=overwrite and not resume)
    load_start, t0 = load_average(), time.perf_counter()
    code, result = training.status(lambda: training.train(settings, given))
    if result is None:
        return code, None
    minutes = (time.perf_counter() - t0) / 60 + earlier.get("earlier_minutes", 0.0)
    record = dict(updates=result.updates, epochs=result.epochs, stop=result.stop,
                  minutes=minutes, best_dev_bleu=result.best_bleu, load_start=load_start,
                  load_end=load_average(), train_argv=settings.argv(), **earlier)
    write_atomic(run / RECORD, (json.dumps(record, indent=1) + "\n").encode("utf-8"))
    return 0, record


def read_record(run: Path) -> dict[str, Any] | None:
    """The story's record of a run's training, or None for a run without one (trained before
    the story kept records, by train.py directly, or interrupted)."""
    path = run / RECORD
    if not path.exists():
        return None
    with doing("read", path):
        return json.loads(path.read_text(encoding="utf-8"))


def summary_table(rows: list[tuple[str, dict[str, Any] | None, list[str]]],
                  columns: tuple[str, ...] = ("test BLEU",)) -> str:
    """The markdown table of one pair: per model (label, record, cells) its updates, epochs,
    why it stopped, wall minutes and load averages, then its ``cells`` under ``columns``."""
    lines = ["| model | updates | epochs | stopped because | minutes | load (1 min: start → "
             f"end; 15 min: end) | {' | '.join(columns)} |",
             "|---|---|---|---|---|---|" + "---|" * len(columns)]
    for label, r, cells in rows:
        if r is None:
            lines.append(f"| {label} | – | – | not recorded (no {RECORD}) | – | – | "
                         f"{' | '.join(cells)} |")
            continue
        load = (f"{r['load_start'][0]:.2f} → {r['load_end'][0]:.2f}; "
                f"{r['load_end'][2]:.2f}")
        stop = r["stop"] + (f" (resumed at {r['resumed_at']:,})" if "resumed_at" in r else "")
        lines.append(f"| {label} | {r['updates']:,} | {r['epochs']:.1f} | {stop} | "
                     f"{r['minutes']:.1f} | {load} | {' | '.join(cells)} |")
    return "\n".join(lines)


def length_table(curves: dict[str, list[tuple]],
                 cell: Callable[[tuple], str] = lambda row: f"{row[2]:.2f}") -> str:
    """The markdown table of BLEU by source length: one column per model (label -> rows of
    ``report.bleu_by_length``, or of ``bleu_by_length_interval``), each row shown by ``cell``."""
    buckets: dict[str, int] = {}
    for rows in curves.values():
        buckets.update({row[0]: row[1] for row in rows})
    by_bucket = {label: {row[0]: row for row in rows} for label, rows in curves.items()}
    lines = ["| source words | sentences | " + " | ".join(curves) + " |",
             "|---|---|" + "---|" * len(curves)]
    for name, n in buckets.items():
        cells = [cell(by_bucket[label][name]) if name in by_bucket[label] else "–"
                 for label in curves]
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tell(pair: str, args: argparse.Namespace, train_args: list[str]) -> int:
    """Train (or reuse) every model of ``ORDER`` on ``pair``, print their BLEU by source length
    and the pair's table, write ``results.md`` and draw the pair's three figures; returns an
    exit code."""
    out, figures = Path(args.out) / pair, Path(args.figures)
    records = {}
    for variant in ORDER:
        run = out / variant
        trained = checkpoint_exists(run, "best")
        record = read_record(run) if trained else None
        resume = args.resume and record is None and checkpoint_exists(run, "last")
        if trained and not args.retrain and not resume:
            records[variant] = record
            print(f"{pair} {variant}: reusing {run}"
                  f"{'' if record else f' (no {RECORD}: how it stopped is unknown)'}",
                  file=sys.stderr)
            continue
        print(f"{pair} {variant}: {'resuming' if resume else 'training into'} {run} until no "
              f"better dev BLEU in "
              f"{args.patience} validations (one every {args.valid_every} updates), at most "
              f"{args.max_steps} updates"
              f"{f' or {args.minutes:g} minutes' if args.minutes is not None else ''}",
              file=sys.stderr)
        code, records[variant] = train(
            *story_settings(pair, variant, run, args, train_args), resume, args.retrain)
        if code:
            return code
    paths = builtin_corpus(DEFAULT_CORPUS_CACHE, seed=1234, pair=pair)
    src_all = read_lines(paths["test.en"])[: args.test_size]
    ref_all = read_lines(paths[f"test.{target_language(pair)}"])[: args.test_size]
    curves, bleus, panels, n_test = {}, {}, [], 0
    for variant in ORDER:
        tr = Translator(out / variant, "best", args.device)
        keep = [k for k, s in enumerate(src_all) if len(tokenize(s)) <= tr.max_len]
        src, ref = [src_all[k] for k in keep], [ref_all[k] for k in keep]
        t0 = time.perf_counter()
        hyps = [hs[0][0] for hs in tr.translate(src, beam=args.beam)]
        rows = bleu_by_length(hyps, ref, src)
        curves[LABELS[variant]] = rows
        bleus[variant] = sacrebleu.corpus_bleu(hyps, [ref]).score
        n_test = len(src)
        print(f"\n{pair} {LABELS[variant]}: test BLEU {bleus[variant]:.2f} on {len(src)} "
              f"sentences (beam {args.beam}, {time.perf_counter() - t0:.0f} s to translate)")
        print(format_length_table(rows))
        _, _, weights, src_toks, tgt_toks = tr.translate([SENTENCES[pair]], beam=args.beam)[0][0]
        what = CONTEXTS[variant]
        if model.family(variant).posterior is not None and tgt_toks[-1:] != ["</s>"]:
            # cut short: no posterior given all of y, only the predictive alignment
            what = "predictive p(a_i = j | y_<i, x): unfinished"
        panels.append(Panel(f"{LABELS[variant]}\n{what}\ntest BLEU {bleus[variant]:.2f}",
                            weights, src_toks, tgt_toks,
                            NO_ALIGNMENT if weights is None else ""))
        if variant == "rnnsearch":
            search = (weights, src_toks, tgt_toks)
    table = summary_table([(LABELS[v], records[v], [f"{bleus[v]:.2f}"]) for v in ORDER])
    print(f"\n{pair}: {n_test} test sentences of at most {tr.max_len} tokens, beam {args.beam}\n"
          f"{table}")
    results = out / "results.md"
    write_atomic(results, (
        f"Built-in {pair}; each model trained until no better dev BLEU in {args.patience} "
        f"validations, one every {args.valid_every} updates on {args.valid_size} dev sentences "
        f"(at most {args.max_steps:,} updates"
        f"{f' or {args.minutes:g} minutes' if args.minutes is not None else ''}). Test BLEU "
        f"(sacrebleu 13a) on {n_test} test sentences of at most {tr.max_len} tokens, beam "
        f"{args.beam}.\n\n{table}\n\n{length_table(curves)}\n").encode())
    bleu_png, align_png = figures / f"bleu_by_length-{pair}.png", figures / f"alignment-{pair}.png"
    contexts_png = figures / f"four-contexts-{pair}.png"
    plot_bleu_by_length(curves, bleu_png, f"BLEU by source length, built-in {pair} test set")
    plot_attention(*search, align_png)
    plot_contexts(panels, contexts_png,
                  f"\"{SENTENCES[pair]}\" under each model; rows: the model's own translation "
                  f"(beam {args.beam})")
    print(f"\n{pair} RNNsearch alignment of: {SENTENCES[pair]}\n{text_heatmap(*search)}\n"
          f"{pair} tables: {results}\n{pair} figures: {bleu_png}, {align_png}, {contexts_png}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.story", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", default="en-fr", choices=(*PAIRS, "both"),
                    help="the built-in language pair, or both in turn")
    ap.add_argument("--valid-every", type=positive_int, default=VALID_EVERY,
                    help="updates between validations (default: %(default)s)")
    ap.add_argument("--patience", type=positive_int, default=PATIENCE,
                    help="stop a model after this many validations without a better dev BLEU "
                         "(default: %(default)s)")
    ap.add_argument("--lr-decay", type=factor, default=LR_DECAY,
                    help="multiply the learning rate by this after each validation without a "
                         "better dev BLEU (train.py --lr-decay; default: %(default)s)")
    ap.add_argument("--valid-size", type=positive_int, default=VALID_SIZE,
                    help="dev sentences translated at each validation (default: %(default)s)")
    ap.add_argument("--max-steps", type=positive_int, default=MAX_STEPS,
                    help="at most this many updates per model (default: %(default)s)")
    ap.add_argument("--minutes", type=positive_float,
                    help="also at most this many minutes of training per model (default: no "
                         "limit in time)")
    ap.add_argument("--out", type=output_dir, default="runs/story",
                    help="one run directory per pair and model")
    ap.add_argument("--figures", type=output_dir, default="docs", help="where the PNGs go")
    ap.add_argument("--retrain", action="store_true",
                    help="train even where a run exists, replacing it (its checkpoints, log "
                         "and record; train.py --overwrite)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the runs that have checkpoints but no record (interrupted) "
                         "from their last checkpoint, as train.py --resume, instead of reusing "
                         "them as they are")
    ap.add_argument("--band", type=non_negative_int, default=BAND,
                    help="train the cursors with emissions within this many positions of the "
                         "diagonal (train.py --band; 0: the exact marginal; default: "
                         "%(default)s)")
    ap.add_argument("--beam", type=beam_size, default=5)
    ap.add_argument("--test-size", type=positive_int, default=TEST_SIZE,
                    help="translate the first N test sentences (default: %(default)s)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    return ap


@reports_os_errors  # a figure or run that cannot be written, a full disk: one line
def main(argv: list[str] | None = None) -> int:
    args, train_args = build_parser().parse_known_args(argv)  # the rest goes to train.py as it is
    make_dir(args.figures)
    started = time.perf_counter()
    for pair in PAIRS if args.pair == "both" else (args.pair,):
        code = tell(pair, args, train_args)
        if code:
            return code
    print(f"\n{(time.perf_counter() - started) / 60:.1f} minutes in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
