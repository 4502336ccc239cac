"""Greedy and batched beam search, and beam search against exhaustive search."""

import itertools

import numpy as np
import pytest
import reference

from minirnnsearch import decode, model
from minirnnsearch.backend import get_backend
from minirnnsearch.data.batching import make_batch
from minirnnsearch.data.vocab import BOS_ID, EOS_ID


def problem(variant="rnnsearch", seed=0, n=6, eos_bias=1.0):
    """A tiny model with random float32 parameters, N(0, 0.5^2) (the paper's initialisation
    makes every output near-uniform), and ``n`` random sentences of 1 to 8 words. ``eos_bias``
    on b_o[</s>] makes some hypotheses end before the maximum length and some not."""
    rng = np.random.default_rng(seed)
    cfg = model.Config(src_vocab=20, tgt_vocab=20, variant=variant, emb=8, hidden=12, align=10,
                       maxout=6)
    params = {k: rng.normal(0.0, 0.5, v.shape).astype(np.float32)
              for k, v in model.init_params(cfg, get_backend("cpu"), seed).items()}
    params["b_o"][EOS_ID] += eos_bias
    src = [rng.integers(4, 20, int(k)).tolist() for k in rng.integers(1, 9, n)]
    return cfg, params, src


def run(search, cfg, params, src, **kw):
    b = make_batch(src, [[] for _ in src])
    return search(model.pack_params(params), cfg, b.src, b.src_mask, **kw)


def teacher_forced(cfg, params, s, hyp):
    """Log-probability and alignment rows of ``hyp`` recomputed by feeding its tokens (and
    </s> when finished) to ``decoder_step`` one sentence alone."""
    packed = model.pack_params(params)
    b = make_batch([s], [[]])
    enc, st, _ = model.encode(packed, cfg, b.src, b.src_mask)
    y, total, rows = np.array([BOS_ID]), 0.0, []
    for i, tok in enumerate([*hyp.tokens, EOS_ID] if hyp.finished else hyp.tokens):
        logp, st, alpha = model.decoder_step(packed, cfg, enc, y, st, i)
        total += float(logp[0, tok])
        rows.append(None if alpha is None else alpha[0])
        y = np.array([tok])
    return total, None if rows[0] is None else np.stack(rows)[:, : len(s) + 1]


def assert_same_alignment(a, b):
    """Equal alignment rows, or None on both sides (encdec has no alignment)."""
    assert (a is None) == (b is None)
    if a is not None:
        np.testing.assert_allclose(a, b, atol=1e-6)


def out_len(h):
    """Output tokens the model produced, </s> included."""
    return len(h.tokens) + h.finished


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_beam_one_is_greedy(variant):
    cfg, params, src = problem(variant, n=12)
    greedy = run(decode.greedy_search, cfg, params, src)
    beam = run(decode.beam_search, cfg, params, src, beam=1)
    assert {g[0].finished for g in greedy} == {True, False}  # both kinds of ending covered
    for g, b in zip(greedy, beam, strict=True):
        assert len(g) == len(b) == 1
        assert (g[0].tokens, g[0].finished) == (b[0].tokens, b[0].finished)
        assert g[0].score == pytest.approx(b[0].score, abs=1e-5)
        assert g[0].logprob == pytest.approx(b[0].logprob, abs=1e-5)
        assert_same_alignment(g[0].attention, b[0].attention)


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_beam_at_least_greedy_and_scores_are_the_model_scores(variant):
    cfg, params, src = problem(variant, seed=3, n=40)
    greedy = run(decode.greedy_search, cfg, params, src)
    beam = run(decode.beam_search, cfg, params, src, beam=5, nbest=3)
    better = 0
    for s, g, hyps in zip(src, greedy, beam, strict=True):
        # Not a theorem: the beam may prune greedy's prefix. For the cursors it happens here (on
        # 1 to 3 of these 40 sentences at beam 2, 3 and 5, never at 1, 8 or 16): </s> only from
        # the last source word makes late falls of the score common.
        if variant != "cursors":
            assert hyps[0].logprob >= g[0].logprob - 1e-5
        better += hyps[0].logprob > g[0].logprob + 1e-5
        for h in [g[0], *hyps]:  # independent recomputation, one sentence, teacher forcing
            logprob, att = teacher_forced(cfg, params, s, h)
            assert h.logprob == pytest.approx(logprob, abs=1e-4)
            assert h.score == h.logprob  # alpha 0
            assert_same_alignment(h.attention, att)
    assert better > 0  # the search is not just greedy


@pytest.mark.parametrize("variant", ["rnnsearch", "cursors"])
def test_reported_logprob_is_minus_training_loss(variant):
    """model.loss is the mean NLL per real target token: -loss * tokens = the beam's logprob
    (for the cursors: the beam's prefix scores add up to the exact marginal log p(y | x))."""
    cfg, params, src = problem(variant, seed=3, n=40)
    beam = run(decode.beam_search, cfg, params, src, beam=5)
    checked = 0
    for s, hyps in zip(src, beam, strict=True):
        h = hyps[0]
        if h.finished:
            nll = float(model.loss(params, cfg, make_batch([s], [h.tokens])))
            assert -nll * (len(h.tokens) + 1) == pytest.approx(h.logprob, abs=1e-4)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("variant", model.VARIANTS)
@pytest.mark.parametrize("search, kw", [(decode.greedy_search, {}),
                                        (decode.beam_search, dict(beam=4, nbest=3)),
                                        (decode.beam_search, dict(beam=4, nbest=2, alpha=1.0))])
def test_one_at_a_time_equals_batched(variant, search, kw):
    cfg, params, src = problem(variant, seed=1, n=8)
    together = run(search, cfg, params, src, **kw)
    for s, t in zip(src, together, strict=True):
        alone = run(search, cfg, params, [s], **kw)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in t]
        np.testing.assert_allclose([h.score for h in alone], [h.score for h in t], atol=1e-5)
        for a, b in zip(alone, t, strict=True):
            assert_same_alignment(a.attention, b.attention)


def test_nbest_distinct_sorted_and_length_normalised():
    cfg, params, src = problem(seed=2, n=10)
    by_alpha = {a: run(decode.beam_search, cfg, params, src, beam=6, nbest=6, alpha=a)
                for a in (0.0, 1.0)}
    for alpha, out in by_alpha.items():
        for hyps in out:
            assert len({tuple(h.tokens) for h in hyps}) == len(hyps) > 1
            assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
            for h in hyps:
                assert h.score == pytest.approx(h.logprob / out_len(h) ** alpha)
    # alpha changes the ranking as the formula says: of two hypotheses both lists hold, the one
    # alpha 1 puts first with the lower log-probability must be the longer one
    swaps = 0
    for raw, norm in zip(by_alpha[0.0], by_alpha[1.0], strict=True):
        logprob = {tuple(h.tokens): h.logprob for h in raw}
        common = [h for h in norm if tuple(h.tokens) in logprob]
        for h in common:
            assert h.logprob == pytest.approx(logprob[tuple(h.tokens)], abs=1e-5)
        for k, first in enumerate(common):
            for second in common[k + 1 :]:
                if first.logprob < second.logprob - 1e-6:
                    assert out_len(first) > out_len(second)
                    swaps += 1
    assert swaps > 0


def test_arguments_checked():
    cfg, params, src = problem()
    with pytest.raises(ValueError, match="nbest"):
        run(decode.beam_search, cfg, params, src, beam=2, nbest=3)
    with pytest.raises(ValueError, match="beam"):
        run(decode.beam_search, cfg, params, src, beam=0)


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_strict_backend_gives_the_numpy_output(variant):
    cfg, params, src = problem(variant, seed=5, n=5)
    sb = get_backend("strict")
    b = make_batch(src, [[] for _ in src]).to(sb)
    sparams = {k: sb.asarray(v) for k, v in params.items()}
    for search, kw in ((decode.beam_search, dict(beam=3, nbest=2)), (decode.greedy_search, {})):
        strict = search(sparams, cfg, b.src, b.src_mask, **kw)  # raw params: packed inside
        numpy = run(search, cfg, params, src, **kw)
        for hs, hn in zip(strict, numpy, strict=True):
            assert [h.tokens for h in hs] == [h.tokens for h in hn]
            np.testing.assert_allclose([h.score for h in hs], [h.score for h in hn], atol=1e-5)
            for a, c in zip(hs, hn, strict=True):
                assert isinstance(a.attention, np.ndarray) or variant == "encdec"
                assert_same_alignment(a.attention, c.attention)


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_max_length_and_attention_rows(variant):
    cfg, params, src = problem(variant, seed=4, n=8)
    for ratio, offset in ((1.0, 2), (0.5, 1)):
        out = run(decode.beam_search, cfg, params, src, beam=3, nbest=3, max_len_ratio=ratio,
                  max_len_offset=offset)
        for s, hyps in zip(src, out, strict=True):
            for h in hyps:
                assert out_len(h) <= int(ratio * len(s) + offset)
                if variant == "encdec":  # no alignment at all
                    assert h.attention is None
                else:
                    assert h.attention.shape == (out_len(h), len(s) + 1)  # real positions only
                    np.testing.assert_allclose(h.attention.sum(axis=1), 1.0, rtol=1e-5)
    # </s> made impossible: every hypothesis is cut at exactly the maximum length
    cfg, params, src = problem(variant, seed=4, n=8, eos_bias=-30.0)
    for search, kw in ((decode.beam_search, dict(beam=3)), (decode.greedy_search, {})):
        out = run(search, cfg, params, src, max_len_ratio=1.0, max_len_offset=2, **kw)
        for s, hyps in zip(src, out, strict=True):
            assert not hyps[0].finished and len(hyps[0].tokens) == len(s) + 2
            assert EOS_ID not in hyps[0].tokens


# -- against exhaustive search ------------------------------------------------------------------

def exhaustive(params, variant, s, limit):
    """Every output the search can give for source ``s`` at maximum length ``limit``, as
    (log p by the naive reference of tests/reference.py, tokens, finished): each word sequence
    (any id but </s>) of 0..limit-1 words followed by </s>, and each of exactly ``limit`` words
    without it (cut at the maximum length)."""
    words = [v for v in range(params["b_o"].shape[0]) if v != EOS_ID]
    return [(reference.sentence_logprob(params, variant, s, list(toks), n < limit), list(toks),
             n < limit) for n in range(limit + 1) for toks in itertools.product(words, repeat=n)]


def best_first(candidates, alpha):
    """(score, tokens, finished), best first: log p / (tokens, </s> included)^alpha."""
    scored = [(lp / (len(t) + f) ** alpha, t, f) for lp, t, f in candidates]
    return sorted(scored, key=lambda c: -c[0])


@pytest.mark.parametrize("variant", ("rnnsearch", "encdec", "diagonal", "cursors"))
def test_a_beam_as_wide_as_the_candidates_finds_the_exhaustive_nbest(variant):
    """Target vocabulary of 5 (the 4 specials and 1 word), maximum lengths 2, 3 and 4: a beam
    as wide as the most candidates of any step (5 * 4^3) is exhaustive search, so its n-best
    list, with and without length normalisation, is the true top n, </s> and the cut at the
    maximum length included; with n = 1 the search stops early once no live hypothesis can
    beat the best finished one."""
    rng = np.random.default_rng(0)
    cfg = model.Config(src_vocab=8, tgt_vocab=5, variant=variant, emb=4, hidden=5, align=6,
                       maxout=3)
    params = {k: rng.normal(0.0, 0.7, s) for k, s in model.param_shapes(cfg).items()}
    params["b_o"][EOS_ID] += 1.0                          # some endings among the best
    src, ratio, offset = [[5], [4, 7], [4, 7, 5]], 1.0, 1  # maximum lengths 2, 3 and 4
    limits = [int(ratio * len(s) + offset) for s in src]
    K = cfg.tgt_vocab * (cfg.tgt_vocab - 1) ** (max(limits) - 1)
    every = [exhaustive(params, variant, s, limit) for s, limit in zip(src, limits, strict=True)]
    kinds, lists = set(), {}
    for alpha, nbest in itertools.product((0.0, 1.0), (1, 8)):
        out = run(decode.beam_search, cfg, params, src, beam=K, nbest=nbest, alpha=alpha,
                  max_len_ratio=ratio, max_len_offset=offset)
        for s, candidates, hyps in zip(src, every, out, strict=True):
            best = best_first(candidates, alpha)
            assert best[nbest - 1][0] - best[nbest][0] > 1e-9  # no tie at the cut
            assert [(h.tokens, h.finished) for h in hyps] == [(t, f) for _, t, f in best[:nbest]]
            np.testing.assert_allclose([h.score for h in hyps], [c[0] for c in best[:nbest]],
                                       rtol=1e-10)
            kinds |= {h.finished for h in hyps}
            lists.setdefault((tuple(s), nbest), []).append([h.tokens for h in hyps])
    assert kinds == {True, False}                         # both endings among the n best
    assert any(a != b for a, b in lists.values())        # alpha changed some ranking
