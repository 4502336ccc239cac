"""Batches with padding masks, and the paper's bucketing (appendix B.2): take 20 batches' worth
of pairs, sort them by length, cut them into 20 batches, and shuffle the batches (or sort a
pool of another number of batches: all of the epoch's, for the least padding; or cut the
sorted pool by padded tokens rather than pairs, ``cut``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .vocab import EOS_ID, PAD_ID

CHUNK_BATCHES = 20  # batches sorted together (paper: 1600 pairs = 20 x 80)


class Batch(NamedTuple):
    """src (B,S), tgt (B,T) int64 ids, each sentence ending in </s>, right-padded with <pad>;
    src_mask (B,S), tgt_mask (B,T) float32, 1.0 on real tokens (</s> included)."""

    src: Any
    src_mask: Any
    tgt: Any
    tgt_mask: Any

    def to(self, backend: Any) -> Batch:
        """The same batch with its arrays on ``backend``'s device (one copy each)."""
        return Batch(*(backend.asarray(a) for a in self))

    @property
    def n_tokens(self) -> int:
        """Real target tokens (host arrays only)."""
        return int(np.sum(self.tgt_mask))


def _pad(sentences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    length = max(len(s) for s in sentences) + 1
    ids = np.full((len(sentences), length), PAD_ID, dtype=np.int64)
    mask = np.zeros((len(sentences), length), dtype=np.float32)
    for b, s in enumerate(sentences):
        ids[b, : len(s)] = s
        ids[b, len(s)] = EOS_ID
        mask[b, : len(s) + 1] = 1.0
    return ids, mask


def make_batch(src_ids: list[list[int]], tgt_ids: list[list[int]]) -> Batch:
    """A padded batch from id lists (without </s>; it is added here)."""
    if len(src_ids) != len(tgt_ids) or not src_ids:
        raise ValueError("make_batch needs as many target as source sentences, at least one")
    src, src_mask = _pad(src_ids)
    tgt, tgt_mask = _pad(tgt_ids)
    return Batch(src, src_mask, tgt, tgt_mask)


def filter_by_length(pairs: list[tuple[list[int], list[int]]], max_len: int
                     ) -> list[tuple[list[int], list[int]]]:
    """The pairs whose source and target each have at most ``max_len`` tokens (before </s>)."""
    return [(s, t) for s, t in pairs if len(s) <= max_len and len(t) <= max_len]


def pool_pairs(n_pairs: int, batch_size: int, pool: int) -> int:
    """Pairs sorted together: ``pool`` batches' worth, or with ``pool`` 0 all ``n_pairs``."""
    return batch_size * pool if pool else max(n_pairs, 1)


def cut(chunk: list[int], lengths: list[tuple[int, int]], batch_size: int, tokens: int = 0
        ) -> list[list[int]]:
    """``chunk`` (pair indices sorted by length) cut into consecutive batches: ``batch_size``
    pairs each, or with ``tokens`` > 0 as many pairs as fit in ``tokens`` cells of the padded
    batch on either side (pairs x (longest sentence + </s>), as Nematus' --token_batch_size and
    OpenNMT-py's -batch_type tokens count), at least one pair each."""
    if not tokens:
        return [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    batches: list[list[int]] = []
    longest = 0  # of the last batch, </s> included
    for k in chunk:
        width = max(lengths[k]) + 1
        if batches and max(longest, width) * (len(batches[-1]) + 1) <= tokens:
            batches[-1].append(k)
        else:
            batches.append([k])
            longest = 0
        longest = max(longest, width)
    return batches


def epoch_batches(lengths: list[tuple[int, int]], batch_size: int, seed: int, epoch: int,
                  pool: int = CHUNK_BATCHES, tokens: int = 0) -> list[list[int]]:
    """The batches of one epoch as lists of pair indices, a function of (seed, epoch) only.

    Shuffle the pairs; take ``batch_size * pool`` at a time (pool 0: all of them), sort them
    by (source, target) length, ``cut`` them into batches (of ``batch_size`` pairs, or of up to
    ``tokens`` padded tokens a side); shuffle the order of all the epoch's batches. The larger
    the pool, the less padding, and the more alike a batch's sentences from one epoch to the
    next."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches = []
    step = pool_pairs(len(lengths), batch_size, pool)
    for a in range(0, len(order), step):
        chunk = sorted(order[a : a + step].tolist(), key=lambda k: lengths[k])
        batches += cut(chunk, lengths, batch_size, tokens)
    return [batches[k] for k in rng.permutation(len(batches))]


def padding_share(lengths: list[tuple[int, int]], batches: list[list[int]]) -> float:
    """The share of the batches' source and target cells (</s> included) that are padding."""
    real = cells = 0
    for b in batches:
        for side in (0, 1):
            real += sum(lengths[k][side] + 1 for k in b)
            cells += len(b) * (max(lengths[k][side] for k in b) + 1)
    return 1 - real / cells if cells else 0.0
