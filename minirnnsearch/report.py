"""The paper's figures: BLEU against sentence length (Fig. 2) and alignment heatmaps (Fig. 3),
as tables and terminal pictures here and as PNGs through matplotlib (an optional extra); the
story's models' ways of choosing the context, side by side (``plot_contexts``); and runs' dev
BLEU against updates, from their ``log.jsonl``:

    python -m minirnnsearch.report RUN [RUN ...] --png PATH [--label NAME]... [--title T]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import sacrebleu

from .data.io import DataError, read_lines
from .oserrors import reports_os_errors, write_atomic

BUCKET = 10  # source words per length bucket: 0-10, 10-20, ...
SHADES = " ░▒▓█"


def length_buckets(srcs: list[str]) -> dict[str, list[int]]:
    """The sentences (indices) whose source has 0-10, 10-20, ... words (whitespace words of
    the raw source, upper bound inclusive), by bucket name, shortest first; empty buckets left
    out."""
    buckets: dict[int, list[int]] = {}
    for k, s in enumerate(srcs):
        buckets.setdefault(max(0, (len(s.split()) - 1) // BUCKET), []).append(k)
    return {f"{b * BUCKET}-{(b + 1) * BUCKET}": buckets[b] for b in sorted(buckets)}


def bleu_by_length(hyps: list[str], refs: list[str], srcs: list[str]
                   ) -> list[tuple[str, int, float]]:
    """Corpus BLEU of each bucket of ``length_buckets``: [(bucket, sentences, BLEU)]."""
    return [(name, len(idx),
             sacrebleu.corpus_bleu([hyps[k] for k in idx], [[refs[k] for k in idx]]).score)
            for name, idx in length_buckets(srcs).items()]


def sentence_stats(hyps: list[str], refs: list[str]) -> np.ndarray:
    """Each sentence's BLEU statistics (sacrebleu 13a): matched and total n-grams for n = 1-4,
    hypothesis and reference length, (N, 10) integers. Summed over sentences they are the
    corpus's, so ``stats_bleu`` of the sum is corpus BLEU."""
    bleu = sacrebleu.BLEU(tokenize="13a", effective_order=True)
    rows = []
    for h, r in zip(hyps, refs, strict=True):
        s = bleu.sentence_score(h, [r])
        rows.append([*s.counts, *s.totals, s.sys_len, s.ref_len])
    return np.array(rows, dtype=np.int64).reshape(-1, 10)


def stats_bleu(total: np.ndarray) -> float:
    """Corpus BLEU from summed statistics (``sentence_stats``), as ``sacrebleu.corpus_bleu``."""
    return sacrebleu.BLEU.compute_bleu(correct=total[:4].tolist(), total=total[4:8].tolist(),
                                       sys_len=int(total[8]), ref_len=int(total[9]),
                                       smooth_method="exp").score


def bootstrap_interval(stats: np.ndarray, samples: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """The ``level`` interval of corpus BLEU over ``samples`` resamplings of the sentences
    (rows of ``stats``) with replacement: the percentiles around its middle."""
    rng = np.random.default_rng(seed)
    n = len(stats)
    scores = [stats_bleu(stats[rng.integers(0, n, n)].sum(axis=0)) for _ in range(samples)]
    low, high = np.percentile(scores, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def bleu_by_length_interval(hyps: list[str], refs: list[str], srcs: list[str],
                            samples: int = 1000, seed: int = 0
                            ) -> list[tuple[str, int, float, float, float]]:
    """``bleu_by_length`` with each bucket's 95% bootstrap interval: [(bucket, sentences, BLEU,
    low, high)]."""
    stats = sentence_stats(hyps, refs)
    return [(name, len(idx), stats_bleu(stats[idx].sum(axis=0)),
             *bootstrap_interval(stats[idx], samples, seed))
            for name, idx in length_buckets(srcs).items()]


def format_length_table(rows: list[tuple[str, int, float]]) -> str:
    lines = ["source words  sentences   BLEU"]
    lines += [f"{name:>12}  {n:>9}  {score:5.2f}" for name, n, score in rows]
    return "\n".join(lines)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("error: figures need matplotlib: pip install -e \".[plot]\"") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Draw ``fig`` in the format of ``path``'s suffix (PNG without one), with ``metadata``,
    and write it whole (``oserrors.write_atomic``: matplotlib's own writing names no file when
    it fails)."""
    image = io.BytesIO()
    try:
        fig.savefig(image, format=Path(path).suffix.lstrip(".") or "png", dpi=120,
                    metadata=metadata)
    finally:
        plt.close(fig)
    write_atomic(path, image.getvalue())


def plot_bleu_by_length(curves: dict[str, list[tuple]], path: str | Path,
                        title: str = "BLEU by source sentence length") -> None:
    """One line per model (label -> bucket rows), the paper's Figure 2. Rows of
    ``bleu_by_length_interval`` draw each bucket's interval as an error bar, and the buckets'
    sizes under their names."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, rows in curves.items():
        x, y = [r[0] for r in rows], [r[2] for r in rows]
        if all(len(r) == 5 for r in rows):
            x = [f"{r[0]}\nn={r[1]}" for r in rows]
            err = [[r[2] - r[3] for r in rows], [r[4] - r[2] for r in rows]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
        else:
            ax.plot(x, y, marker="o", label=label)
    _save_lines(plt, fig, ax, "source sentence length (words)", "BLEU", title, path)


def _save_lines(plt, fig, ax, xlabel: str, ylabel: str, title: str, path: str | Path) -> None:
    """A figure of labelled lines: axes' labels, title, grid and legend; then ``_save``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(plt, fig, path)


def dev_curve(run: str | Path) -> list[tuple[int, float]]:
    """(updates, dev BLEU) of every validation in ``run``'s ``log.jsonl``, in order; DataError
    naming the file, and the line, for a missing log, a line without an update count (a whole
    number) and a finite dev BLEU, an update count not above the line before's (the log of
    more than one run: train.py appends to it), or a log without any line."""
    path = Path(run) / "log.jsonl"
    points: list[tuple[int, float]] = []
    for n, line in enumerate(read_lines(path), start=1):
        try:
            record = json.loads(line)
            step, bleu = record["step"], record["dev_bleu"]
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}:{n}: not a validation record of train.py "
                            f"({type(e).__name__}: {e})") from None
        if (type(step) is not int or isinstance(bleu, bool)
                or not isinstance(bleu, int | float) or not math.isfinite(bleu)):
            raise DataError(f"{path}:{n}: not a validation record of train.py (step {step!r}, "
                            f"dev_bleu {bleu!r})")
        if points and step <= points[-1][0]:
            raise DataError(f"{path}:{n}: update {step} after update {points[-1][0]}: the log "
                            "of more than one run (train.py appends to it)")
        points.append((step, float(bleu)))
    if not points:
        raise DataError(f"{path}: no validation in it")
    return points


def plot_dev_bleu(curves: dict[str, list[tuple[int, float]]], path: str | Path,
                  title: str = "Dev BLEU against updates") -> None:
    """One line per run (label -> (updates, dev BLEU) points), its best point marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, points in curves.items():
        line, = ax.plot(*zip(*points, strict=True), label=label)
        best = max(points, key=lambda p: p[1])
        ax.plot(*best, marker="o", color=line.get_color())
    _save_lines(plt, fig, ax, "updates", "dev BLEU (greedy)", title, path)


def plot_attention(weights: np.ndarray, src: list[str], tgt: list[str], path: str | Path
                   ) -> None:
    """The paper's Figure 3: weights (len(tgt), len(src)) in grey scale, white = 1."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(0.45 * len(src) + 1.5, 0.45 * len(tgt) + 1.5))
    ax.imshow(weights, cmap="gray", vmin=0.0, vmax=1.0, aspect="equal")
    ax.set_xticks(range(len(src)), src, rotation=90)
    ax.set_yticks(range(len(tgt)), tgt)
    ax.xaxis.tick_top()
    fig.tight_layout()
    _save(plt, fig, path)


class Panel(NamedTuple):
    """One model's alignment of one sentence, for ``plot_contexts``."""

    title: str
    weights: np.ndarray | None   # (len(tgt), len(src)); None: the model has no alignment
    src: list[str]               # source tokens, across
    tgt: list[str]               # target tokens, down
    note: str = ""               # written inside a panel without weights


def plot_contexts(panels: list[Panel], path: str | Path, title: str) -> None:
    """Several models' alignments side by side, one panel each, in plot_attention's grey scale
    (white = 1), all panels on the same grid of cells: pale blue where a panel has no cell (below
    a shorter translation; all of a panel without weights, which shows its note). The PNG's
    metadata carries the title (Title) and the panels' titles, one a line (Description)."""
    for p in panels:
        if p.weights is not None and p.weights.shape != (len(p.tgt), len(p.src)):
            raise ValueError(f"panel {p.title.splitlines()[0]!r}: weights of shape "
                             f"{p.weights.shape} for {len(p.tgt)} target and {len(p.src)} "
                             "source tokens")
    plt = _pyplot()
    width = max(len(p.src) for p in panels)
    height = max(len(p.tgt) for p in panels)
    fig, axes = plt.subplots(1, len(panels), squeeze=False, layout="constrained",
                             figsize=(len(panels) * (0.3 * width + 1.6), 0.3 * height + 2.4))
    for ax, p in zip(axes[0], panels, strict=True):
        if p.weights is None:
            ax.text((width - 1) / 2, (height - 1) / 2, p.note, ha="center", va="center",
                    fontsize=8)
        else:
            ax.imshow(p.weights, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        ax.set_aspect("equal")
        ax.set_facecolor("#dde6f0")
        ax.set_xticks(range(len(p.src)), p.src, rotation=90, fontsize=7)
        ax.set_yticks(range(len(p.tgt)), p.tgt, fontsize=7)
        ax.xaxis.tick_top()
        ax.set_xlabel(p.title, fontsize=8)
    fig.suptitle(title, fontsize=9)
    _save(plt, fig, path, {"Title": title, "Description": "\n".join(p.title for p in panels)})


def text_heatmap(weights: np.ndarray, src: list[str], tgt: list[str]) -> str:
    """A terminal heatmap: source words across (written vertically), target words down,
    shades ' ░▒▓█' by weight, two characters per source word."""
    width = max((len(t) for t in tgt), default=0)
    height = max((len(s) for s in src), default=0)
    lines = []
    for r in range(height):  # the source words, top to bottom
        lines.append(" " * (width + 1) + "".join(
            (s[r] if r < len(s) else " ") + " " for s in src))
    for t, row in zip(tgt, weights, strict=True):
        cells = "".join(SHADES[min(len(SHADES) - 1, int(w * len(SHADES)))] * 2 for w in row)
        lines.append(f"{t:>{width}} {cells}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Runs' dev BLEU against updates, from the log.jsonl "
                                             "of each run directory, as a PNG and a table.")
    ap.add_argument("runs", nargs="+", metavar="RUN", help="run directories of train.py")
    ap.add_argument("--png", required=True, help="the figure to write (a .png file)")
    ap.add_argument("--label", action="append",
                    help="one per run, in order (default: the run directories' names)")
    ap.add_argument("--title", default="Dev BLEU against updates")
    return ap


@reports_os_errors
def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    labels = args.label or [Path(r).resolve().name for r in args.runs]
    if len(labels) != len(args.runs):
        ap.error(f"{len(labels)} --label for {len(args.runs)} runs: give one per run or none")
    if len(set(labels)) != len(labels):
        ap.error(f"two runs with the same label ({', '.join(labels)}): give each its own "
                 "--label")
    if any(not label.strip() or label.startswith("_") for label in labels):
        ap.error("a label is empty or starts with '_' (matplotlib would leave it out)")
    if Path(args.png).suffix.lower() != ".png":
        ap.error(f"--png {args.png}: name a .png file")
    _pyplot()  # matplotlib missing: say so before reading anything
    try:
        curves = {label: dev_curve(run) for label, run in zip(labels, args.runs, strict=True)}
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    width = max(len(label) for label in labels)
    print(f"{'run':<{width}}  validations  last update  best dev BLEU  at update")
    for label, points in curves.items():
        step, bleu = max(points, key=lambda p: p[1])
        print(f"{label:<{width}}  {len(points):>11}  {points[-1][0]:>11}  {bleu:>13.2f}  "
              f"{step:>9}")
    plot_dev_bleu(curves, args.png, args.title)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
