"""A run's settings, one record: every option of train.py, its default, its help, and its rule
on resume, in the fields of ``Settings``. The command line is built from the fields
(``training.build_parser``), a checkpoint records them (``Trainer.meta``) and a resume checks
them (``run_settings``, ``refuse_changes``).

On resume, a field is either

    taken   from the caller: how far the run goes, when it validates, how long it waits for a
            better dev BLEU, where it runs and what it shows (``TAKEN_ON_RESUME``);
    kept    from the run: everything else, so that a resumed run computes what an unbroken run
            computes. A caller's other value is refused (``refuse_changes``).

Checkpoints of older commits lack some fields; each field's ``older`` says what such a run
trained with: ``--sort-pool`` 20 (``CHUNK_BATCHES``, the paper's), ``--batch-tokens`` 0,
``--lr-decay`` 1 (a constant rate), ``--lr-decay-patience`` 0, ``--pair`` en-fr, ``--dropout`` 0,
``--label-smoothing`` 0, ``--lr`` the optimiser's default; ``--band`` 0 and ``--init`` paper
(``Config.from_dict``). Those recorded only since 2026-12-01 (``RECORDED_LATER``) stay
unrecorded: they cannot be checked, and the caller's are used, as then.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import model
from .cli import (
    factor,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
    probability,
)
from .data.batching import CHUNK_BATCHES
from .data.corpus import PAIRS
from .data.vocab import vocab_size
from .optim import make_optimizer

# Adam's usual 1e-3 reached dev loss 3.09 after 500 updates on the built-in corpus, 3e-3 reached
# 0.89 (small preset, batch 80): the default here is 3e-3.
ADAM_LR = 3e-3

DATA = "data (line-aligned parallel text, UTF-8, one sentence per line)"
MODEL, TRAINING = "model", "training"
TAKEN, KEPT = "taken", "kept"  # a field's rule on resume
UNRECORDED = object()  # ``older``: checkpoints before 2026-12-01 do not record the field
CONFIG = object()      # ``older``: the run's model.Config has it (with its own rule for older)


class TrainingError(RuntimeError):
    """A run that cannot go on (NaN loss, bad options); the message is one line."""


def option(default: Any, help: str | None = None, *, group: str = TRAINING,
           resume: str = KEPT, type: Callable[[str], Any] | None = None,
           choices: Collection[str] | None = None, metavar: str | None = None,
           older: Any = MISSING) -> Any:
    """A field of ``Settings``: its default, and how the command line, a checkpoint and a resume
    treat it. ``older``: what a checkpoint without the field trained with (MISSING: every
    checkpoint records it)."""
    return field(default=default, metadata=dict(
        help=help, group=group, resume=resume, type=type, choices=choices, metavar=metavar,
        older=older))


_SIZE = "(overrides the preset)"


@dataclass
class Settings:
    """Every option of ``train.py``, by its argparse dest (``--batch-size``: ``batch_size``)."""

    train_src: str | None = option(None, "training source file (default: the built-in corpus)",
                                   group=DATA, older=UNRECORDED)
    pair: str | None = option("en-fr", "the built-in corpus to train on without --train-src "
                              "(default en-fr)", group=DATA, choices=tuple(PAIRS), older="en-fr")
    train_tgt: str | None = option(None, "training target file", group=DATA, older=UNRECORDED)
    dev_src: str | None = option(None, "development source file, for validation", group=DATA,
                                 older=UNRECORDED)
    dev_tgt: str | None = option(None, "development target file (the raw reference for BLEU)",
                                 group=DATA, older=UNRECORDED)
    max_len: int = option(50, "drop training pairs longer than this many tokens (paper: 50)",
                          group=DATA, type=positive_int)
    vocab_size: int = option(30000, "words per vocabulary, specials included (paper: 30000)",
                             group=DATA, type=vocab_size, older=UNRECORDED)
    subword: int | None = option(None, "subword units: train one sentencepiece model of N "
                                 "pieces on both sides (needs the [subword] extra); default: "
                                 "whole words", group=DATA, type=positive_int, metavar="N",
                                 older=None)
    variant: str = option("rnnsearch", group=MODEL, choices=model.VARIANTS, older=CONFIG)
    preset: str = option("small", "model sizes by name (paper: E 620, H 1000, A 1000, L 500)",
                         group=MODEL, choices=tuple(model.PRESETS), older=UNRECORDED)
    emb: int | None = option(None, f"E, embedding size {_SIZE}", group=MODEL,
                             type=positive_int, older=CONFIG)
    hidden: int | None = option(None, f"H, GRU state size {_SIZE}", group=MODEL,
                                type=positive_int, older=CONFIG)
    align: int | None = option(None, f"A, alignment hidden size {_SIZE}", group=MODEL,
                               type=positive_int, older=CONFIG)
    maxout: int | None = option(None, f"L, maxout units {_SIZE}", group=MODEL,
                                type=positive_int, older=CONFIG)
    init: str = option("fan-in", "fan-in (default): PyTorch's defaults, N(0, 1) embeddings and "
                       "U(+-1/sqrt(fan-in)) matrices, which learn sooner (docs/real-data.md); "
                       "paper: appendix B.1, N(0, 0.01^2) and orthogonal recurrent matrices, "
                       "as the story trains", group=MODEL, choices=model.INITS, older=CONFIG)
    band: int = option(0, "cursors only: in training, emissions only within +-BAND source "
                       "positions of the diagonal (cheaper, an upper bound of the exact loss); "
                       "0 (default): every position, the exact marginal", group=MODEL,
                       type=non_negative_int, older=CONFIG)
    batch_size: int = option(80, "sentence pairs per batch (paper: 80)", type=positive_int)
    batch_tokens: int = option(0, "cut batches by size instead: as many length-sorted pairs as "
                               "fit in N padded tokens a side (pairs x (longest sentence + "
                               "</s>), as Nematus' --token_batch_size and OpenNMT-py's "
                               "-batch_type tokens); 0 (default): --batch-size pairs each "
                               "(docs/training.md)", type=non_negative_int, metavar="N",
                               older=0)
    sort_pool: int = option(0, "--batch-size batches' worth of pairs sorted by length together "
                            "before they are cut into batches; 0 (default): the whole epoch, "
                            "the least padding (docs/real-data.md); paper: "
                            f"{CHUNK_BATCHES}", type=non_negative_int, older=CHUNK_BATCHES)
    optimizer: str = option("adam", "adam (default, fastest to a good model here) or the "
                            "paper's adadelta", choices=("adam", "adadelta", "sgd"))
    lr: float | None = option(None, f"learning rate (default: {ADAM_LR:g} for adam, the "
                              "optimiser's own for adadelta (1.0) and sgd (0.1))",
                              type=positive_float)
    lr_decay: float = option(0.5, "multiply the learning rate by F after every validation "
                             "(each --valid-every updates) without a better dev BLEU, or every "
                             "N+1 in a row with --lr-decay-patience N (decay on plateau, as "
                             "OpenNMT-lua and PyTorch's ReduceLROnPlateau; default: "
                             "%(default)s, docs/real-data.md); 1: a constant rate", type=factor,
                             metavar="F", older=1.0)
    lr_decay_patience: int = option(0, "validations without a better dev BLEU that the rate "
                                    "waits out: it decays at the (N+1)-th in a row, counted "
                                    "since the last better one or the last decay, as "
                                    "PyTorch's ReduceLROnPlateau(patience=N); default 0: at "
                                    "each of them. --patience still counts from the last "
                                    "better one", type=non_negative_int, metavar="N", older=0)
    clip: float = option(1.0, "rescale the gradient to at most this L2 norm (paper: 1)",
                         type=positive_float, older=UNRECORDED)
    dropout: float = option(0.0, "dropout rate on the embeddings, the deep output's inputs and "
                            "the maxout layer, as Nematus (paper: 0, the default); never when "
                            "decoding", type=probability, metavar="P", older=0.0)
    label_smoothing: float = option(0.0, "label smoothing: train towards 1-EPS on the reference "
                                    "word plus EPS spread evenly over all V target words, as "
                                    "PyTorch's cross_entropy(label_smoothing=EPS) (Nematus: "
                                    "--label_smoothing, OpenNMT-py: -label_smoothing); the "
                                    "training loss logged is the smoothed one, the dev loss "
                                    "stays the plain negative log-likelihood (0, the default: "
                                    "none, as the paper; docs/training.md)", type=probability,
                                    metavar="EPS", older=0.0)
    epochs: int = option(20, "at most this many epochs", resume=TAKEN, type=positive_int)
    max_steps: int | None = option(None, "stop after this many updates in all", resume=TAKEN,
                                   type=positive_int)
    max_time: float | None = option(None, "stop after this many minutes of this run",
                                    resume=TAKEN, type=positive_float)
    valid_every: int = option(500, "validate every N updates", resume=TAKEN, type=positive_int)
    valid_size: int = option(500, "translate at most this many dev sentences for BLEU at each "
                             "validation", type=positive_int, older=UNRECORDED)
    patience: int = option(5, "stop after this many validations (each --valid-every updates) "
                           "in a row without a better dev BLEU (or at dev BLEU 100, which none "
                           "can beat)", resume=TAKEN, type=positive_int)
    seed: int = option(1234, type=non_negative_int)
    device: str = option("auto", resume=TAKEN, choices=("auto", "cpu", "gpu"))
    out: str = option("runs/default", "run directory (checkpoints, log)", resume=TAKEN,
                      type=output_dir)
    resume: bool = option(False, "continue the run in --out from its last checkpoint, exactly. "
                          "A resumed run takes --epochs, --max-steps, --max-time, "
                          "--valid-every, --patience, --device and --quiet from the command "
                          "line; every other option is the run's own, and a different value "
                          "is refused (not with --overwrite)", resume=TAKEN)
    overwrite: bool = option(False, "start a new run in --out even if it holds one: first "
                             "remove that run's files (best.json, last.json and their npz "
                             "files, log.jsonl, subword.model); other files stay. Without it a "
                             "new run refuses a directory that holds a run", resume=TAKEN)
    quiet: bool = option(False, "no progress bar", resume=TAKEN)

    def __post_init__(self) -> None:
        """ValueError, one line naming the field, for a value the command line would refuse."""
        for f in fields(self):
            value, m = getattr(self, f.name), f.metadata
            if value is None or isinstance(value, bool):
                continue
            if m["choices"] is not None and value not in m["choices"]:
                raise ValueError(f"{f.name}: {value!r} is not one of {tuple(m['choices'])}")
            if m["type"] is not None:
                try:
                    m["type"](str(value))
                except argparse.ArgumentTypeError as e:
                    raise ValueError(f"{f.name}: {e}") from None

    def argv(self) -> list[str]:
        """The train.py options that parse into these settings: the fields that differ from
        their defaults."""
        argv = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default and value is not None:
                argv += [flag(f.name)] if value is True else [flag(f.name), str(value)]
        return argv

    def changed(self) -> list[str]:
        """The fields whose values differ from their defaults."""
        return [f.name for f in fields(self) if getattr(self, f.name) != f.default]


def flag(dest: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + dest.replace("_", "-")


TAKEN_ON_RESUME = tuple(f.name for f in fields(Settings) if f.metadata["resume"] == TAKEN)
DATA_FILES = ("train_src", "train_tgt", "dev_src", "dev_tgt")
# fixed options that checkpoints record only since 2026-12-01: a run saved before has none
RECORDED_LATER = tuple(f.name for f in fields(Settings) if f.metadata["older"] is UNRECORDED)
# what a setting of None means, for the refusal's message
NONE_MEANS = {"subword": "whole words", "pair": "its own data files",
              **dict.fromkeys(DATA_FILES, "the built-in corpus")}


def conflict(s: Settings, given: Collection[str]) -> str:
    """Why the options ``given`` (the fields set by the caller) cannot go together ('' if they
    can). A resumed run has its own settings, checked against ``given`` by ``refuse_changes``."""
    if s.overwrite and s.resume:
        return "--overwrite starts a new run and --resume continues one: give one of them"
    if s.resume:
        return ""
    if s.band and not model.supports_band(s.variant):
        banded = [v for v in model.VARIANTS if model.supports_band(v)]
        return f"--band is for --variant {' or '.join(banded)} only"
    if s.dropout and not model.supports_dropout(s.variant):
        return f"--dropout is not implemented for --variant {s.variant}"
    if s.label_smoothing and not model.supports_label_smoothing(s.variant):
        return f"--label-smoothing is not implemented for --variant {s.variant}"
    if "pair" in given and (s.train_src or s.train_tgt):
        return ("--pair chooses a built-in corpus: give it or your own files (--train-src ...), "
                "not both")
    return ""


def run_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """The kept fields of the run whose checkpoint meta is ``meta``, as the run was trained
    with them: each field's ``older`` value where the checkpoint lacks it, and those of
    ``RECORDED_LATER`` left out when it lacks them, so they cannot be checked (and the caller's
    are used, as then)."""
    cfg = model.Config.from_dict(meta["config"])
    settings = {}
    for f in fields(Settings):
        older = f.metadata["older"]
        if f.metadata["resume"] == TAKEN or (older is UNRECORDED and f.name not in meta):
            continue
        if older is CONFIG:
            settings[f.name] = getattr(cfg, f.name)
        elif older is MISSING:
            settings[f.name] = meta[f.name]
        else:
            settings[f.name] = meta.get(f.name, older)
    # lr None (older runs): the optimiser's default, read from an optimiser of no parameters
    settings["lr"] = make_optimizer(meta["optimizer"], {}, meta["lr"]).lr
    settings["subword"] = (meta.get("subword") or {}).get("pieces")  # None: whole words
    return settings


def _same(dest: str, given: Any, run: Any) -> bool:
    if dest in DATA_FILES:  # the same file, however it is named
        return run is not None and Path(given).resolve() == Path(run)
    return given == run


def refuse_changes(s: Settings, given: Collection[str], run: dict[str, Any], out: Path) -> None:
    """TrainingError, one line, if a field in ``given`` that the run keeps has another value in
    ``s`` than in the run's settings ``run``; a note on stderr for those the run's checkpoint is
    too old to record."""
    fixed = [k for k in given if k not in TAKEN_ON_RESUME]
    changed = [k for k in fixed if k in run and not _same(k, getattr(s, k), run[k])]
    unknown = [k for k in fixed if k not in run]
    if unknown:
        print(f"note: {out}/last.json predates the record of "
              f"{', '.join(flag(k) for k in unknown)}: not checked against the run",
              file=sys.stderr)
    if changed:
        flags = ", ".join(f"{flag(k)} {getattr(s, k)}" for k in changed)
        have = ", ".join(str(NONE_MEANS[k] if run[k] is None else run[k]) for k in changed)
        it = "it" if len(changed) == 1 else "them"
        raise TrainingError(f"{flags}: the run in {out} was trained with {have} and a resumed "
                            f"run keeps {it}; start a new run with another --out")
