"""The data of a run: the parallel text read (or the built-in corpus generated), the subword
model trained (``--subword``), the vocabularies built, every sentence turned into ids; and the
dev loss, the mean negative log-likelihood per dev target token."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import model
from .backend import Backend, to_host
from .data.batching import filter_by_length, make_batch
from .data.corpus import builtin_corpus, target_language
from .data.io import DataError, read_parallel
from .data.subword import Segmenter, WordSegmenter, segmenters, train_subword
from .data.vocab import Vocab
from .settings import Settings

DEFAULT_CORPUS_CACHE = Path(".cache") / "corpus"


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


def load_corpus(s: Settings, vocabs: tuple[Vocab, Vocab] | None,
                subword: dict | None = None) -> tuple[Corpus, Vocab, Vocab]:
    """Read (or generate) the data, build the subword model (``--subword``) and the
    vocabularies unless given (a resumed run keeps its own), and turn every sentence into
    ids."""
    if s.train_src or s.train_tgt:
        if not (s.train_src and s.train_tgt and s.dev_src and s.dev_tgt):
            raise DataError("--train-src, --train-tgt, --dev-src and --dev-tgt go together")
        paths = dict(train_src=s.train_src, train_tgt=s.train_tgt,
                     dev_src=s.dev_src, dev_tgt=s.dev_tgt)
    else:
        files = builtin_corpus(DEFAULT_CORPUS_CACHE, seed=1234, pair=s.pair)
        tgt = target_language(s.pair)
        paths = dict(train_src=files["train.en"], train_tgt=files[f"train.{tgt}"],
                     dev_src=files["dev.en"], dev_tgt=files[f"dev.{tgt}"])
    raw = _read(paths["train_src"], paths["train_tgt"])
    if subword is None and vocabs is None and s.subword:
        subword = train_subword([line for pair in raw for line in pair], s.out, s.subword)
    src_seg, tgt_seg = segmenters(s.out, subword)
    train = [(src_seg.encode(en), tgt_seg.encode(tr)) for en, tr in raw]
    dev = _read(paths["dev_src"], paths["dev_tgt"])
    if vocabs is None:
        # with subword units every piece of the model counts once more, so each is in
        # (while --vocab-size allows): no text has an <unk> then
        vocabs = (Vocab.build([*(en for en, _ in train), src_seg.pieces()], s.vocab_size),
                  Vocab.build([*(tr for _, tr in train), tgt_seg.pieces()], s.vocab_size))
    src_vocab, tgt_vocab = vocabs
    ids = [(src_vocab.encode(en), tgt_vocab.encode(tr)) for en, tr in train]
    kept = filter_by_length(ids, s.max_len)
    if not kept:
        raise DataError(f"{paths['train_src']}: no training pair has at most --max-len "
                        f"{s.max_len} tokens on both sides")
    dev = dev[: s.valid_size]
    corpus = Corpus(kept, [src_vocab.encode(src_seg.encode(en)) for en, _ in dev],
                    [tgt_vocab.encode(tgt_seg.encode(tr)) for _, tr in dev], [tr for _, tr in dev],
                    tgt_seg, subword)
    print(f"data: {len(kept)} training pairs ({len(ids) - len(kept)} longer than {s.max_len} "
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
