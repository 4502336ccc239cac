"""The paper's figures: BLEU against sentence length (Fig. 2) and alignment heatmaps (Fig. 3),
as tables and terminal pictures here and as PNGs through matplotlib (an optional extra); and the
story's models' ways of choosing the context, side by side (``plot_contexts``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
import sacrebleu

from .oserrors import write_atomic

BUCKET = 10  # source words per length bucket: 0-10, 10-20, ...
SHADES = " ░▒▓█"


def bleu_by_length(hyps: list[str], refs: list[str], srcs: list[str]
                   ) -> list[tuple[str, int, float]]:
    """Corpus BLEU of the sentences whose source has 0-10, 10-20, ... words (whitespace
    words of the raw source, upper bound inclusive): [(bucket, sentences, BLEU)]."""
    buckets: dict[int, list[int]] = {}
    for k, s in enumerate(srcs):
        n = len(s.split())
        buckets.setdefault(max(0, (n - 1) // BUCKET), []).append(k)
    rows = []
    for b in sorted(buckets):
        idx = buckets[b]
        score = sacrebleu.corpus_bleu([hyps[k] for k in idx], [[refs[k] for k in idx]]).score
        rows.append((f"{b * BUCKET}-{(b + 1) * BUCKET}", len(idx), score))
    return rows


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


def plot_bleu_by_length(curves: dict[str, list[tuple[str, int, float]]], path: str | Path,
                        title: str = "BLEU by source sentence length") -> None:
    """One line per model (label -> bucket rows), the paper's Figure 2."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, rows in curves.items():
        ax.plot([r[0] for r in rows], [r[2] for r in rows], marker="o", label=label)
    ax.set_xlabel("source sentence length (words)")
    ax.set_ylabel("BLEU")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(plt, fig, path)


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
