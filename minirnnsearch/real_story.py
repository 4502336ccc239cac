"""The paper's Table 1 and Figures 2 and 3 on real prose, in one command, resumable model by
model.

    python -m minirnnsearch.data.prose --pair en-fr --out .cache/prose/en-fr   # the corpus
    python -m minirnnsearch.real_story --corpus .cache/prose/en-fr [--models NAME ...]

Trains the models of ``MODELS`` on the corpus's words, in that order (or the ones named), each
to its plateau: the settings of ``SETTINGS``, every one given explicitly, so a
change of train.py's defaults cannot reach these runs, and no cap in updates or epochs that a
run could reach first. A model already trained in ``OUT/NAME`` is reused; one interrupted
(checkpoints, no ``story.json`` record) is resumed from its last checkpoint, exactly.

Then it translates the whole test set with every trained model (beam 5; a source longer than
the model's training maximum is not cut: the paper's -30 models translate long sentences too),
keeping the translations in ``OUT/NAME/test-beam5.json`` for as long as ``best`` is the same,
and writes ``OUT/results.md``: the table (per model its seed, training maximum, updates, epochs,
why it stopped, wall minutes with the machine's load, test BLEU on all sentences and on those
without ``<unk>``: no word outside the model's vocabularies in the source or the reference, as
the paper's second column), and BLEU by source length with 95% bootstrap intervals. The figures:
``FIGURES/real-bleu_by_length-PAIR.png`` (Figure 2, one curve per model, the intervals as error
bars, the buckets' sizes under their names) and ``FIGURES/real-alignment-PAIR-K.png`` (Figure 3:
RNNsearch-50's alignments of the sentences ``figure3_sentences`` chooses). Models not trained
yet are left out of the report.

Each trained model's scores go to ``OUT/NAME/scores.json`` (test BLEU, without ``<unk>``, by
length with the intervals, and the test set's fingerprint). ``--kept DIR`` (for example
``docs/real-story-runs/en-fr``) holds models trained earlier, perhaps on another machine: a
directory ``DIR/NAME`` with the model's ``story.json`` and ``scores.json``. Such a model is
neither trained nor translated again: the table and Figure 2 take its kept scores, if they are
of this corpus's test set and beam; Figure 3 needs RNNsearch-50's checkpoint in ``OUT``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import sacrebleu

from .checkpoint import checkpoint_exists, read_meta
from .cli import beam_size, output_dir
from .data.io import read_lines
from .data.tokenize import tokenize
from .oserrors import doing, make_dir, reports_os_errors, write_atomic
from .report import bleu_by_length_interval, plot_attention, plot_bleu_by_length
from .settings import DATA_FILES, Settings
from .story import RECORD, length_table, read_record, summary_table, train
from .translation import Translator

# The settings of every model, fixed before the first run (docs/real-story.md says why each).
SETTINGS = dict(
    preset="small",       # E 128, H 256, A 256, L 128: the corpus has ~31,000 pairs, not 12M
    vocab_size=8000,      # words, the most frequent, the rest <unk>: 97.6% of the English and
                          # 96.8% of the French training tokens of en-fr (the paper: 30,000
                          # of each); the softmax's cost grows with it
    init="paper",         # appendix B.1
    optimizer="adam", lr=3e-3, lr_decay=0.5,  # the story's schedule: halve at every validation
    lr_decay_patience=0,  # without a better dev BLEU
    patience=4,           # stop after 4 in a row without a better dev BLEU
    valid_every=500,      # updates: 1.3 epochs of 390 batches
    valid_size=1000,      # the first 1,000 dev pairs (of 1,006 en-fr, 1,119 en-de), greedy
    clip=1.0,             # appendix B.2
    dropout=0.0,          # the paper's; and the cursors have none
    label_smoothing=0.0,  # the paper's; the cursors have none either
    batch_size=80, batch_tokens=0, sort_pool=20,  # appendix B.2: 20 batches sorted together
    epochs=100000,        # never reached: each run stops on its plateau
)


class Model(NamedTuple):
    name: str       # the run directory's name
    variant: str
    max_len: int    # training pairs of at most this many words (RNNsearch-50, -30)
    seed: int
    band: int = 0   # the cursors' training band


MODELS = (  # in the order trained: the core, its second seeds, the -30s, the other contexts
    Model("rnnsearch-50", "rnnsearch", 50, 1234),
    Model("encdec-50", "encdec", 50, 1234),
    Model("rnnsearch-50-seed1", "rnnsearch", 50, 1),
    Model("encdec-50-seed1", "encdec", 50, 1),
    Model("encdec-30", "encdec", 30, 1234),
    Model("rnnsearch-30", "rnnsearch", 30, 1234),
    Model("diagonal-50", "diagonal", 50, 1234),
    Model("cursors-band2-50", "cursors", 50, 1234, band=2),
)
BY_NAME = {m.name: m for m in MODELS}
LABELS = {"encdec": "RNNencdec", "rnnsearch": "RNNsearch", "diagonal": "diagonal",
          "cursors": "cursors (band 2)"}
FIGURE3_MODEL = "rnnsearch-50"
SCORES = "scores.json"  # a model's test scores, beside its record
# Figure 3's sentences, by a rule fixed before any model had translated: the first three test
# sentences, in the test file's order, of 20 to 30 English words that hold one of these English
# adjective (or noun) + noun pairs and, in the reference, its translation in the other order
# (the French adjective after its noun), each with another pair.
REORDERED = {"fr": (("graphical interface", "interface graphique"),
                    ("local network", "réseau local"), ("free software", "logiciel libre"),
                    ("hard disk", "disque dur"), ("virtual machine", "machine virtuelle"),
                    ("network interface", "interface réseau"),
                    ("security updates", "mises à jour de sécurité"))}
FIGURE3_WORDS = (20, 30)


def label(m: Model) -> str:
    """``RNNsearch-50``, ``RNNencdec-30 (seed 1)``: the paper's names."""
    return f"{LABELS[m.variant]}-{m.max_len}" + (f" (seed {m.seed})" if m.seed != 1234 else "")


def corpus_files(corpus: Path) -> dict[str, Path]:
    """The corpus's six files by role (train_src, train_tgt, dev_src, dev_tgt, test_src,
    test_tgt); ValueError, one line, if it is not one corpus of an en-LANG pair."""
    targets = sorted({p.suffix[1:] for p in corpus.glob("train.*")} - {"en", "tsv"})
    if len(targets) != 1:
        raise ValueError(f"{corpus}: expected train.en and one train.LANG (a corpus of "
                         "python -m minirnnsearch.data.prose), found "
                         f"{', '.join(p.name for p in sorted(corpus.glob('train.*'))) or 'none'}")
    files = {f"{split}_{side}": corpus / f"{split}.{lang}"
             for split in ("train", "dev", "test") for side, lang in (("src", "en"),
                                                                      ("tgt", targets[0]))}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ValueError(f"{missing[0]}: missing")
    return files


def train_settings(m: Model, run: Path, files: dict[str, Path], device: str) -> Settings:
    """The training settings of model ``m``: every one given."""
    return Settings(variant=m.variant, max_len=m.max_len, seed=m.seed, band=m.band,
                    out=str(run), device=device, quiet=True,
                    **{role: str(files[role]) for role in DATA_FILES}, **SETTINGS)


def kept_run(kept: Path | None, run: Path) -> Path | None:
    """``kept/NAME`` (NAME ``run``'s) if it holds a model's record and scores and ``run`` has no
    checkpoint of its own (an interrupted run there is resumed instead), else None."""
    if kept is None or checkpoint_exists(run, "last"):
        return None
    there = kept / run.name
    return there if (there / RECORD).is_file() and (there / SCORES).is_file() else None


def train_models(names: list[str], out: Path, files: dict[str, Path], device: str,
                 kept: Path | None = None) -> int:
    """Train, resume or reuse each model named (a model kept in ``kept`` and not in ``out`` is
    reused from there); an exit status."""
    for name in names:
        m, run = BY_NAME[name], out / name
        if read_record(run) is not None:
            print(f"{name}: reusing {run}", file=sys.stderr)
            continue
        there = kept_run(kept, run)
        if there is not None:
            print(f"{name}: reusing its scores kept in {there}", file=sys.stderr)
            continue
        resume = checkpoint_exists(run, "last")
        print(f"{name}: {'resuming' if resume else 'training into'} {run}", file=sys.stderr)
        # every setting given is checked against the run's own on resume
        given = ("variant", "max_len", "seed", "band", *DATA_FILES, *SETTINGS)
        code, record = train(train_settings(m, run, files, device), given, resume)
        if code:
            return code
        print(f"{name}: {record['stop']} after {record['updates']:,} updates "
              f"({record['epochs']:.1f} epochs); best dev BLEU {record['best_dev_bleu']:.2f}; "
              f"its record: {run / RECORD}", file=sys.stderr)
    return 0


def figure3_sentences(srcs: list[str], refs: list[str], lang: str, k: int = 3) -> list[int]:
    """The test sentences of Figure 3 (``REORDERED``'s rule): at most ``k`` indices."""
    chosen: list[int] = []
    used: set[str] = set()
    for n, (s, r) in enumerate(zip(srcs, refs, strict=True)):
        if len(chosen) == k:
            break
        if not FIGURE3_WORDS[0] <= len(s.split()) <= FIGURE3_WORDS[1]:
            continue
        for en, tr in REORDERED.get(lang, ()):
            if en not in used and en in s.lower() and tr in r.lower():
                chosen.append(n)
                used.add(en)
                break
    return chosen


def test_translations(tr: Translator, run: Path, srcs: list[str], beam: int) -> list[str]:
    """``tr``'s translations of ``srcs``, kept in ``run/test-beamB.json`` with the fingerprints
    of the checkpoint that made them and of the sources, and reused while both are the same."""
    fingerprint = read_meta(run, "best")["npz_sha256"]
    sources = hashlib.sha256("\n".join(srcs).encode("utf-8")).hexdigest()
    cache = run / f"test-beam{beam}.json"
    if cache.exists():
        with doing("read", cache):
            kept = json.loads(cache.read_text(encoding="utf-8"))
        if (kept.get("best_sha256"), kept.get("sources_sha256")) == (fingerprint, sources):
            return kept["hyps"]
    hyps = [hs[0][0] for hs in tr.translate(srcs, beam=beam)]
    write_atomic(cache, json.dumps(dict(best_sha256=fingerprint, sources_sha256=sources,
                                        hyps=hyps), ensure_ascii=False).encode("utf-8"))
    return hyps


def without_unk(tr: Translator, srcs: list[str], refs: list[str]) -> list[int]:
    """The sentences with no word outside ``tr``'s vocabularies, in source or reference."""
    return [n for n, (s, r) in enumerate(zip(srcs, refs, strict=True))
            if all(w in tr.src_vocab.index for w in tr.src_seg.encode(s))
            and all(w in tr.tgt_vocab.index for w in tr.tgt_seg.encode(r))]


def interval_cell(row: tuple) -> str:
    return f"{row[2]:.2f} ({row[3]:.1f}–{row[4]:.1f})"


def test_fingerprint(srcs: list[str], refs: list[str], beam: int) -> str:
    """What a model's scores are of: the test set, both sides, and the beam."""
    text = "\n".join(srcs) + "\0" + "\n".join(refs) + f"\0beam {beam}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def score(tr: Translator, run: Path, srcs: list[str], refs: list[str], beam: int
          ) -> dict[str, Any]:
    """The test scores of the model in ``run``, also written to ``run/scores.json``: test BLEU,
    BLEU without ``<unk>`` (None for no such sentence) and their number, BLEU by length with
    intervals, and ``test_fingerprint``."""
    hyps = test_translations(tr, run, srcs, beam)
    keep = without_unk(tr, srcs, refs)
    clean = None
    if keep:
        clean = sacrebleu.corpus_bleu([hyps[k] for k in keep], [[refs[k] for k in keep]]).score
    scores = dict(test=test_fingerprint(srcs, refs, beam),
                  bleu=sacrebleu.corpus_bleu(hyps, [refs]).score, no_unk_bleu=clean,
                  no_unk_sentences=len(keep),
                  by_length=[list(row) for row in bleu_by_length_interval(hyps, refs, srcs)])
    write_atomic(run / SCORES, json.dumps(scores, indent=1).encode("utf-8"))
    return scores


def read_scores(run: Path, srcs: list[str], refs: list[str], beam: int) -> dict[str, Any]:
    """The scores kept in ``run/scores.json``; ValueError, one line, if they are of another test
    set or beam."""
    path = run / SCORES
    with doing("read", path):
        text = path.read_text(encoding="utf-8")
    try:
        scores = json.loads(text)
        fields = (scores["test"], scores["bleu"], scores["no_unk_bleu"],
                  scores["no_unk_sentences"], scores["by_length"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: not the scores of a model (unreadable JSON or a field "
                         "missing)") from None
    if fields[0] != test_fingerprint(srcs, refs, beam):
        raise ValueError(f"{path}: scores of another test set or beam than this corpus's "
                         f"with --beam {beam}")
    return scores


def report(out: Path, files: dict[str, Path], figures: Path, beam: int, device: str,
           kept: Path | None = None) -> int:
    """Translate the test set with every trained model (or take the scores of those kept in
    ``kept``), write ``out/results.md`` and draw the figures (see the module docstring); an exit
    status."""
    srcs, refs = read_lines(files["test_src"]), read_lines(files["test_tgt"])
    lang = files["test_tgt"].suffix[1:]
    rows, curves, no_unk_sizes, from_kept = [], {}, set(), []
    search = None
    longest = max(len(tokenize(s)) for s in srcs)  # translated whole, however long
    for m in MODELS:
        run = out / m.name
        record = read_record(run)
        if record is not None:
            tr = Translator(run, "best", device, max_len=longest)
            scores = score(tr, run, srcs, refs, beam)
            if m.name == FIGURE3_MODEL:
                search = tr
        elif (there := kept_run(kept, run)) is not None:
            record = read_record(there)
            try:
                scores = read_scores(there, srcs, refs, beam)
            except ValueError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            from_kept.append(label(m))
        else:
            continue
        no_unk_sizes.add(scores["no_unk_sentences"])
        clean = "–" if scores["no_unk_bleu"] is None else f"{scores['no_unk_bleu']:.2f}"
        rows.append((m, record, scores["bleu"], clean))
        curves[label(m)] = [tuple(row) for row in scores["by_length"]]
        print(f"{label(m)}: test BLEU {scores['bleu']:.2f}, {clean} without <unk> "
              f"({scores['no_unk_sentences']} sentences)", file=sys.stderr)
    if not rows:
        print(f"error: {out}: no trained model to report on", file=sys.stderr)
        return 2
    table = summary_table([(label(m), r, [str(m.seed), str(m.max_len), f"{b:.2f}", c])
                           for m, r, b, c in rows],
                          ("seed", "max len", "test BLEU", "test BLEU, no <unk>"))
    kept_note = (f" Scores kept in {kept} (trained earlier, not translated again): "
                 f"{', '.join(from_kept)}." if from_kept else "")
    text = (f"{files['test_src'].parent.name}: {len(srcs)} test sentences, beam {beam}; "
            f"without <unk>: {', '.join(map(str, sorted(no_unk_sizes)))} sentences (it depends "
            "on the model's vocabularies). BLEU by length: in brackets its 95% bootstrap "
            f"interval.{kept_note}\n\n{table}\n\n{length_table(curves, interval_cell)}\n")
    make_dir(out)  # none there when every model is kept
    write_atomic(out / "results.md", text.encode("utf-8"))
    print(text)
    make_dir(figures)
    pair = f"en-{lang}"
    plot_bleu_by_length(curves, figures / f"real-bleu_by_length-{pair}.png",
                        f"BLEU by source length, real {pair} test set (95% intervals)")
    if search is not None:
        for k, n in enumerate(figure3_sentences(srcs, refs, lang), start=1):
            _, _, weights, src_toks, tgt_toks = search.translate([srcs[n]], beam=beam)[0][0]
            plot_attention(weights, src_toks, tgt_toks,
                           figures / f"real-alignment-{pair}-{k}.png")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.real_story", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True,
                    help="a corpus of python -m minirnnsearch.data.prose (train, dev, test)")
    ap.add_argument("--out", type=output_dir, help="one run directory per model (default: "
                    "runs/real/NAME, NAME the corpus directory's name)")
    ap.add_argument("--models", nargs="+", choices=tuple(BY_NAME), default=list(BY_NAME),
                    help="train only these, in this order (default: all of MODELS)")
    ap.add_argument("--figures", type=output_dir, default="docs", help="where the PNGs go")
    ap.add_argument("--kept", help="directory of models trained earlier, DIR/NAME with their "
                    "story.json and scores.json (e.g. docs/real-story-runs/en-fr): such a model "
                    "not in --out is reported from its kept scores, not trained again")
    ap.add_argument("--beam", type=beam_size, default=5)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    return ap


@reports_os_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    corpus = Path(args.corpus)
    try:
        files = corpus_files(corpus)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out or Path("runs/real") / corpus.name)
    kept = Path(args.kept) if args.kept else None
    if kept is not None and not kept.is_dir():
        print(f"error: --kept {kept}: no such directory", file=sys.stderr)
        return 2
    code = train_models(args.models, out, files, args.device, kept)
    return code or report(out, files, Path(args.figures), args.beam, args.device, kept)


if __name__ == "__main__":
    sys.exit(main())
