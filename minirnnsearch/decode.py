"""Greedy and batched beam search over the model's exposed encoder and decoder step.

Beam search keeps K hypotheses per sentence; all sentences and all their beams advance as one
batch of B*K rows through ``model.decoder_step``. Each step:

    total = score[row] + log p(y | row)                 (B*K, V)  on the device
    best 2K of each sentence's K*V candidates            (B, 2K)   backend.topk, to the host
    a candidate ending in </s> among the best K is set aside as finished (lower-ranked endings
    are dropped); the best K candidates that do not end become the beams
    rows of the state and the encoder output are reordered to their parents (one ``take``)

A sentence is done when it has K finished hypotheses, when (alpha = 0) no live beam can beat
its nbest-th finished one, or at its maximum length int(ratio * source words + offset), where the
live beams are finished as they are. Final scores are length-normalised: logprob / len^alpha
(len counts </s>; alpha 0 keeps the raw log-probability). Only (B*K,)-sized arrays cross to the
host each step; the (B*K, V) log-probabilities stay on the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import model
from .backend import Array, Backend, backend_of, namespace, to_host, topk
from .data.batching import make_batch
from .data.vocab import BOS_ID, EOS_ID


@dataclass
class Hypothesis:
    tokens: list[int]        # target ids, without </s>
    score: float             # logprob / len^alpha
    logprob: float           # sum of log p over the tokens (and </s> when finished)
    attention: np.ndarray    # (len(tokens) [+1 for </s>], S_real) alignment rows
    finished: bool = True    # ended with </s> (False: cut at the maximum length)


def max_lengths(src_mask: Array, ratio: float, offset: int) -> np.ndarray:
    """Per sentence, the most output tokens (</s> included): int(ratio * real source words
    + offset), at least 1; (B,) host ints."""
    words = to_host(src_mask).sum(axis=1) - 1  # without </s>
    return np.maximum(1, (ratio * words + offset).astype(int))


def _normalise(logprob: float, length: int, alpha: float) -> float:
    return logprob / max(length, 1) ** alpha if alpha else logprob


def greedy_search(packed: dict[str, Array], cfg: model.Config, src: Array, src_mask: Array,
                  max_len_ratio: float = 2.0, max_len_offset: int = 10
                  ) -> list[list[Hypothesis]]:
    """The most probable next word at every step; one hypothesis per sentence (in a list, like
    ``beam_search``)."""
    xp = namespace(src)
    B = src.shape[0]
    enc, s, _ = model.encode(packed, cfg, src, src_mask)
    lengths = to_host(enc.lengths)
    limit = max_lengths(src_mask, max_len_ratio, max_len_offset)
    y = backend_of(src).asarray(np.full(B, BOS_ID), dtype=src.dtype)
    tokens = np.zeros((B, 0), dtype=np.int64)
    logprob, att = np.zeros(B), []
    done = np.zeros(B, dtype=bool)
    ends = limit.copy()
    for i in range(int(limit.max())):
        logp, s, alpha = model.decoder_step(packed, cfg, enc, y, s, i)     # (B,V), (B,H), (B,S)
        y = xp.argmax(logp, axis=1)                                       # (B,)
        y_host = to_host(y)
        lp = to_host(xp.take_along_axis(logp, y[:, None], axis=1)[:, 0])
        logprob += np.where(done, 0.0, lp)
        tokens = np.concatenate([tokens, y_host[:, None]], axis=1)
        att.append(to_host(alpha))
        newly = ~done & ((y_host == EOS_ID) | (i + 1 >= limit))
        ends[newly] = i
        done |= newly
        if done.all():
            break
    att_all = np.stack(att, axis=1)                                       # (B,steps,S)
    out = []
    for b in range(B):
        n = int(ends[b])
        finished = tokens[b, n] == EOS_ID
        words = tokens[b, :n].tolist() if finished else tokens[b, : n + 1].tolist()
        length = n + 1
        out.append([Hypothesis(words, _normalise(logprob[b], length, 0.0), float(logprob[b]),
                               att_all[b, :length, : lengths[b]], bool(finished))])
    return out


def beam_search(packed: dict[str, Array], cfg: model.Config, src: Array, src_mask: Array,
                beam: int = 5, alpha: float = 0.0, nbest: int = 1, max_len_ratio: float = 2.0,
                max_len_offset: int = 10) -> list[list[Hypothesis]]:
    """The ``nbest`` best hypotheses of each sentence, best first (see the module docstring)."""
    xp = namespace(src)
    dev = backend_of(src)
    B, K = src.shape[0], beam
    V = cfg.tgt_vocab
    enc, s0, _ = model.encode(packed, cfg, src, src_mask)
    lengths = to_host(enc.lengths)
    limit = max_lengths(src_mask, max_len_ratio, max_len_offset)
    rows = dev.asarray(np.repeat(np.arange(B), K), dtype="int64")         # (B*K,) sentence
    enc = model.select(enc, rows)
    s = xp.take(s0, rows, axis=0)                                         # (B*K,H)
    y = dev.asarray(np.full(B * K, BOS_ID), dtype=src.dtype)              # (B*K,)
    score = np.full((B, K), -np.inf)
    score[:, 0] = 0.0                                                     # one live beam at first
    hist = np.zeros((B * K, 0), dtype=np.int64)                           # tokens so far
    att = np.zeros((B * K, 0, src.shape[1]))                              # alignments so far
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    for i in range(int(limit.max())):
        logp, s, alpha_i = model.decoder_step(packed, cfg, enc, y, s, i)  # (B*K,V)
        total = dev.asarray(score.reshape(B * K, 1), dtype=logp.dtype) + logp  # (B*K,V)
        vals, idx = topk(xp.reshape(total, (B, K * V)), 2 * K)            # (B,2K)
        vals, idx = to_host(vals).astype(np.float64), to_host(idx)
        att = np.concatenate([att, to_host(alpha_i)[:, None, :]], axis=1)
        parent = np.zeros((B, K), dtype=np.int64)
        token = np.full((B, K), EOS_ID, dtype=np.int64)
        new_score = np.full((B, K), -np.inf)
        for b in np.flatnonzero(~done):
            live = 0
            for rank, (v, c) in enumerate(zip(vals[b], idx[b], strict=True)):
                if not np.isfinite(v):
                    break
                row, tok = b * K + c // V, int(c % V)
                if tok == EOS_ID:
                    if rank < K:  # an ending among the K best; lower ones are not taken
                        finished[b].append(Hypothesis(
                            hist[row].tolist(), _normalise(v, hist.shape[1] + 1, alpha),
                            float(v), att[row, :, : lengths[b]]))
                elif live < K:
                    parent[b, live], token[b, live], new_score[b, live] = row, tok, v
                    live += 1
            if i + 1 >= limit[b]:  # out of length: the live beams end here as they are
                for k in range(live):
                    row = parent[b, k]
                    finished[b].append(Hypothesis(
                        [*hist[row].tolist(), int(token[b, k])],
                        _normalise(new_score[b, k], hist.shape[1] + 1, alpha),
                        float(new_score[b, k]), att[row, :, : lengths[b]], finished=False))
                live = 0
            # alpha 0: live scores only fall, so once the nbest-th finished one beats them all
            kth_done = sorted((h.score for h in finished[b]), reverse=True)[nbest - 1 : nbest]
            if (len(finished[b]) >= K or live == 0
                    or (alpha == 0 and kth_done and kth_done[0] >= new_score[b, :live].max())):
                done[b] = True
        if done.all():
            break
        new_score[done] = -np.inf
        parent_rows = parent.reshape(B * K)
        hist = np.concatenate([hist[parent_rows], token.reshape(B * K, 1)], axis=1)
        att = att[parent_rows]
        score = new_score
        pr = dev.asarray(parent_rows, dtype="int64")
        s = xp.take(s, pr, axis=0)                                        # (B*K,H) reorder
        y = dev.asarray(token.reshape(B * K), dtype=src.dtype)
    return [sorted(f, key=lambda h: -h.score)[:nbest] for f in finished]


def decode_sentences(packed: dict[str, Array], cfg: model.Config, backend: Backend,
                     sentences: list[list[int]], batch_size: int = 32, beam: int = 1,
                     alpha: float = 0.0, nbest: int = 1, on_batch: Callable[[int], Any] | None
                     = None) -> list[list[Hypothesis]]:
    """Decode source id sentences (without </s>) in batches of similar length, greedy when
    ``beam`` is 1; the n-best lists come back in input order. ``on_batch(n)`` is called after
    each batch of n sentences (a progress bar's ``update``)."""
    order = sorted(range(len(sentences)), key=lambda k: len(sentences[k]))
    out: list[list[Hypothesis]] = [[] for _ in sentences]
    for a in range(0, len(order), batch_size):
        idx = order[a : a + batch_size]
        b = make_batch([sentences[k] for k in idx], [[] for _ in idx]).to(backend)
        if beam == 1:
            hyps = greedy_search(packed, cfg, b.src, b.src_mask)
        else:
            hyps = beam_search(packed, cfg, b.src, b.src_mask, beam=beam, alpha=alpha,
                               nbest=nbest)
        for k, hs in zip(idx, hyps, strict=True):
            out[k] = hs
        if on_batch is not None:
            on_batch(len(idx))
    return out
