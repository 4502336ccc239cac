"""The paper's Table 1 and Figure 2 on real prose, in one command, resumable model by model.

    python -m minirnnsearch.data.prose --pair en-fr --out .cache/prose/en-fr   # the corpus
    python -m minirnnsearch.real_story --corpus .cache/prose/en-fr [--models NAME ...]

Trains the models of ``MODELS`` on the corpus's words, in that order (or the ones named), each
to its plateau: the settings of ``SETTINGS``, every one passed to train.py explicitly, so a
change of train.py's defaults cannot reach these runs, and no cap in updates or epochs that a
run could reach first. A model already trained in ``OUT/NAME`` is reused; one interrupted
(checkpoints, no ``story.json`` record) is resumed from its last checkpoint, exactly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

from .checkpoint import checkpoint_exists
from .cli import output_dir
from .oserrors import reports_os_errors
from .story import RECORD, read_record, train

# The settings of every model, fixed before the first run (docs/real-story.md says why each).
SETTINGS = dict(
    preset="small",       # E 128, H 256, A 256, L 128: the corpus has ~31,000 pairs, not 12M
    vocab_size=8000,      # words, the most frequent, the rest <unk>: 97.6% of the English and
                          # 96.8% of the French training tokens of en-fr (the paper: 30,000
                          # of each); the softmax's cost grows with it
    init="paper",         # appendix B.1
    optimizer="adam", lr=3e-3, lr_decay=0.5,  # the story's schedule: halve at every validation
    patience=4,           # without a better dev BLEU; stop after 4 in a row
    valid_every=500,      # updates: 1.3 epochs of 390 batches
    valid_size=1000,      # the whole dev set (1,006 pairs), greedy
    clip=1.0,             # appendix B.2
    dropout=0.0,          # the paper's; and the cursors have none
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


def train_argv(m: Model, run: Path, files: dict[str, Path], device: str) -> list[str]:
    """train.py's options for model ``m``: every setting given."""
    argv = ["--variant", m.variant, "--max-len", str(m.max_len), "--seed", str(m.seed),
            "--band", str(m.band), "--out", str(run), "--device", device, "--quiet"]
    for role in ("train_src", "train_tgt", "dev_src", "dev_tgt"):
        argv += [f"--{role.replace('_', '-')}", str(files[role])]
    for key, value in SETTINGS.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def train_models(names: list[str], out: Path, files: dict[str, Path], device: str) -> int:
    """Train, resume or reuse each model named; an exit status."""
    for name in names:
        m, run = BY_NAME[name], out / name
        if read_record(run) is not None:
            print(f"{name}: reusing {run}", file=sys.stderr)
            continue
        resume = checkpoint_exists(run, "last")
        print(f"{name}: {'resuming' if resume else 'training into'} {run}", file=sys.stderr)
        code, record = train(run, train_argv(m, run, files, device), resume)
        if code:
            return code
        print(f"{name}: {record['stop']} after {record['updates']:,} updates "
              f"({record['epochs']:.1f} epochs); best dev BLEU {record['best_dev_bleu']:.2f}; "
              f"its record: {run / RECORD}", file=sys.stderr)
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
    return train_models(args.models, out, files, args.device)


if __name__ == "__main__":
    sys.exit(main())
