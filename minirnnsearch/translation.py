"""Translating with a trained run: ``translate.py`` is the command-line front end.

Input lines are tokenised like the training data, decoded by beam search in batches sorted by
length, and written detokenised in input order; an empty input line gives an empty output line.
A line longer than the training maximum (``--max-len`` of the run) is cut to it, with a warning
naming the line.

A file (``--input``) is read whole and all its lines sorted by length into batches. Standard
input is translated as it arrives, so that translate.py answers a person typing and serves as a
filter in a pipeline: the lines that have arrived (at most ``STDIN_POOL`` batches' worth) are
sorted and translated together and their translations written and flushed, then the next
(``data.io.arriving_lines``). A file piped in arrives all at once and is decoded in full,
sorted groups. What each option does then is in ``STDIN_OPTIONS`` (the end of ``--help``).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import numpy as np
import sacrebleu
from tqdm import tqdm

from . import decode, model
from .backend import DeviceError, get_backend
from .checkpoint import CheckpointError, load_checkpoint
from .cli import beam_size, non_negative_float, output_dir, output_file, positive_int
from .data.io import DataError, arriving_lines, read_lines
from .data.subword import segmenters
from .data.vocab import UNK, Vocab
from .oserrors import append_line, make_dir, reports_os_errors, write_atomic
from .report import (
    bleu_by_length,
    format_length_table,
    plot_attention,
    plot_bleu_by_length,
    text_heatmap,
)

# Reading standard input, the lines that have arrived are translated together, at most this
# many batches of them (--batch-size lines each) sorted by length as a file's are: a file piped
# in arrives at once, and its batches are then about as little padded as with --input
STDIN_POOL = 8

STDIN_OPTIONS = f"""\
Standard input (no --input) is translated as it arrives: each line as soon as
it is complete, with the lines that have arrived by then (at most {STDIN_POOL} batches
of them, sorted by length); their translations are written and flushed at
once, in input order. So translate.py answers a person typing, and works as a
filter in a pipeline. Reading standard input:
  --output          is emptied at the start, and each group of translations is
                    appended to it as it is made (with --input: written whole
                    at the end, or not at all)
  --nbest           its lines come with each group, i counting input lines
  --show-attention, --attention-png
                    come with each group, numbered by input line
  --unk-replace     as with --input: each line on its own
  --ref, --plot-lengths
                    need every line: BLEU, its table and its figure come when
                    the input ends (and the line counts are compared then)
  no progress bar"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="translate.py",
                                 description="Translate with a trained RNNsearch run.",
                                 epilog=STDIN_OPTIONS,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="run directory written by train.py")
    ap.add_argument("--checkpoint", default="best", choices=("best", "last"))
    ap.add_argument("--input", help="source text, one sentence per line, read whole and sorted "
                                    "by length into batches (default: standard input, "
                                    "translated as it arrives)")
    ap.add_argument("--output", type=output_file, help="where translations go (default: stdout)")
    ap.add_argument("--beam", type=beam_size, default=5, help="beam size (1 = greedy)")
    ap.add_argument("--alpha", type=non_negative_float, default=1.0,
                    help="length normalisation: score / length^alpha (0 = raw log-probability)")
    ap.add_argument("--nbest", type=positive_int, default=1,
                    help="write the N best as 'i ||| hypothesis ||| score' (Moses/Nematus)")
    ap.add_argument("--batch-size", type=positive_int, default=32,
                    help="sentences decoded together")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    ap.add_argument("--ref", help="reference translations: print sacrebleu's BLEU and a table "
                                  "of BLEU by source length (the paper's Figure 2)")
    ap.add_argument("--plot-lengths", metavar="PNG", type=output_file,
                    help="draw BLEU by length (needs --ref)")
    ap.add_argument("--unk-replace", action="store_true",
                    help="replace each <unk> by the source word it attends to most (word-level "
                         "runs with an alignment; a subword run has no <unk> to replace)")
    ap.add_argument("--show-attention", action="store_true",
                    help="print each sentence's alignment as a heatmap on stderr")
    ap.add_argument("--attention-png", metavar="DIR", type=output_dir,
                    help="write each sentence's alignment as a PNG (the paper's Figure 3)")
    ap.add_argument("--quiet", action="store_true",
                    help="no progress bar (there is one with --input only)")
    return ap


class Translator:
    """A trained model loaded from a run directory, ready to translate text."""

    def __init__(self, run_dir: str | Path, checkpoint: str = "best", device: str = "auto",
                 max_len: int | None = None) -> None:
        """The run's model; a source line of more than ``max_len`` tokens is cut to it (None:
        the run's training maximum, its --max-len)."""
        params, _, meta = load_checkpoint(run_dir, checkpoint)
        where = Path(run_dir) / f"{checkpoint}.json"
        try:
            self.cfg = model.Config.from_dict(meta["config"])
            self.src_vocab = Vocab.from_dict(meta["src_vocab"])
            self.tgt_vocab = Vocab.from_dict(meta["tgt_vocab"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{where}: incomplete ({type(e).__name__}: {e})") from None
        if (len(self.src_vocab), len(self.tgt_vocab)) != (self.cfg.src_vocab, self.cfg.tgt_vocab):
            raise CheckpointError(
                f"{where}: vocabularies of {len(self.src_vocab)}/{len(self.tgt_vocab)} words do "
                f"not match the model's {self.cfg.src_vocab}/{self.cfg.tgt_vocab}")
        shapes = {k: v.shape for k, v in params.items()}
        if shapes != model.param_shapes(self.cfg):
            raise CheckpointError(f"{where}: the parameters do not match the configuration")
        self.max_len = int(meta.get("max_len", 50)) if max_len is None else max_len
        self.src_seg, self.tgt_seg = segmenters(run_dir, meta.get("subword"))
        self.backend = get_backend(device)
        self.packed = model.pack_params({k: self.backend.asarray(v) for k, v in params.items()})

    def translate(self, lines: list[str], beam: int = 5, alpha: float = 1.0, nbest: int = 1,
                  batch_size: int = 32, unk_replace: bool = False, progress: bool = False,
                  name: str = "<stdin>", first_line: int = 1
                  ) -> list[list[tuple[str, float, np.ndarray, list[str], list[str]]]]:
        """Per input line, its n-best list of (text, score, attention, source tokens, target
        tokens); an empty line gives [("", 0.0, empty, [], [])]. A warning names a line by
        ``name`` and its number there, ``first_line`` for ``lines[0]``."""
        toks = [self.src_seg.encode(line) for line in lines]
        for n, t in enumerate(toks, start=first_line):
            if len(t) > self.max_len:
                print(f"warning: {name}:{n}: {len(t)} tokens, cut to the trained maximum of "
                      f"{self.max_len}", file=sys.stderr)
                toks[n - first_line] = t[: self.max_len]
        out: list[list] = [[("", 0.0, np.zeros((0, 0)), [], [])] for _ in lines]
        keep = [k for k, t in enumerate(toks) if t]
        ids = [self.src_vocab.encode(toks[k]) for k in keep]
        bar = tqdm(total=len(keep), disable=not progress, unit="sent", file=sys.stderr)
        hyps = decode.decode_sentences(self.packed, self.cfg, self.backend, ids, batch_size,
                                       beam, alpha, nbest, on_batch=bar.update)
        bar.close()
        # the figure: the cursors' posterior given all of y (the others' rows stay as they are)
        hyps = decode.smooth_alignments(self.packed, self.cfg, self.backend, ids, hyps,
                                        batch_size)
        for k, hs in zip(keep, hyps, strict=True):
            out[k] = [self._finish(h, toks[k], unk_replace) for h in hs]
        return out

    def _finish(self, h: decode.Hypothesis, src: list[str], unk_replace: bool) -> tuple:
        words = self.tgt_vocab.decode(h.tokens)
        if unk_replace and h.attention is not None and self.tgt_seg.kind == "word":
            # source position of the largest weight per output word; </s> keeps the <unk>
            best = h.attention[: len(words)].argmax(axis=1)
            words = [src[j] if w == UNK and j < len(src) else w
                     for w, j in zip(words, best, strict=True)]
        shown = [self.tgt_seg.show(w) for w in ([*words, "</s>"] if h.finished else words)]
        return (self.tgt_seg.decode(words), h.score,
                None if h.attention is None else h.attention[: len(shown)],
                [self.src_seg.show(w) for w in [*src, "</s>"]], shown)


@reports_os_errors  # a file that cannot be read or written, a full disk or stdout: one line
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.nbest > args.beam:
            raise DataError(f"--nbest {args.nbest} is more than --beam {args.beam}")
        if args.plot_lengths and not args.ref:
            raise DataError("--plot-lengths needs --ref")
        name, lines = ("<stdin>", None) if args.input is None else (args.input,
                                                                     read_lines(args.input))
        refs = read_lines(args.ref) if args.ref else None
        if refs is not None and lines is not None:
            same_count(refs, args.ref, lines, name)
        tr = Translator(args.model, args.checkpoint, args.device)
        aligned = model.family(tr.cfg).has_alignment
        if args.unk_replace and (tr.tgt_seg.kind == "subword" or not aligned):
            why = ("its subword model spells rare words in pieces instead of <unk>"
                   if tr.tgt_seg.kind == "subword"
                   else f"an {tr.cfg.variant} model has no alignment")
            print(f"note: --unk-replace does nothing for {args.model}: {why}", file=sys.stderr)
        if (args.show_attention or args.attention_png) and not aligned:
            raise DataError(f"{args.model}: an {tr.cfg.variant} model has no alignment to show")
        if args.attention_png:
            make_dir(args.attention_png)
        if lines is None:  # standard input: each group of lines translated as it arrives
            groups = arriving_lines(sys.stdin.fileno(), name, STDIN_POOL * args.batch_size)
            if args.output:
                write_atomic(args.output, b"")  # then each group is appended to it
        else:  # a file: all its lines sorted by length into batches
            groups = [lines]
        sources: list[str] = []  # every line so far, and its best translation
        best: list[str] = []
        for group in groups:
            results = tr.translate(group, args.beam, args.alpha, args.nbest, args.batch_size,
                                   args.unk_replace, progress=lines is not None and not args.quiet,
                                   name=name, first_line=len(sources) + 1)
            write(args, translations(results, args.nbest, len(sources)), whole=lines is not None)
            show_attention(args, results, group, len(sources))
            sources += group
            best += [hs[0][0] for hs in results]
        if refs is not None:
            same_count(refs, args.ref, sources, name)
            score(best, refs, sources, args.plot_lengths, tr.cfg.variant)
    except (DataError, CheckpointError, DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C, typing at a terminal: what was translated stands
        return 128 + signal.SIGINT
    return 0


def same_count(refs: list[str], ref_name: str, lines: list[str], name: str) -> None:
    if len(refs) != len(lines):
        raise DataError(f"{ref_name} has {len(refs)} lines but {name} has {len(lines)}")


def translations(results: list[list[tuple]], nbest: int, first: int) -> list[str]:
    """The output lines of ``results``: the best translation of each input line, or with
    ``nbest`` above 1 'i ||| hypothesis ||| score', i counting input lines from ``first``."""
    if nbest == 1:
        return [hs[0][0] for hs in results]
    return [f"{i} ||| {h[0]} ||| {h[1]:.4f}" for i, hs in enumerate(results, first) for h in hs]


def write(args: argparse.Namespace, text: list[str], whole: bool) -> None:
    """``text`` to stdout, flushed, or to --output: ``whole``, the file written at once, else
    appended (a group of lines from standard input)."""
    data = "".join(t + "\n" for t in text)
    if args.output is None:
        sys.stdout.write(data)
        sys.stdout.flush()
    elif whole:
        write_atomic(args.output, data.encode("utf-8"))
    else:
        append_line(args.output, data[:-1])  # the group's lines in one write


def show_attention(args: argparse.Namespace, results: list[list[tuple]], lines: list[str],
                   first: int) -> None:
    """--show-attention and --attention-png for each line of ``lines``, numbered from
    ``first``."""
    if not (args.show_attention or args.attention_png):
        return
    for i, (line, hs) in enumerate(zip(lines, results, strict=True), first):
        _, _, weights, src, tgt = hs[0]
        if not src:
            continue
        if args.show_attention:
            print(f"\n[{i}] {line}\n{text_heatmap(weights, src, tgt)}", file=sys.stderr)
        if args.attention_png:
            plot_attention(weights, src, tgt, Path(args.attention_png) / f"{i:05d}.png")


def score(hyps: list[str], refs: list[str], lines: list[str], plot: str | None,
          variant: str) -> None:
    """sacrebleu's BLEU and the table of BLEU by source length on stderr; the table drawn in
    ``plot``, if given."""
    bleu = sacrebleu.BLEU(tokenize="13a")
    print(f"BLEU = {bleu.corpus_score(hyps, [refs]).score:.2f}  {bleu.get_signature()}",
          file=sys.stderr)
    rows = bleu_by_length(hyps, refs, lines)
    print(format_length_table(rows), file=sys.stderr)
    if plot:
        plot_bleu_by_length({variant: rows}, plot)
