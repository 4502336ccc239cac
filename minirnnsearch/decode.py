"""Greedy and batched beam search over the model's exposed encoder and decoder step.

Shapes: B sentences, K beam, n = b*K rows of the b sentences still searching, V target
vocabulary, S padded source length, H hidden.

Beam search keeps K live hypotheses per sentence; all sentences and all their beams advance as
one batch of n rows through ``model.decoder_step``. Step i:

    total = score[row] + log p(y | row)                  (n,V)     on the device
    best 2K of each sentence's K*V candidates            (b,2K)    backend.topk, to the host
    an ending (</s>) among the best K is set aside as a finished hypothesis (lower-ranked
    endings are dropped); the best K candidates that do not end become the new live rows
    state = take_rows(state, parents)                    (n,...)   reorder to the parents
                                                                   (s_i (n,H); for the cursors
                                                                   a tuple with the forward
                                                                   vector (n,S) and more)

At most K of the 2K candidates end (one </s> per row), so K live rows always remain. A sentence
is done when it has K finished hypotheses, or when no live row can beat its nbest-th finished
one (a live row of log-probability lp can at best reach lp / max_len^alpha: log-probabilities
only fall), or at its maximum length int(ratio * source words + offset) output tokens (</s>
included), where its live rows are ended as they are (``finished=False``). Done sentences leave
the batch. Final scores are length-normalised: logprob / len^alpha (len counts </s>; alpha 0
keeps the raw log-probability).

Per step only (b,2K) candidates cross to the host; the (n,V) log-probabilities stay on the
device, and so do the alignments (n,S) until one transfer at the end. Tokens and alignment rows
of a hypothesis are read back through its parents (back-pointers), not copied every step.
Greedy search takes the argmax at every step and returns the same ``Hypothesis`` lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import model
from .backend import Array, Backend, backend_of, namespace, to_host, topk
from .data.batching import make_batch
from .data.vocab import BOS_ID, EOS_ID
from .encoder import select


@dataclass
class Hypothesis:
    tokens: list[int]        # target ids, without </s>
    score: float             # logprob / len^alpha
    logprob: float           # sum of log p over the tokens (and </s> when finished)
    attention: np.ndarray | None  # (len(tokens) [+1 for </s>], S_real) alignment rows;
                                  # None for a model without alignment (encdec)
    finished: bool = True    # ended with </s> (False: cut at the maximum length)


def max_lengths(src_mask: Array, ratio: float, offset: int) -> np.ndarray:
    """Per sentence, the most output tokens (</s> included): int(ratio * real source words
    + offset), at least 1; (B,) host ints. Source words do not count the source </s>."""
    words = to_host(src_mask).sum(axis=1) - 1  # without </s>
    return np.maximum(1, (ratio * words + offset).astype(int))


def _normalise(logprob: float, length: int, alpha: float) -> float:
    return logprob / max(length, 1) ** alpha if alpha else logprob


def _packed(params: dict[str, Array]) -> dict[str, Array]:
    """``pack_params(params)`` unless that was done already."""
    return params if "dec.W_x" in params else model.pack_params(params)


def take_rows(state: Any, idx: Array) -> Any:
    """Rows ``idx`` (n,) of a decoder state: one (B,...) array, or a tuple of them (a
    NamedTuple keeps its type), each taken along its first axis."""
    xp = namespace(idx)
    if isinstance(state, tuple):
        return type(state)(*(xp.take(a, idx, axis=0) for a in state))
    return xp.take(state, idx, axis=0)


def greedy_search(params: dict[str, Array], cfg: model.Config, src: Array, src_mask: Array,
                  max_len_ratio: float = 2.0, max_len_offset: int = 10
                  ) -> list[list[Hypothesis]]:
    """The most probable next word at every step; one hypothesis per sentence (in a list, like
    ``beam_search``). ``params`` raw or packed; src (B,S) ids and src_mask (B,S) on its device."""
    packed = _packed(params)
    xp = namespace(src)
    B = src.shape[0]
    enc, s, _ = model.encode(packed, cfg, src, src_mask)                  # s (B,H) s_0
    lengths = to_host(enc.lengths)                                        # (B,) with </s>
    limit = max_lengths(src_mask, max_len_ratio, max_len_offset)          # (B,)
    y = backend_of(src).asarray(np.full(B, BOS_ID), dtype=src.dtype)      # (B,) y_0 = <s>
    tokens, logps, alphas = [], [], []
    end = np.full(B, -1)                                                  # (B,) last step
    for i in range(int(limit.max())):
        logp, s, alpha_i = model.decoder_step(packed, cfg, enc, y, s, i)  # (B,V) (B,H) (B,S)
        y = xp.argmax(logp, axis=1)                                       # (B,)
        logps.append(xp.take_along_axis(logp, y[:, None], axis=1)[:, 0])  # (B,) stays on device
        alphas.append(alpha_i)
        tokens.append(to_host(y))                                         # (B,) to the host
        end[(end < 0) & ((tokens[-1] == EOS_ID) | (i + 1 >= limit))] = i
        if (end >= 0).all():
            break
    tokens_h = np.stack(tokens, axis=1)                                   # (B,steps)
    logp_h = to_host(xp.stack(logps, axis=1)).astype(np.float64)          # (B,steps)
    att = None if alphas[0] is None else to_host(xp.stack(alphas, axis=1))  # (B,steps,S)
    out = []
    for b in range(B):
        n = int(end[b]) + 1                                               # output tokens
        finished = bool(tokens_h[b, n - 1] == EOS_ID)
        lp = float(logp_h[b, :n].sum())
        out.append([Hypothesis(tokens_h[b, : n - finished].tolist(), lp, lp,
                               None if att is None else att[b, :n, : lengths[b]], finished)])
    return out


class _End(NamedTuple):
    """A hypothesis that ended at step ``step``: candidate ``token`` of row ``row`` (rows
    numbered as in that step); read back through the parents at the end of the search."""

    score: float     # normalised
    logprob: float
    step: int
    row: int
    token: int       # EOS_ID when finished, else the last word (cut at the maximum length)


def beam_search(params: dict[str, Array], cfg: model.Config, src: Array, src_mask: Array,
                beam: int = 5, alpha: float = 0.0, nbest: int = 1, max_len_ratio: float = 2.0,
                max_len_offset: int = 10) -> list[list[Hypothesis]]:
    """The ``nbest`` best hypotheses of each sentence, best first (see the module docstring).
    ``params`` raw or packed; src (B,S) ids and src_mask (B,S) on its device."""
    if beam < 1 or not 1 <= nbest <= beam:
        raise ValueError(f"beam search needs 1 <= nbest <= beam, got nbest {nbest}, beam {beam}")
    packed = _packed(params)
    xp = namespace(src)
    dev = backend_of(src)
    K, V = beam, cfg.tgt_vocab
    enc, s0, _ = model.encode(packed, cfg, src, src_mask)
    lengths = to_host(enc.lengths)                                        # (B,) with </s>
    limit = max_lengths(src_mask, max_len_ratio, max_len_offset)          # (B,)
    active = np.arange(src.shape[0])                                      # (b,) sentences
    rows = dev.asarray(np.repeat(active, K), dtype="int64")               # (n,) n = b*K
    enc = select(enc, rows)                                         # each sentence K times
    s = xp.take(s0, rows, axis=0)                                         # (n,H)
    y = dev.asarray(np.full(K * active.size, BOS_ID), dtype=src.dtype)   # (n,)
    score = np.full((active.size, K), -np.inf)                            # (b,K) host
    score[:, 0] = 0.0                                                     # one live row at first
    parents: list[np.ndarray] = []   # per step i: (n_{i+1},) row at step i of each new row
    words: list[np.ndarray] = []     # per step i: (n_{i+1},) the token each new row added
    alphas: list[Array] = []         # per step i: (n_i,S) alignment rows, on the device
    n_rows: list[int] = []           # per step i: n_i
    ends: list[list[_End]] = [[] for _ in active]
    for i in range(int(limit.max())):
        logp, s, alpha_i = model.decoder_step(packed, cfg, enc, y, s, i)  # (n,V) (n,H) (n,S)
        alphas.append(alpha_i)
        n_rows.append(logp.shape[0])
        b = active.size
        total = dev.asarray(score.reshape(b * K, 1), dtype=logp.dtype) + logp  # (n,V)
        vals, idx = topk(xp.reshape(total, (b, K * V)), 2 * K)            # (b,2K)
        vals, idx = to_host(vals).astype(np.float64), to_host(idx)
        cand_row = np.arange(b)[:, None] * K + idx // V                   # (b,2K) row at step i
        cand_tok = idx % V                                                # (b,2K)
        parent = np.repeat(np.arange(b)[:, None] * K, K, axis=1)          # (b,K) unused: own row
        token = np.full((b, K), EOS_ID)
        new_score = np.full((b, K), -np.inf)
        done = np.zeros(b, dtype=bool)
        for a, sent in enumerate(active):  # bookkeeping over the 2K candidates, on the host
            live = 0
            for rank in range(vals.shape[1]):
                v, row, tok = vals[a, rank], int(cand_row[a, rank]), int(cand_tok[a, rank])
                if not np.isfinite(v):
                    break
                if tok == EOS_ID:
                    if rank < K:  # an ending among the K best; lower ones are not taken
                        ends[sent].append(_End(_normalise(v, i + 1, alpha), v, i, row, tok))
                elif live < K:
                    parent[a, live], token[a, live], new_score[a, live] = row, tok, v
                    live += 1
            if i + 1 >= limit[sent]:  # out of length: the live rows end here as they are
                ends[sent] += [_End(_normalise(new_score[a, k], i + 1, alpha), new_score[a, k],
                                    i, int(parent[a, k]), int(token[a, k])) for k in range(live)]
                live = 0
            kth = sorted((e.score for e in ends[sent]), reverse=True)[nbest - 1 : nbest]
            done[a] = (live == 0 or len(ends[sent]) >= K or (
                bool(kth) and kth[0] >= new_score[a, :live].max() / limit[sent] ** alpha))
        keep = ~done
        parents.append(parent[keep].reshape(-1))
        words.append(token[keep].reshape(-1))
        if not keep.any():
            break
        if done.any():  # done sentences leave the batch
            kept_rows = (np.flatnonzero(keep)[:, None] * K + np.arange(K)).reshape(-1)
            enc = select(enc, dev.asarray(kept_rows, dtype="int64"))
        active, score = active[keep], new_score[keep]
        s = take_rows(s, dev.asarray(parents[-1], dtype="int64"))        # (n,...) reorder
        y = dev.asarray(words[-1], dtype=src.dtype)                      # (n,)
    att = None if alphas[0] is None else to_host(xp.concat(alphas, axis=0))  # (sum n_i,S) once
    offset = np.cumsum([0, *n_rows])                                      # first row of step i
    return [[_read_back(e, parents, words, att, offset, int(lengths[sent]))
             for e in sorted(ends[sent], key=lambda e: -e.score)[:nbest]]
            for sent in range(src.shape[0])]


def _read_back(e: _End, parents: list[np.ndarray], words: list[np.ndarray],
               att: np.ndarray | None, offset: np.ndarray, src_len: int) -> Hypothesis:
    """Tokens and alignment rows (steps 0..e.step) of an ended hypothesis, through the parents."""
    toks = [] if e.token == EOS_ID else [e.token]
    att_rows = [offset[e.step] + e.row]                                   # rows of ``att``
    row = e.row
    for i in range(e.step - 1, -1, -1):  # row is a row of step i+1, made at step i
        toks.append(int(words[i][row]))
        row = int(parents[i][row])
        att_rows.append(offset[i] + row)
    return Hypothesis(toks[::-1], e.score, e.logprob,
                      None if att is None else att[att_rows[::-1], :src_len], e.token == EOS_ID)


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


def smooth_alignments(packed: dict[str, Array], cfg: model.Config, backend: Backend,
                      sentences: list[list[int]], hyps: list[list[Hypothesis]],
                      batch_size: int = 32) -> list[list[Hypothesis]]:
    """Each finished hypothesis' alignment rows replaced by the model's alignment given the
    whole output, where the family has one (``posterior``; the others' hyps come back as they
    are). For the cursors: the smoothed posterior of the source cursor, p(a_i = j | y, x) by
    forward-backward, instead of the search's predictive p(a_i = j | y_<i, x). A hypothesis cut
    at the maximum length has no end constraint and keeps the predictive rows."""
    posterior = model.family(cfg).posterior
    if posterior is None:
        return hyps
    jobs = [(k, n) for k, hs in enumerate(hyps) for n, h in enumerate(hs) if h.finished]
    out = [list(hs) for hs in hyps]
    for a in range(0, len(jobs), batch_size):
        part = jobs[a : a + batch_size]
        src = [sentences[k] for k, _ in part]
        tgt = [hyps[k][n].tokens for k, n in part]
        gamma = to_host(posterior(packed, cfg, make_batch(src, tgt).to(backend)))
        for b, (k, n) in enumerate(part):
            h = hyps[k][n]
            out[k][n] = Hypothesis(h.tokens, h.score, h.logprob,
                                   gamma[b, : len(h.tokens) + 1, : len(src[b]) + 1], h.finished)
    return out
