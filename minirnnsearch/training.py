"""Training: data in, checkpoints and a log out. ``train.py`` is the command-line front end.

One run directory holds the checkpoints ``best`` (the best dev BLEU) and ``last`` (the latest
state, for ``--resume``), each a json and the npz it names (``checkpoint``), ``log.jsonl`` (one
line per validation) and with ``--subword`` the subword model. A run holds its directory for
its whole life (``runlock``: a second run there is refused, naming the first), and a new run
refuses a directory that holds a run, before writing anything, unless ``--overwrite`` (which
removes that run's files, ``run_files``, first). Resuming continues exactly:
the batches of an epoch are a function of (seed, epoch), and the checkpoint stores the position
in the epoch and the optimiser state, so step n after a resume equals step n of an unbroken run
bit for bit; so a resumed run keeps the run's settings, and refuses another value of one on
the command line (``TAKEN_ON_RESUME`` names those it takes). Ctrl-C and SIGTERM both save
``last`` and say how to resume (exit status 130 and 143); at start-up, checkpoint temporaries
left by runs killed outright are removed. A failure of the system under the run (a full disk,
a run directory that is not writable) ends it with one line naming the file (``oserrors``),
and the checkpoints and log on disk stay whole.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu
from tqdm import tqdm

from . import decode, distributed, model
from .backend import Backend, DeviceError, get_backend, to_host
from .checkpoint import (
    CheckpointError,
    checkpoint_exists,
    is_checkpoint_file,
    load_checkpoint,
    read_meta,
    remove_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from .cli import (
    factor,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
    probability,
)
from .data.batching import (
    CHUNK_BATCHES,
    epoch_batches,
    filter_by_length,
    make_batch,
    padding_share,
)
from .data.corpus import PAIRS, builtin_corpus, target_language
from .data.io import DataError, read_parallel
from .data.subword import MODEL_FILE, Segmenter, WordSegmenter, segmenters, train_subword
from .data.vocab import Vocab, vocab_size
from .optim import clip_grad_norm, make_optimizer
from .oserrors import (
    append_line,
    doing,
    make_dir,
    reports_os_errors,
    write_atomic,
)
from .runlock import RunInUse, RunLock

DEFAULT_CORPUS_CACHE = Path(".cache") / "corpus"
# Adam's usual 1e-3 reached dev loss 3.09 after 500 updates on the built-in corpus, 3e-3 reached
# 0.89 (small preset, batch 80): the default here is 3e-3.
ADAM_LR = 3e-3
LOG_EVERY = 20  # updates between two reads of the training loss (each read waits for a GPU)
PERFECT_BLEU = 100.0  # a dev BLEU no validation can beat: the run stops there (out_of_patience,
# with a tolerance: sacrebleu's perfect score is 100 * exp(log(100)), a rounding away from 100)
CHECKPOINTS = ("best", "last")
LOG = "log.jsonl"  # one line per validation


class TrainingError(RuntimeError):
    """A run that cannot go on (NaN loss, bad options); the message is one line."""


class Terminated(KeyboardInterrupt):
    """A signal other than Ctrl-C's (SIGTERM) taking Ctrl-C's path: save ``last``, say how to
    resume, exit with status 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def sigterm_like_ctrl_c() -> Iterator[None]:
    """Within: SIGTERM (what SLURM, Kubernetes, ``timeout`` and systemd send before killing)
    raises ``Terminated``, as Ctrl-C raises KeyboardInterrupt. The previous handler is back on
    the way out. As Python does for SIGINT, a SIGTERM the process was started ignoring stays
    ignored; and signal handlers belong to the main thread: elsewhere this changes nothing."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN):
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="train.py",
        description="Train RNNsearch (Bahdanau et al. 2014). With no arguments: the built-in "
                    "English->French corpus and the small model.")
    d = ap.add_argument_group("data (line-aligned parallel text, UTF-8, one sentence per line)")
    d.add_argument("--train-src", help="training source file (default: the built-in corpus)")
    d.add_argument("--pair", default="en-fr", choices=tuple(PAIRS),
                   help="the built-in corpus to train on without --train-src (default en-fr)")
    d.add_argument("--train-tgt", help="training target file")
    d.add_argument("--dev-src", help="development source file, for validation")
    d.add_argument("--dev-tgt", help="development target file (the raw reference for BLEU)")
    d.add_argument("--max-len", type=positive_int, default=50,
                   help="drop training pairs longer than this many tokens (paper: 50)")
    d.add_argument("--vocab-size", type=vocab_size, default=30000,
                   help="words per vocabulary, specials included (paper: 30000)")
    d.add_argument("--subword", type=positive_int, metavar="N",
                   help="subword units: train one sentencepiece model of N pieces on both sides "
                        "(needs the [subword] extra); default: whole words")
    m = ap.add_argument_group("model")
    m.add_argument("--variant", default="rnnsearch", choices=model.VARIANTS)
    m.add_argument("--preset", default="small", choices=tuple(model.PRESETS),
                   help="model sizes by name (paper: E 620, H 1000, A 1000, L 500)")
    for name, help_ in (("emb", "E, embedding size"), ("hidden", "H, GRU state size"),
                        ("align", "A, alignment hidden size"), ("maxout", "L, maxout units")):
        m.add_argument(f"--{name}", type=positive_int, help=f"{help_} (overrides the preset)")
    m.add_argument("--init", default="fan-in", choices=model.INITS,
                   help="fan-in (default): PyTorch's defaults, N(0, 1) embeddings and "
                        "U(+-1/sqrt(fan-in)) matrices, which learn sooner (docs/real-data.md); "
                        "paper: appendix B.1, N(0, 0.01^2) and orthogonal recurrent matrices, "
                        "as the story trains")
    m.add_argument("--band", type=non_negative_int, default=0,
                   help="cursors only: in training, emissions only within +-BAND source "
                        "positions of the diagonal (cheaper, an upper bound of the exact loss); "
                        "0 (default): every position, the exact marginal")
    t = ap.add_argument_group("training")
    t.add_argument("--batch-size", type=positive_int, default=80,
                   help="sentence pairs per batch (paper: 80)")
    t.add_argument("--batch-tokens", type=non_negative_int, default=0, metavar="N",
                   help="cut batches by size instead: as many length-sorted pairs as fit in N "
                        "padded tokens a side (pairs x (longest sentence + </s>), as Nematus' "
                        "--token_batch_size and OpenNMT-py's -batch_type tokens); 0 (default): "
                        "--batch-size pairs each (docs/training.md)")
    t.add_argument("--sort-pool", type=non_negative_int, default=0,
                   help="--batch-size batches' worth of pairs sorted by length together before "
                        "they are cut into batches; 0 (default): the whole epoch, the least "
                        f"padding (docs/real-data.md); paper: {CHUNK_BATCHES}")
    t.add_argument("--optimizer", default="adam", choices=("adam", "adadelta", "sgd"),
                   help="adam (default, fastest to a good model here) or the paper's adadelta")
    t.add_argument("--lr", type=positive_float,
                   help=f"learning rate (default: {ADAM_LR:g} for adam, the optimiser's own "
                        "for adadelta (1.0) and sgd (0.1))")
    t.add_argument("--lr-decay", type=factor, default=0.5, metavar="F",
                   help="multiply the learning rate by F after every validation (each "
                        "--valid-every updates) without a better dev BLEU (decay on plateau, "
                        "as OpenNMT-lua and PyTorch's ReduceLROnPlateau with patience 0; "
                        "default: %(default)s, docs/real-data.md); 1: a constant rate")
    t.add_argument("--clip", type=positive_float, default=1.0,
                   help="rescale the gradient to at most this L2 norm (paper: 1)")
    t.add_argument("--dropout", type=probability, default=0.0, metavar="P",
                   help="dropout rate on the embeddings, the deep output's inputs and the maxout "
                        "layer, as Nematus (paper: 0, the default); never when decoding")
    t.add_argument("--epochs", type=positive_int, default=20, help="at most this many epochs")
    t.add_argument("--max-steps", type=positive_int, help="stop after this many updates in all")
    t.add_argument("--max-time", type=positive_float,
                   help="stop after this many minutes of this run")
    t.add_argument("--valid-every", type=positive_int, default=500,
                   help="validate every N updates")
    t.add_argument("--valid-size", type=positive_int, default=500,
                   help="translate at most this many dev sentences for BLEU at each validation")
    t.add_argument("--patience", type=positive_int, default=5,
                   help="stop after this many validations (each --valid-every updates) in a "
                        "row without a better dev BLEU (or at dev BLEU 100, which none can "
                        "beat)")
    t.add_argument("--seed", type=non_negative_int, default=1234)
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    t.add_argument("--out", type=output_dir, default="runs/default",
                   help="run directory (checkpoints, log)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, exactly. A resumed "
                        "run takes --epochs, --max-steps, --max-time, --valid-every, --patience, "
                        "--device and --quiet from the command line; every other option is the "
                        "run's own, and a different value is refused (not with --overwrite)")
    t.add_argument("--overwrite", action="store_true",
                   help="start a new run in --out even if it holds one: first remove that run's "
                        "files (best.json, last.json and their npz files, log.jsonl, "
                        "subword.model); other files stay. Without it a new run refuses a "
                        "directory that holds a run")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


# A resumed run takes these options from the command line: how far it goes, when it validates,
# how long it waits for a better dev BLEU, where it runs and what it shows. Every other option
# is fixed by the run (``run_settings``), so that a resumed run computes what an unbroken run
# computes; a different value on the command line is refused (``refuse_changes``).
TAKEN_ON_RESUME = ("epochs", "max_steps", "max_time", "valid_every", "patience", "device",
                   "quiet", "out", "resume", "overwrite")
DATA_FILES = ("train_src", "train_tgt", "dev_src", "dev_tgt")
# what a setting of None means, for the refusal's message
NONE_MEANS = {"subword": "whole words", "pair": "its own data files",
              **dict.fromkeys(DATA_FILES, "the built-in corpus")}


# fixed options that checkpoints record only since 2026-12-01: a run saved before has none
RECORDED_LATER = ("preset", "vocab_size", "valid_size", "clip", *DATA_FILES)


def run_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """The fixed options of the run whose checkpoint meta is ``meta``, by argparse dest, as the
    run was trained with them. Checkpoints saved before this record lack --preset,
    --vocab-size, --valid-size, --clip and the data files: those are left out, so they cannot
    be checked (and the command line's are used, as then)."""
    cfg = model.Config.from_dict(meta["config"])
    settings = {k: getattr(cfg, k) for k in ("variant", "band", "init", "emb", "hidden",
                                             "align", "maxout")}
    settings.update({k: meta[k] for k in ("seed", "batch_size", "max_len", "optimizer")})
    settings["sort_pool"] = meta.get("sort_pool", CHUNK_BATCHES)  # older runs: the paper's
    settings["batch_tokens"] = meta.get("batch_tokens", 0)  # older runs: --batch-size pairs
    # lr None (older runs): the optimiser's default, read from an optimiser of no parameters
    settings["lr"] = make_optimizer(meta["optimizer"], {}, meta["lr"]).lr
    settings["lr_decay"] = meta.get("lr_decay", 1.0)  # runs from before --lr-decay: constant
    settings["pair"] = meta.get("pair", "en-fr")  # runs from before --pair trained on en-fr
    settings["dropout"] = meta.get("dropout", 0.0)  # and those from before --dropout without
    settings["subword"] = (meta.get("subword") or {}).get("pieces")  # None: whole words
    settings.update({k: meta[k] for k in RECORDED_LATER if k in meta})
    return settings


def _same(dest: str, given: Any, run: Any) -> bool:
    if dest in DATA_FILES:  # the same file, however it is named
        return run is not None and Path(given).resolve() == Path(run)
    return given == run


def refuse_changes(args: argparse.Namespace, given: Collection[str],
                   settings: dict[str, Any], out: Path) -> None:
    """TrainingError, one line, if an option in ``given`` (argparse dests) that the run fixes
    has another value in ``args`` than in the run's ``settings``; a note on stderr for those
    the run's checkpoint is too old to record."""
    fixed = [k for k in given if k not in TAKEN_ON_RESUME]
    changed = [k for k in fixed if k in settings and not _same(k, getattr(args, k), settings[k])]
    unknown = [k for k in fixed if k not in settings]
    if unknown:
        print(f"note: {out}/last.json predates the record of "
              f"{', '.join(_flag(k) for k in unknown)}: not checked against the run",
              file=sys.stderr)
    if changed:
        flags = ", ".join(f"{_flag(k)} {getattr(args, k)}" for k in changed)
        have = ", ".join(str(NONE_MEANS[k] if settings[k] is None else settings[k])
                         for k in changed)
        it = "it" if len(changed) == 1 else "them"
        raise TrainingError(f"{flags}: the run in {out} was trained with {have} and a resumed "
                            f"run keeps {it}; start a new run with another --out")


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def given_options(ap: argparse.ArgumentParser, argv: list[str] | None) -> list[str]:
    """The options (argparse dests) that ``argv`` gives, not left to their defaults: parsed
    again into a namespace whose every attribute is preset, which argparse then leaves alone
    unless the option is there."""
    unset = object()
    probe = argparse.Namespace(**dict.fromkeys(vars(ap.parse_args(argv)), unset))
    return [k for k, v in vars(ap.parse_args(argv, namespace=probe)).items() if v is not unset]


def run_files(out: Path) -> list[Path]:
    """The files of a run in ``out``, train.py's own: the checkpoints ``best`` and ``last`` (each
    its json and npz files), log.jsonl and subword.model. What a new run refuses to write over
    and what --overwrite removes; never another file (a user's notes, the story's story.json,
    the lock, a temporary: ``prepare_out`` removes those of checkpoints once their process has
    ended)."""
    if not out.is_dir():
        return []

    def of_the_run(file: str) -> bool:
        return (any(is_checkpoint_file(file, name) for name in CHECKPOINTS)
                or file in (LOG, MODEL_FILE))

    return sorted(p for p in out.iterdir() if p.is_file() and of_the_run(p.name))


def held_run(out: Path, files: list[Path]) -> str:
    """Why a new run refuses ``out``, which holds the run files ``files``, and the ways on: the
    run's step and best dev BLEU from its ``last`` checkpoint, or the files if it cannot be
    read."""
    try:
        meta = read_meta(out, "last")
        bleu = (f"best dev BLEU {meta['best_bleu']:.2f}" if meta["best_bleu"] >= 0
                else "no validation yet")
        return (f"{out} holds a run (step {meta['step']}, {bleu}); continue it with --resume, "
                "replace it with --overwrite, or choose another --out")
    except (CheckpointError, OSError, KeyError, TypeError, ValueError):
        return (f"{out} holds files of a run ({', '.join(p.name for p in files)}) without a "
                "readable checkpoint 'last' to continue; replace them with --overwrite, or "
                "choose another --out")


def claim(args: argparse.Namespace, root: bool = True
          ) -> contextlib.AbstractContextManager[Any]:
    """The run directory ``args.out``, held for the run (``RunLock``; under MPI by rank 0, the
    ``root``, and the other ranks hold nothing) before anything is written in it: RunInUse if
    another process holds it. Then a new run (no --resume) refuses a directory that holds a run
    (TrainingError, ``held_run``), or with --overwrite removes that run's files
    (``run_files``). Returns the lock, to release when the run ends."""
    if not root:
        return contextlib.nullcontext()
    out = Path(args.out)
    lock = RunLock(out)
    try:
        files = [] if args.resume else run_files(out)
        if files and not args.overwrite:
            raise TrainingError(held_run(out, files))
        for path in files:
            with doing("remove", path):
                path.unlink()
        if files:
            print(f"{out}: --overwrite removed the earlier run's "
                  f"{', '.join(p.name for p in files)}", file=sys.stderr)
    except BaseException:
        lock.release()
        raise
    return lock


@dataclass
class Corpus:
    """Token-id pairs for training, raw dev sentences for BLEU."""

    train: list[tuple[list[int], list[int]]]
    dev_src: list[list[int]]
    dev_tgt: list[list[int]]
    dev_ref: list[str]
    tgt_seg: Segmenter = field(default_factory=WordSegmenter)  # target tokens -> raw text
    subword: dict | None = None  # the checkpoint's record of the subword model, if any


def _read(src: str, tgt: str) -> list[tuple[str, str]]:
    pairs, skipped = read_parallel(src, tgt)
    if skipped:
        print(f"{src}, {tgt}: skipped {skipped} pairs with an empty side", file=sys.stderr)
    return pairs


def load_corpus(args: argparse.Namespace, vocabs: tuple[Vocab, Vocab] | None,
                subword: dict | None = None) -> tuple[Corpus, Vocab, Vocab]:
    """Read (or generate) the data, build the subword model (``--subword``) and the
    vocabularies unless given (a resumed run keeps its own), and turn every sentence into
    ids."""
    if args.train_src or args.train_tgt:
        if not (args.train_src and args.train_tgt and args.dev_src and args.dev_tgt):
            raise DataError("--train-src, --train-tgt, --dev-src and --dev-tgt go together")
        paths = dict(train_src=args.train_src, train_tgt=args.train_tgt,
                     dev_src=args.dev_src, dev_tgt=args.dev_tgt)
    else:
        files = builtin_corpus(DEFAULT_CORPUS_CACHE, seed=1234, pair=args.pair)
        tgt = target_language(args.pair)
        paths = dict(train_src=files["train.en"], train_tgt=files[f"train.{tgt}"],
                     dev_src=files["dev.en"], dev_tgt=files[f"dev.{tgt}"])
    raw = _read(paths["train_src"], paths["train_tgt"])
    if subword is None and vocabs is None and args.subword:
        subword = train_subword([line for pair in raw for line in pair], args.out, args.subword)
    src_seg, tgt_seg = segmenters(args.out, subword)
    train = [(src_seg.encode(s), tgt_seg.encode(t)) for s, t in raw]
    dev = _read(paths["dev_src"], paths["dev_tgt"])
    if vocabs is None:
        # with subword units every piece of the model counts once more, so each is in
        # (while --vocab-size allows): no text has an <unk> then
        vocabs = (Vocab.build([*(s for s, _ in train), src_seg.pieces()], args.vocab_size),
                  Vocab.build([*(t for _, t in train), tgt_seg.pieces()], args.vocab_size))
    src_vocab, tgt_vocab = vocabs
    ids = [(src_vocab.encode(s), tgt_vocab.encode(t)) for s, t in train]
    kept = filter_by_length(ids, args.max_len)
    if not kept:
        raise DataError(f"{paths['train_src']}: no training pair has at most --max-len "
                        f"{args.max_len} tokens on both sides")
    dev = dev[: args.valid_size]
    corpus = Corpus(kept, [src_vocab.encode(src_seg.encode(s)) for s, _ in dev],
                    [tgt_vocab.encode(tgt_seg.encode(t)) for _, t in dev], [t for _, t in dev],
                    tgt_seg, subword)
    print(f"data: {len(kept)} training pairs ({len(ids) - len(kept)} longer than {args.max_len} "
          f"dropped), {len(dev)} dev pairs; vocabularies {len(src_vocab)} / {len(tgt_vocab)}",
          file=sys.stderr)
    return corpus, src_vocab, tgt_vocab


def dev_loss(params: dict, cfg: model.Config, backend: Backend, corpus: Corpus,
             batch_size: int) -> float:
    """Mean negative log-likelihood per real dev target token."""
    total, tokens = 0.0, 0
    for start in range(0, len(corpus.dev_src), batch_size):
        b = make_batch(corpus.dev_src[start : start + batch_size],
                       corpus.dev_tgt[start : start + batch_size])
        total += float(to_host(model.loss(params, cfg, b.to(backend)))) * b.n_tokens
        tokens += b.n_tokens
    return total / tokens


@dataclass
class Meter:
    """Training loss and throughput between two log lines, the training loss since the last
    validation, and tokens/s over this run's steps. The loss is summed on the device and read
    once per log interval (a read waits for a GPU)."""

    clock: Callable[[], float]
    since: float                # when the last log line was
    loss_sum: Any = 0.0         # device scalar: the summed loss of the steps since the last log
    steps: int = 0
    tokens: int = 0             # target tokens since the last log
    run_tokens: int = 0         # target tokens and seconds in steps, this run
    step_time: float = 0.0
    interval_sum: float = 0.0   # the summed loss and the steps of the reads since the last
    interval_steps: int = 0     # validation (or this run's start)

    def add(self, loss: Any, n_tokens: int, seconds: float) -> None:
        self.loss_sum = self.loss_sum + loss
        self.steps += 1
        self.tokens += n_tokens
        self.run_tokens += n_tokens
        self.step_time += seconds

    def read(self) -> tuple[float, float]:
        """Mean loss per step and tokens/s since the last read, then start over; the read's
        summed loss and steps go to the validation interval's (``interval_loss``)."""
        total = float(to_host(self.loss_sum))
        self.interval_sum += total
        self.interval_steps += self.steps
        loss = total / self.steps
        now = self.clock()
        tokens_per_s = self.tokens / (now - self.since)
        self.loss_sum, self.steps, self.tokens, self.since = 0.0, 0, 0, now
        return loss, tokens_per_s

    def interval_loss(self) -> float:
        """Mean loss per step over the reads since the last call (the validation interval),
        then start over: the training loss a validation's record gives beside the dev loss,
        over all of the interval's updates, not only the last read's few."""
        loss = self.interval_sum / self.interval_steps
        self.interval_sum, self.interval_steps = 0.0, 0
        return loss

    def finite(self) -> bool:
        """Whether the loss summed since the last read is finite (a read waits for a GPU)."""
        return not self.steps or math.isfinite(float(to_host(self.loss_sum)))

    @property
    def tokens_per_s(self) -> float:
        return self.run_tokens / self.step_time


class Trainer:
    """The state of one run: parameters, optimiser, position in the data, validation record."""

    def __init__(self, args: argparse.Namespace, group: distributed.Local | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 given: Collection[str] = ()) -> None:
        """A new run from ``args``, or with ``args.resume`` the run in ``args.out`` continued:
        ``args`` then take the run's fixed settings, and TrainingError if an option in
        ``given`` (the options on the command line, argparse dests) differs from them."""
        self.args = args
        self.clock = clock  # seconds; a test drives --max-time with its own
        self.group = group or distributed.Local()  # ranks of a data-parallel run (MPI)
        self.out = Path(args.out)
        self.backend = get_backend(args.device)
        resumed = None
        if args.resume:
            if not checkpoint_exists(self.out, "last"):
                raise CheckpointError(f"{self.out}: --resume, but there is no checkpoint 'last' "
                                      "in this run directory")
            resumed = load_checkpoint(self.out, "last")
            meta = resumed[2]
            vocabs = (Vocab.from_dict(meta["src_vocab"]), Vocab.from_dict(meta["tgt_vocab"]))
            settings = run_settings(meta)
            refuse_changes(args, given, settings, self.out)
            # what the run does not record stays unrecorded: the command line's value is not
            # the run's, and a later resume would be checked against it
            self.unrecorded = [k for k in RECORDED_LATER if k not in settings]
            for k, v in settings.items():
                setattr(args, k, v)
        else:
            vocabs, self.unrecorded = None, []
        self.corpus, self.src_vocab, self.tgt_vocab = load_corpus(
            args, vocabs, resumed[2].get("subword") if resumed else None)
        if resumed is None:
            sizes = {k: getattr(args, k) for k in ("emb", "hidden", "align", "maxout")
                     if getattr(args, k) is not None}
            self.cfg = model.Config.from_preset(
                args.preset, src_vocab=len(self.src_vocab), tgt_vocab=len(self.tgt_vocab),
                variant=args.variant, band=args.band, init=args.init, **sizes)
            self.params = model.init_params(self.cfg, self.backend, args.seed)
            if args.lr is None and args.optimizer == "adam":
                args.lr = ADAM_LR
            self.opt = make_optimizer(args.optimizer, self.params, args.lr)
            args.lr = self.opt.lr  # recorded as a number, the optimiser's default included
            self.step, self.epoch, self.pos = 0, 0, 0
            self.best_bleu, self.schedule_best, self.bad_validations = -1.0, -1.0, 0
        else:
            params, opt_state, meta = resumed
            self.cfg = model.Config.from_dict(meta["config"])
            expected = model.param_shapes(self.cfg)
            if {k: v.shape for k, v in params.items()} != expected:
                raise CheckpointError(f"checkpoint {self.out / 'last'}: parameters do not "
                                      "match the configuration stored with them")
            self.params = {k: self.backend.asarray(params[k]) for k in expected}
            self.opt = make_optimizer(args.optimizer, self.params, args.lr)
            self.opt.load_state_dict({k: self.backend.asarray(v) for k, v in opt_state.items()})
            self.opt.lr = meta.get("lr_now", self.opt.lr)  # as --lr-decay left it
            self.step, self.epoch, self.pos = meta["step"], meta["epoch"], meta["pos"]
            self.best_bleu, self.bad_validations = meta["best_bleu"], meta["bad_validations"]
            self.schedule_best = meta.get("schedule_best", self.best_bleu)  # older runs: one best
            print(f"resuming {self.out} at step {self.step} (epoch {self.epoch + 1}, "
                  f"batch {self.pos})", file=sys.stderr)
        self.lengths = [(len(s), len(t)) for s, t in self.corpus.train]
        self.order = self.epoch_order()
        if self.group.is_root:
            size = (f"up to {args.batch_tokens} tokens a side" if args.batch_tokens
                    else f"up to {args.batch_size} pairs")
            print(f"batches: {self.epoch_size} an epoch of {size}, "
                  f"{padding_share(self.lengths, self.order):.1%} of their cells padding "
                  f"(--sort-pool {args.sort_pool})", file=sys.stderr)
        self.signature_shown = False
        if resumed is not None and self.group.is_root:
            self.agree_with_last()

    # -- checkpoints ---------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """What a checkpoint records of the run: its configuration, vocabularies, position,
        schedule and settings (those a resumed run's checkpoint lacked left out)."""
        meta = dict(config=self.cfg.to_dict(), src_vocab=self.src_vocab.to_dict(),
                    tgt_vocab=self.tgt_vocab.to_dict(), step=self.step, epoch=self.epoch,
                    pos=self.pos, best_bleu=self.best_bleu, schedule_best=self.schedule_best,
                    bad_validations=self.bad_validations,
                    optimizer=self.args.optimizer, lr=self.args.lr, lr_now=self.opt.lr,
                    lr_decay=self.args.lr_decay, seed=self.args.seed,
                    batch_size=self.args.batch_size, batch_tokens=self.args.batch_tokens,
                    sort_pool=self.args.sort_pool,
                    max_len=self.args.max_len, pair=None if self.args.train_src else self.args.pair,
                    subword=self.corpus.subword, dropout=self.args.dropout,
                    preset=self.args.preset, vocab_size=self.args.vocab_size,
                    valid_size=self.args.valid_size, clip=self.args.clip,
                    **{k: str(Path(getattr(self.args, k)).resolve()) if self.args.train_src
                       else None for k in DATA_FILES})
        for k in self.unrecorded:
            del meta[k]
        return meta

    def save(self, name: str) -> None:
        if self.group.is_root:
            save_checkpoint(self.out, name, self.params, self.opt.state_dict(), self.meta())

    def fingerprint(self) -> str:
        """The state every rank must share: parameters, optimiser state, position."""
        return distributed.fingerprint({**self.params, **self.opt.state}, self.opt.t,
                                       self.opt.lr, self.step, self.epoch, self.pos)

    # -- validation ----------------------------------------------------------------------------

    def validate(self, train_loss: float, tokens_per_s: float, elapsed: float) -> bool:
        """Dev BLEU (greedy) and dev loss, one line of log.jsonl with ``valid_seconds``, the
        validation's own time (``elapsed`` is the time before it); whether the dev BLEU is the
        best yet (then ``train`` saves `best`, after `last`).

        Only the validations every --valid-every updates steer the schedule (--lr-decay and
        --patience, against the best of them, ``schedule_best``); the one at a stop between
        them saves `best` if better but changes nothing else, so that a run stopped and resumed
        trains as the same run unbroken would."""
        t0 = self.clock()
        packed = model.pack_params(self.params)
        hyps = decode.decode_sentences(packed, self.cfg, self.backend, self.corpus.dev_src,
                                       self.args.batch_size)
        detok = [self.corpus.tgt_seg.decode(self.tgt_vocab.decode(h[0].tokens)) for h in hyps]
        bleu = sacrebleu.BLEU(tokenize="13a")
        score = bleu.corpus_score(detok, [self.corpus.dev_ref]).score
        if not self.signature_shown:
            print(f"sacrebleu signature: {bleu.get_signature()}", file=sys.stderr)
            self.signature_shown = True
        dloss = dev_loss(self.params, self.cfg, self.backend, self.corpus, self.args.batch_size)
        record = dict(step=self.step, epoch=self.epoch + 1, loss=train_loss, dev_loss=dloss,
                      dev_bleu=score, lr=self.opt.lr, tokens_per_s=tokens_per_s, elapsed=elapsed,
                      valid_seconds=self.clock() - t0, valid_every=self.args.valid_every,
                      patience=self.args.patience)
        append_line(self.out / LOG, json.dumps(record))  # whole or not at all
        improved = score > self.best_bleu
        if improved:
            self.best_bleu = score
        if self.on_grid():
            if score > self.schedule_best:
                self.schedule_best, self.bad_validations = score, 0
            else:
                self.bad_validations += 1
                self.decay_lr()
        k = min(range(len(detok)), key=lambda i: abs(len(detok[i].split()) - 12))
        tqdm.write(f"step {self.step}: dev loss {record['dev_loss']:.3f}, dev BLEU {score:.2f}"
                   f"{' (best)' if improved else ''}, {tokens_per_s:.0f} tokens/s\n"
                   f"  sample: {detok[k]}\n  ref:    {self.corpus.dev_ref[k]}", file=sys.stderr)
        return improved

    def decay_lr(self) -> None:
        """After a validation without a better dev BLEU: lr <- lr * --lr-decay (1: unchanged).
        Adam's moments stay as they are; only the step size shrinks."""
        if self.args.lr_decay < 1:
            self.opt.lr *= self.args.lr_decay
            tqdm.write(f"no better dev BLEU: learning rate now {self.opt.lr:.3g}", file=sys.stderr)

    # -- the loop ------------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Train until a stop rule says so; the order of events is here, each rule below."""
        self.prepare_out()
        start = self.clock()
        meter = Meter(self.clock, since=start)
        stop = ""
        bar = self.progress_bar()
        self.group.check_same("the parameters, optimiser state and position", self.fingerprint)
        try:
            for batch in self.batches():
                t0 = self.clock()
                meter.add(*self.train_step(batch), self.clock() - t0)
                bar.update(1)
                elapsed = self.clock() - start
                # rank 0's clock decides; a Ctrl-C on any rank interrupts them all here
                stop = self.group.agree_stop(self.limit_reached(elapsed))
                validating = self.validation_due(stop)
                if validating or self.log_due():
                    self.log(meter, bar)  # the NaN check, before anything is saved
                if validating:
                    train_loss = meter.interval_loss()  # every rank starts the next interval
                    # rank 0 validates: its log line, then `last`, then `best` if better, in
                    # this order (``agree_with_last`` says why)
                    better = (self.group.is_root
                              and self.validate(train_loss, meter.tokens_per_s, elapsed))
                    self.save("last")
                    if better:
                        self.save("best")
                    # rank 0 keeps the validation record, so its patience decides
                    stop = self.group.agree_stop(self.out_of_patience() or stop)
                    self.opt.lr = self.group.from_root(self.opt.lr)  # as rank 0's dev BLEU says
                    self.group.check_same("the parameters", self.fingerprint)
                if stop:
                    break
            else:
                stop = f"{self.args.epochs} epochs done"
        except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, or either on any rank
            bar.close()
            self.save_interrupted(e, meter)
            raise
        bar.close()
        return self.finish(stop, self.clock() - start)

    def agree_with_last(self) -> None:
        """On a resume, before it writes anything else: the log and `best` made to agree with
        `last`, the state the run resumes from (and its ``best_bleu`` is the authority).

        A validation appends its log line first, then saves `last`, then `best` if it is better
        (``train``). A run stopped outright between these (``kill -9``, a power cut, a full
        disk) leaves a log line, and maybe a `best`, that `last` does not know of, and the
        resumed run does that validation again. So the log keeps only its lines of steps up to
        `last`'s (rewritten whole, ``write_atomic``): each validation is in it once, as in a run
        never stopped. If `last` has a better dev BLEU than `best` (a stop between the two
        saves), `last` is the step of the best, and `best` is saved from it, as the unbroken run
        saved it. A `best` of a step past `last`'s, which runs of before this order left (they
        saved `best` first), is deleted: it would not belong to a resumed run stopped before that
        step, and one that gets there saves it again, the same. Why trim rather than order the
        writes: a log line written after `last` would be lost by a stop between the two, since
        the resumed run does not validate that step again; written first, it can always be
        dropped and done again."""
        log = self.out / LOG
        if log.is_file():
            with doing("read", log):
                lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for n, line in enumerate(lines, 1) if self._step_of(line, n) <= self.step]
            if len(kept) < len(lines):
                write_atomic(log, "".join(kept).encode("utf-8"))
                print(f"{log}: dropped the lines of {len(lines) - len(kept)} validation(s) "
                      f"past step {self.step}, `last`'s; this run does them again",
                      file=sys.stderr)
        try:
            best = read_meta(self.out, "best")
        except FileNotFoundError:
            best = None
        except (CheckpointError, OSError):
            return  # a `best` that cannot be read is left as it is: nothing to compare
        if best is not None and best["step"] > self.step:
            remove_checkpoint(self.out, "best")
            print(f"{self.out}: removed `best` of step {best['step']}, past `last` (step "
                  f"{self.step}): this run saves it again if it gets there", file=sys.stderr)
        elif self.best_bleu > (-1.0 if best is None else best["best_bleu"]):
            self.save("best")
            print(f"{self.out}: saved `best` of step {self.step} from `last`, which a stop "
                  "between the two had left without it", file=sys.stderr)

    def _step_of(self, line: str, n: int) -> int:
        """The step of line ``n`` of the log; TrainingError if it is not a validation's."""
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            raise TrainingError(f"{self.out / LOG}:{n}: not a validation's line (no step); "
                                "mend or remove it, then resume") from None

    def prepare_out(self) -> None:
        """The run directory, without the temporaries of ended runs' unfinished saves."""
        make_dir(self.out)
        stale = remove_stale_temporaries(self.out)
        if stale:
            print(f"{self.out}: removed {len(stale)} temporary files of ended runs' unfinished "
                  f"saves ({', '.join(p.name for p in stale)})", file=sys.stderr)

    def progress_bar(self) -> tqdm:
        """Updates done of the most this run will reach: --max-steps or the end of --epochs
        (estimated from this epoch's size where --batch-tokens with --sort-pool makes it vary)."""
        to_the_end = max(self.step, self.step - self.pos
                         + (self.args.epochs - self.epoch) * self.epoch_size)
        total = min(self.args.max_steps or to_the_end, to_the_end)
        return tqdm(total=total, initial=self.step, disable=self.args.quiet, unit="step",
                    dynamic_ncols=True, file=sys.stderr)

    def epoch_order(self) -> list[list[int]]:
        """This epoch's batches (pair indices), a function of (seed, epoch) only."""
        a = self.args
        return epoch_batches(self.lengths, a.batch_size, a.seed, self.epoch, a.sort_pool,
                             a.batch_tokens)

    @property
    def epoch_size(self) -> int:
        """Batches in this epoch (with --batch-tokens and --sort-pool, it varies by epoch)."""
        return len(self.order)

    def batches(self) -> Iterator[list[int]]:
        """The batches (pair indices) from the position in the data to the end of --epochs.
        ``train_step`` moves the position; the end of an epoch moves on to the next one."""
        while self.epoch < self.args.epochs:
            while self.pos < self.epoch_size:
                yield self.order[self.pos]
            self.epoch, self.pos = self.epoch + 1, 0
            self.order = self.epoch_order()

    def train_step(self, batch: list[int]) -> tuple[Any, int]:
        """One update on the pairs ``batch``: the loss (on the device) and its target tokens.

        Each rank its share of the pairs; gradients summed over ranks, weighted by tokens, then
        rescaled to L2 norm at most --clip (appendix B.2). Dropout masks come from (seed, step):
        the same on a resume and on every rank."""
        pairs = [self.corpus.train[k] for k in batch]
        masks = model.dropout_masks(self.cfg, len(pairs), self.args.dropout,
                                    np.random.default_rng([self.args.seed, self.step]),
                                    self.backend)
        loss, grads, n_tokens = distributed.loss_and_grads(
            self.group, self.params, self.cfg, self.backend, pairs, masks)
        clip_grad_norm(grads, self.args.clip)
        self.opt.step(self.params, grads)
        self.step += 1
        self.pos += 1
        return loss, n_tokens

    def limit_reached(self, elapsed: float) -> str:
        """Why this run stops after this step ('' if it goes on): --max-steps, --max-time
        (``elapsed`` seconds of this run), or the last batch of the last epoch."""
        a = self.args
        if a.max_steps is not None and self.step >= a.max_steps:
            return f"--max-steps {a.max_steps} reached"
        if a.max_time is not None and elapsed >= 60 * a.max_time:
            return f"--max-time {a.max_time:g} minutes reached"
        if self.pos == self.epoch_size and self.epoch + 1 >= a.epochs:
            return f"{a.epochs} epochs done"  # validated and saved like any stop
        return ""

    def on_grid(self) -> bool:
        """Whether this update is one of every --valid-every: the validations that steer the
        decay and the patience."""
        return self.step % self.args.valid_every == 0

    def validation_due(self, stop: str) -> bool:
        """Every --valid-every updates, and at every stop (so ``last`` holds the final state)."""
        return self.on_grid() or bool(stop)

    def log_due(self) -> bool:
        """The loss is read from the device every ``LOG_EVERY`` updates and at an epoch's end."""
        return self.step % LOG_EVERY == 0 or self.pos == self.epoch_size

    def log(self, meter: Meter, bar: tqdm) -> None:
        """The mean training loss since the last log, shown on the bar; TrainingError if it is
        not finite (nothing saved, so the checkpoints on disk stay good)."""
        loss, tokens_per_s = meter.read()
        if not math.isfinite(loss):
            raise TrainingError(f"training loss became {loss} by step {self.step}: stopped "
                                f"without saving; the checkpoints in {self.out} are untouched "
                                "(a new run with a lower --lr or --clip may go further)")
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:.0f}")

    def out_of_patience(self) -> str:
        """Why to stop after this validation ('' to go on): a dev BLEU of 100, which no later
        validation can beat (so `best` would stay as it is), or --patience validations in a
        row without a better dev BLEU, counted on the --valid-every grid (``validate``)."""
        if self.best_bleu >= PERFECT_BLEU - 1e-9:
            return f"dev BLEU {PERFECT_BLEU:g}: no validation can be better"
        if self.on_grid() and self.bad_validations >= self.args.patience:
            return f"no better dev BLEU in {self.args.patience} validations"
        return ""

    def save_interrupted(self, e: KeyboardInterrupt, meter: Meter) -> None:
        """Ctrl-C or SIGTERM: save ``last`` (unless the loss since the last log is not finite)
        and say how to resume."""
        why = f"stopped by {e}" if isinstance(e, Terminated) else "interrupted"
        if not meter.finite():
            print(f"{why}; the loss was not finite, so nothing was saved in {self.out}",
                  file=sys.stderr)
        else:
            self.save("last")
            print(f"{why}: saved checkpoint {self.out / 'last'} at step {self.step}; "
                  f"continue with --resume --out {self.out}", file=sys.stderr)

    def finish(self, stop: str, elapsed: float) -> dict[str, Any]:
        print(f"stopped: {stop}. {self.step} updates, {elapsed / 60:.1f} minutes.\n"
              f"best dev BLEU {self.best_bleu:.2f}: checkpoint {self.out / 'best'}\n"
              f"translate with: python translate.py --model {self.out} < input.txt",
              file=sys.stderr)
        return dict(step=self.step, epochs=self.epoch + self.pos / self.epoch_size,
                    best_bleu=self.best_bleu, elapsed=elapsed, stop=stop)


@reports_os_errors  # a failure of the system (full disk, unwritable --out): one line, status 1
def main(argv: list[str] | None = None) -> int:
    return run(argv)[0]


def run(argv: list[str] | None = None) -> tuple[int, dict[str, Any] | None]:
    """What ``main`` does: its exit status, and ``Trainer.train``'s result (updates, epochs,
    best dev BLEU, seconds, why it stopped) when the run ended by a rule, else None."""
    ap = build_parser()
    args = ap.parse_args(argv)
    given = given_options(ap, argv)
    if not args.resume:  # a resumed run has its own, checked against the command line
        if args.band and args.variant != "cursors":
            ap.error("--band is for --variant cursors only")
        if args.dropout and args.variant == "cursors":
            ap.error("--dropout is not implemented for --variant cursors")
        if "pair" in given and (args.train_src or args.train_tgt):
            ap.error("--pair chooses a built-in corpus: give it or your own files "
                     "(--train-src ...), not both")
    if args.overwrite and args.resume:
        ap.error("--overwrite starts a new run and --resume continues one: give one of them")
    group = distributed.init()
    one_line = (DataError, CheckpointError, DeviceError, TrainingError, RunInUse)
    # SIGTERM like Ctrl-C; under MPI the session's own handlers take both signals over (every
    # rank sets a flag and all stop after the same step)
    with sigterm_like_ctrl_c(), group.session():  # under MPI: only rank 0 prints
        try:
            with group.together(lambda: claim(args, group.is_root), (*one_line, OSError)):
                trainer = group.together(lambda: Trainer(args, group, given=given),
                                         (*one_line, OSError))
                result = trainer.train()
        except (*one_line, distributed.RankError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2, None
        except Terminated as e:
            return 128 + e.signum, None  # 143, as if the signal had ended the process
        except KeyboardInterrupt:
            return 128 + signal.SIGINT, None  # 130
    return 0, result
