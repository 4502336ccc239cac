"""Quality at equal time: this code with its defaults against a plain PyTorch training loop
of the PyTorch user's model, on a corpus, each alone for the same wall time.

    python -m minirnnsearch.bench --compare torch --corpus DIR --minutes M
        [--pair SRC-TGT] [--preset small] [--emb E --hidden H --align A --maxout L]
        [--batch B] [--vocab V] [--threads N] [--out runs/compare-torch] [--max-steps N]

DIR holds ``train``, ``dev`` and ``test`` files named ``SPLIT.LANG`` (``train.en``,
``train.fr``, ...), as ``python -m minirnnsearch.data.real --out DIR`` and the built-in corpus
cache (``.cache/corpus/builtin-v1-seed1234-50000``) write them; ``--pair SRC-TGT`` names the
languages (default: the two languages of DIR's train files, English as the source).

(a) This code: ``train.py`` with its own defaults (the small preset, PyTorch's fan-in
    initialisation, word vocabularies of 30,000, batches of 80 cut from the whole epoch sorted
    by length; DIR's files are a user's own, the built-in corpus's cache too, so Adam at 1e-3
    and dropout 0.2, the rate halved after each validation without a better dev BLEU; the
    gradient clipped to norm 1, validation on 500 dev sentences every 500 updates) except for
    the sizes given here, and ``--max-time M``; then the test set translated from its best
    checkpoint, what ``translate.py`` uses by default, greedy and with beam 5.
(b) PyTorch: ``reference_torch.UserRNNsearch`` with the same sizes, trained on the same pairs
    with the same vocabularies (``traindata.load_corpus``: the same tokens, the same --max-len
    filter) by a plain loop with PyTorch's usual defaults: its own initialisation (seeded),
    Adam at 1e-3, the gradient clipped to norm 1 as here, batches of the same size cut from
    the pairs sorted by length (source, then target) and shuffled in order every epoch, no
    validation; then the test set decoded greedily, batch by batch.

Each side runs in its own process, one after the other (never both at once), with the same
threads (``--threads``; default: the BLAS threads of this process): this code's BLAS through
OMP/OPENBLAS/MKL_NUM_THREADS, PyTorch through ``torch.set_num_threads``. The budget counts from
the first update (data and model ready) and is checked after every update, so each side stops
after the update that crosses M minutes (this code then validates and saves once more; its
``train_minutes`` include that). ``--max-steps`` stops both after N updates (for tests). Both
sides' output is detokenised by the same code (``data/tokenize.py``) and scored the same way:
sacrebleu's corpus BLEU with its 13a tokenisation against the raw test references, the
signature printed. One JSON line: per side updates, epochs, training minutes, sizes and test
BLEU; the hypotheses stay in ``OUT/ours`` and ``OUT/torch``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu

from .. import blas, decode, model, training
from ..checkpoint import load_checkpoint
from ..cli import positive_int
from ..data.batching import make_batch
from ..data.io import DataError, read_lines, read_parallel
from ..data.subword import segmenters
from ..oserrors import make_dir, reports_os_errors, write_atomic
from ..traindata import load_corpus

SIDES = ("ours", "torch")
TORCH_LR = 1e-3       # torch.optim.Adam's default
TORCH_CLIP = 1.0      # as train.py's --clip
DECODE_BATCH = 32     # sentences decoded together, translate.py's default
BEAM = 5
# greedy decoding's length limit on both sides: decode.greedy_search's own defaults
_GREEDY = inspect.signature(decode.greedy_search).parameters
MAX_LEN_RATIO = _GREEDY["max_len_ratio"].default
MAX_LEN_OFFSET = _GREEDY["max_len_offset"].default


def corpus_files(corpus: str | Path, pair: str | None) -> tuple[str, str, dict[str, Path]]:
    """(source language, target language, {"train_src": path, ..., "test_tgt": path}) of a
    corpus directory; DataError naming what is missing."""
    d = Path(corpus)
    if not d.is_dir():
        raise DataError(f"{d}: --corpus must be a directory of train/dev/test files")
    if pair is None:
        langs = sorted({p.name.split(".")[1] for p in d.glob("train.*")
                        if p.is_file() and p.name.count(".") == 1})
        if len(langs) != 2:
            raise DataError(f"{d}: train files for {', '.join(langs) or 'no language'}; name "
                            "the two languages with --pair SRC-TGT")
        src, tgt = ("en", langs[1 - langs.index("en")]) if "en" in langs else langs
    else:
        src, _, tgt = pair.partition("-")
        if not src or not tgt or src == tgt:
            raise DataError(f"--pair {pair}: expected SRC-TGT, two languages, e.g. en-fr")
    files = {f"{split}_{side}": d / f"{split}.{lang}" for split in ("train", "dev", "test")
             for side, lang in (("src", src), ("tgt", tgt))}
    for path in files.values():
        if not path.is_file():
            raise DataError(f"{path}: no such file (--corpus needs train, dev and test files "
                            f"named SPLIT.{src} and SPLIT.{tgt})")
    return src, tgt, files


def train_settings(args: argparse.Namespace, files: dict[str, Path], out: Path
                   ) -> training.Settings:
    """The training settings of a side: the corpus, the budget, and only the sizes given (the
    side's process gets them as train.py options, ``Settings.argv``)."""
    sizes = {key: getattr(args, given) for key, given in (
        ("emb", "emb"), ("hidden", "hidden"), ("align", "align"), ("maxout", "maxout"),
        ("batch_size", "batch"), ("vocab_size", "vocab"), ("max_steps", "max_steps"))
        if getattr(args, given) is not None}
    return training.Settings(
        train_src=str(files["train_src"]), train_tgt=str(files["train_tgt"]),
        dev_src=str(files["dev_src"]), dev_tgt=str(files["dev_tgt"]), max_time=args.minutes,
        out=str(out), quiet=True, device=args.device, preset=args.preset, **sizes)


def _sizes(cfg: model.Config, args: training.Settings) -> dict[str, int]:
    return dict(emb=cfg.emb, hidden=cfg.hidden, align=cfg.align, maxout=cfg.maxout,
                src_vocab=cfg.src_vocab, tgt_vocab=cfg.tgt_vocab, batch=args.batch_size,
                max_len=args.max_len)


def _write(path: Path, lines: list[str]) -> str:
    write_atomic(path, "".join(line + "\n" for line in lines).encode("utf-8"))
    return str(path)


def run_ours(settings: training.Settings, test_src: list[str], name: str) -> dict[str, Any]:
    """Side (a), in its child process: train.py's training, then the test set translated from
    the best checkpoint, greedy and with beam 5."""
    from ..translation import Translator

    result = training.train(settings)
    s = result.settings  # lr and dropout as numbers, the defaults included
    tr = Translator(s.out, "best", s.device)
    out = Path(s.out)
    hyps = {}
    for key, beam in (("greedy", 1), (f"beam{BEAM}", BEAM)):
        results = tr.translate(test_src, beam=beam, batch_size=DECODE_BATCH, name=name)
        hyps[key] = _write(out / f"test.{key}.txt", [hs[0][0] for hs in results])
    meta = load_checkpoint(out, "best")[2]
    return dict(updates=result.updates, epochs=round(result.epochs, 3),
                train_minutes=round(result.seconds / 60, 3), stop=result.stop,
                optimizer=s.optimizer, lr=s.lr, lr_decay=s.lr_decay, clip=s.clip,
                dropout=s.dropout,
                checkpoint="best", checkpoint_step=meta["step"],
                sizes=_sizes(model.Config.from_dict(meta["config"]), s), hypotheses=hyps)


def length_sorted_batches(pairs: list[tuple[list[int], list[int]]], batch_size: int
                          ) -> list[list[int]]:
    """Batches of pair indices cut from the pairs sorted by (source, target) length."""
    order = sorted(range(len(pairs)), key=lambda k: (len(pairs[k][0]), len(pairs[k][1])))
    return [order[a : a + batch_size] for a in range(0, len(order), batch_size)]


def run_torch(args: training.Settings, test_src: list[str], threads: int) -> dict[str, Any]:
    """Side (b), in its child process: the PyTorch user's model trained by a plain loop for
    the budget, then the test set decoded greedily."""
    import torch

    from ..reference_torch import UserRNNsearch

    torch.set_num_threads(threads)
    corpus, src_vocab, tgt_vocab = load_corpus(args, None)
    given = {k: getattr(args, k) for k in ("emb", "hidden", "align", "maxout")
             if getattr(args, k) is not None}
    cfg = model.Config.from_preset(args.preset, src_vocab=len(src_vocab),
                                   tgt_vocab=len(tgt_vocab), **given)
    torch.manual_seed(args.seed)
    net = UserRNNsearch(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=TORCH_LR)
    batches = length_sorted_batches(corpus.train, args.batch_size)
    max_steps = args.max_steps or float("inf")
    step, epoch, pos, stop = 0, 0, 0, ""
    start = time.perf_counter()
    while not stop:
        if epoch >= args.epochs:
            stop = f"{args.epochs} epochs done"
            break
        order = np.random.default_rng([args.seed, epoch]).permutation(len(batches))
        while pos < len(order) and not stop:
            pairs = [corpus.train[j] for j in batches[order[pos]]]
            b = make_batch([s for s, _ in pairs], [t for _, t in pairs])
            loss = net(*(torch.as_tensor(a) for a in b))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), TORCH_CLIP)
            opt.step()
            step, pos = step + 1, pos + 1
            if step >= max_steps:
                stop = f"--max-steps {args.max_steps} reached"
            elif time.perf_counter() - start >= 60 * args.max_time:
                stop = f"--max-time {args.max_time:g} minutes reached"
        if pos >= len(order):
            epoch, pos = epoch + 1, 0
    elapsed = time.perf_counter() - start
    net.eval()
    src_seg, tgt_seg = segmenters(args.out, None)
    ids = [src_vocab.encode(src_seg.encode(line)[: args.max_len]) for line in test_src]
    out = [""] * len(ids)
    order = sorted(range(len(ids)), key=lambda k: len(ids[k]))
    for a in range(0, len(order), DECODE_BATCH):
        idx = order[a : a + DECODE_BATCH]
        b = make_batch([ids[k] for k in idx], [[] for _ in idx])
        limit = decode.max_lengths(b.src_mask, MAX_LEN_RATIO, MAX_LEN_OFFSET)   # (b,)
        ys = net.greedy(torch.as_tensor(b.src), torch.as_tensor(b.src_mask), int(limit.max()))
        for r, k in enumerate(idx):
            out[k] = tgt_seg.decode(tgt_vocab.decode(ys[r, : limit[r]].tolist()))
    make_dir(args.out)
    return dict(updates=step, epochs=round(epoch + pos / len(batches), 3),
                train_minutes=round(elapsed / 60, 3), stop=stop, optimizer="adam",
                lr=TORCH_LR, clip=TORCH_CLIP, init="PyTorch's default (torch.manual_seed(seed))",
                torch_version=torch.__version__, threads=torch.get_num_threads(),
                sizes=_sizes(cfg, args),
                hypotheses={"greedy": _write(Path(args.out) / "test.greedy.txt", out)})


def run_side(side: str, argv: list[str], files: dict[str, Path], threads: int
             ) -> dict[str, Any]:
    """One side in its own process (``python -m minirnnsearch.bench.quality --side``), its stderr
    shown as it goes; its JSON line."""
    cmd = [sys.executable, "-m", "minirnnsearch.bench.quality", "--side", side, "--test-src",
           str(files["test_src"]), "--test-tgt", str(files["test_tgt"]), "--threads",
           str(threads), *argv]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True,
                         env=blas.thread_env(threads, None if side == "ours" else 1))
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise DataError(f"--compare torch --corpus: the {side} process failed (status "
                        f"{out.returncode}; its messages are above)")
    return json.loads(lines[-1])


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Both sides, one after the other, and both scored by sacrebleu the same way."""
    src, tgt, files = corpus_files(args.corpus, args.pair)
    out = Path(args.out)
    for side in SIDES:
        if (out / side).exists() and any((out / side).iterdir()):
            raise DataError(f"{out / side}: holds an earlier comparison; choose another --out "
                            "or remove it")
    results = {side: run_side(side, train_settings(args, files, out / side).argv(), files,
                              args.threads)
               for side in SIDES}
    refs = [t for _, t in read_parallel(files["test_src"], files["test_tgt"])[0]]
    bleu = sacrebleu.BLEU(tokenize="13a")
    for r in results.values():
        for key, path in r["hypotheses"].items():
            hyps = read_lines(path)
            if len(hyps) != len(refs):
                raise DataError(f"{path}: {len(hyps)} lines for {len(refs)} test references")
            r[f"bleu_{key}"] = round(bleu.corpus_score(hyps, [refs]).score, 2)
    return dict(corpus=str(args.corpus), pair=f"{src}-{tgt}", minutes=args.minutes,
                max_steps=args.max_steps, threads=args.threads, test_sentences=len(refs),
                sacrebleu=str(bleu.get_signature()), **results)


@reports_os_errors
def main(argv: list[str] | None = None) -> int:
    """A side's child process: ``--side ours|torch --test-src F --test-tgt F --threads N``
    followed by train.py's arguments; prints the side's JSON line."""
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.bench.quality",
                                 description="One side of `python -m minirnnsearch.bench "
                                             "--compare torch --corpus DIR` (see its help).")
    ap.add_argument("--side", required=True, choices=SIDES)
    ap.add_argument("--test-src", required=True)
    ap.add_argument("--test-tgt", required=True)
    ap.add_argument("--threads", type=positive_int, required=True)
    own, rest = ap.parse_known_args(argv)
    settings = training.parse(rest)[0]
    try:
        test_src = [s for s, _ in read_parallel(own.test_src, own.test_tgt)[0]]
        result = (run_ours(settings, test_src, own.test_src) if own.side == "ours" else
                  run_torch(settings, test_src, own.threads))
    except training.ONE_LINE as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
