"""Greedy and batched beam search."""

import numpy as np
import pytest

from minirnnsearch import decode, model
from minirnnsearch.backend import get_backend, to_host
from minirnnsearch.data.batching import make_batch
from minirnnsearch.data.vocab import EOS_ID


def problem(variant="rnnsearch", seed=0, n=6):
    """A tiny model with random float32 parameters (peaked enough to end sentences) and ``n``
    random sentences of different lengths."""
    rng = np.random.default_rng(seed)
    cfg = model.Config(src_vocab=20, tgt_vocab=12, variant=variant, emb=8, hidden=12, align=10,
                       maxout=6)
    params = {k: rng.normal(0.0, 0.6, v.shape).astype(np.float32)
              for k, v in model.init_params(cfg, get_backend("cpu"), seed).items()}
    params["b_o"][EOS_ID] += 1.5  # ends sentences at a reasonable length
    src = [list(rng.integers(4, 20, int(k))) for k in rng.integers(1, 9, n)]
    return cfg, params, src


def run(search, cfg, params, src, **kw):
    b = make_batch(src, [[] for _ in src])
    return search(model.pack_params(params), cfg, b.src, b.src_mask, **kw)


def teacher_forced_logprob(cfg, params, s, tokens, finished=True):
    """Sum of decoder_step log-probabilities of ``tokens`` (+ </s>), recomputed from scratch."""
    packed = model.pack_params(params)
    b = make_batch([s], [[]])
    enc, st, _ = model.encode(packed, cfg, b.src, b.src_mask)
    y, total = np.array([2]), 0.0
    for i, tok in enumerate([*tokens, EOS_ID] if finished else tokens):
        logp, st, _ = model.decoder_step(packed, cfg, enc, y, st, i)
        total += float(logp[0, tok])
        y = np.array([tok])
    return total


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_beam_one_is_greedy(variant):
    cfg, params, src = problem(variant)
    greedy = run(decode.greedy_search, cfg, params, src)
    beam = run(decode.beam_search, cfg, params, src, beam=1)
    for g, b in zip(greedy, beam, strict=True):
        assert g[0].tokens == b[0].tokens
        assert g[0].logprob == pytest.approx(b[0].logprob, abs=1e-4)


def test_beam_scores_at_least_greedy_and_are_the_model_scores():
    cfg, params, src = problem(seed=3, n=24)
    greedy = run(decode.greedy_search, cfg, params, src)
    beam = run(decode.beam_search, cfg, params, src, beam=5)
    for s, g, b in zip(src, greedy, beam, strict=True):
        assert b[0].logprob >= g[0].logprob - 1e-5
        assert b[0].logprob == pytest.approx(
            teacher_forced_logprob(cfg, params, s, b[0].tokens, b[0].finished), abs=1e-4)
    # and the training loss agrees: mean NLL per token times the tokens
    s, hyp = src[0], beam[0][0]
    if hyp.finished:
        nll = float(model.loss(params, make_batch([s], [hyp.tokens]), cfg))
        assert -nll * (len(hyp.tokens) + 1) == pytest.approx(hyp.logprob, abs=1e-4)


@pytest.mark.parametrize("search", [decode.greedy_search, decode.beam_search])
def test_one_at_a_time_equals_batched(search):
    cfg, params, src = problem(seed=1, n=7)
    together = run(search, cfg, params, src)
    for s, t in zip(src, together, strict=True):
        alone = run(search, cfg, params, [s])[0]
        assert alone[0].tokens == t[0].tokens
        assert alone[0].score == pytest.approx(t[0].score, abs=1e-5)


def test_nbest_distinct_sorted_and_length_normalised():
    cfg, params, src = problem(seed=2, n=5)
    for alpha in (0.0, 1.0):
        out = run(decode.beam_search, cfg, params, src, beam=6, nbest=4, alpha=alpha)
        for hyps in out:
            assert len({tuple(h.tokens) for h in hyps}) == len(hyps) > 1
            assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
            for h in hyps:
                length = len(h.tokens) + (1 if h.finished else 0)
                assert h.score == pytest.approx(h.logprob / length**alpha)


def test_max_length_and_attention_rows():
    cfg, params, src = problem(seed=4, n=5)
    params["b_o"][EOS_ID] -= 30.0  # never ends by itself
    out = run(decode.beam_search, cfg, params, src, beam=3, max_len_ratio=1.0, max_len_offset=2)
    for s, hyps in zip(src, out, strict=True):
        h = hyps[0]
        assert not h.finished and len(h.tokens) == len(s) + 2
        assert h.attention.shape == (len(h.tokens), len(s) + 1)
        np.testing.assert_allclose(h.attention.sum(axis=1), 1.0, rtol=1e-5)


def test_beam_search_runs_on_array_api_strict():
    cfg, params, src = problem(seed=5, n=4)
    sb = get_backend("strict")
    b = make_batch(src, [[] for _ in src])
    sparams = {k: sb.asarray(v) for k, v in params.items()}
    sb_batch = b.to(sb)
    strict = decode.beam_search(model.pack_params(sparams), cfg, sb_batch.src, sb_batch.src_mask,
                                beam=3, nbest=2)
    numpy = run(decode.beam_search, cfg, params, src, beam=3, nbest=2)
    for a, c in zip(strict, numpy, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in c]
    greedy = decode.greedy_search(model.pack_params(sparams), cfg, sb_batch.src,
                                  sb_batch.src_mask)
    assert [h[0].tokens for h in greedy] == [
        h[0].tokens for h in run(decode.greedy_search, cfg, params, src)]
    assert to_host(sb_batch.src).shape == b.src.shape
