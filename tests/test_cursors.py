"""nn/cursors.py: the forward algorithm against brute-force enumeration of every monotone
trajectory, its hand-written backward against central differences (float64, padded positions
included), and array_api_strict against NumPy."""

import itertools

import numpy as np
import pytest

from minirnnsearch.backend import get_backend, to_host
from minirnnsearch.gradcheck import numerical_gradient, rel_error
from minirnnsearch.nn.cursors import (
    cursors_backward,
    cursors_forward,
    cursors_posterior,
    log_transition,
    stop_logits_backward,
    stop_logits_forward,
)

TOL = 1e-6


@pytest.fixture
def problem():
    """Three sentences: S_b 4, 2, 3 (padded to 4); T_b 3, 1, 4 (padded to 4)."""
    rng = np.random.default_rng(0)
    B, T, S = 3, 4, 4
    lengths = np.array([4, 2, 3])
    tmask = (np.arange(T)[None, :] < np.array([3, 1, 4])[:, None]).astype(float)
    return rng.normal(size=(B, T, S)) - 1.0, rng.normal(size=(B, T, S)), lengths, tmask


def brute_force_logz(le, u, S_b, T_b):
    """log sum over every a_0 <= ... <= a_{T_b-1} = S_b-1 (a_{-1} = 0) of
    prod_i p_stop(i,a_i) prod_{m=a_{i-1}}^{a_i - 1} (1 - p_stop(i,m)) exp(le_{i,a_i})."""
    p = 1 / (1 + np.exp(-u))
    p[:, S_b - 1] = 1.0                                  # forced stop at the last word
    total = 0.0
    for a in itertools.product(range(S_b), repeat=T_b):
        if a[-1] != S_b - 1 or any(x > y for x, y in zip(a, a[1:], strict=False)):
            continue
        prob, prev = 1.0, 0
        for i, j in enumerate(a):
            prob *= p[i, j] * np.prod(1 - p[i, prev:j]) * np.exp(le[i, j])
            prev = j
        total += prob
    return np.log(total)


def test_forward_equals_brute_force_enumeration(problem):
    le, u, lengths, tmask = problem
    logz, _ = cursors_forward(le, u, lengths, tmask)
    for b, (S_b, T_b) in enumerate(zip(lengths, tmask.sum(axis=1).astype(int), strict=True)):
        assert np.isclose(logz[b], brute_force_logz(le[b], u[b], S_b, T_b), rtol=1e-12)


def test_transition_rows_sum_to_one(problem):
    _, u, lengths, _ = problem
    lt = log_transition(u[:, 0, :], lengths)             # (B,S,S)
    for b, S_b in enumerate(lengths):
        np.testing.assert_allclose(np.exp(lt[b, :S_b]).sum(axis=1), 1.0, rtol=1e-12)
        assert np.all(np.isneginf(lt[b, :, S_b:]))      # never onto padding
        assert np.all(np.isneginf(lt[b][np.tril_indices(4, -1)]))  # never backwards


def test_posterior_is_a_distribution_ending_at_the_last_word(problem):
    le, u, lengths, tmask = problem
    _, cache = cursors_forward(le, u, lengths, tmask)
    gamma = cursors_posterior(cache)                     # (B,T,S)
    np.testing.assert_allclose(gamma.sum(axis=2), tmask, atol=1e-12)
    for b, S_b in enumerate(lengths):
        T_b = int(tmask[b].sum())
        assert gamma[b, T_b - 1, S_b - 1] == pytest.approx(1.0)
        np.testing.assert_array_equal(gamma[b, :, S_b:], 0.0)


def test_gradients_of_emissions_and_stop_logits(problem):
    le, u, lengths, tmask = problem
    dlogz = np.array([0.7, -1.3, 0.4])
    _, cache = cursors_forward(le, u, lengths, tmask)
    dle, du = cursors_backward(dlogz, cache)
    for name, x, grad in (("le", le, dle), ("u", u, du)):
        num = numerical_gradient(
            lambda: float(np.sum(cursors_forward(le, u, lengths, tmask)[0] * dlogz)), x)
        assert rel_error(grad, num) < TOL, name
    assert np.all(dle[tmask == 0] == 0) and np.all(du[tmask == 0] == 0)  # padded steps


def test_stop_logit_gradients():
    rng = np.random.default_rng(1)
    B, T, S, A = 2, 3, 4, 5
    p = {"q": rng.normal(size=(B, T, A)), "keys": rng.normal(size=(B, S, A)),
         "v": rng.normal(size=(A,)), "b": rng.normal(size=(1,))}
    du = rng.normal(size=(B, T, S))
    u, cache = stop_logits_forward(p["q"], p["keys"], p["v"], p["b"])
    np.testing.assert_allclose(u[1, 2, 3], p["v"] @ np.tanh(p["q"][1, 2] + p["keys"][1, 3])
                               + p["b"][0])
    grads = dict(zip(("q", "keys", "v", "b"), stop_logits_backward(du, cache, p["v"]),
                     strict=True))
    for name, grad in grads.items():
        num = numerical_gradient(
            lambda: float(np.sum(stop_logits_forward(**p)[0] * du)), p[name])
        assert rel_error(grad, num) < TOL, name


def test_confident_cursor_stays_finite_in_float32():
    """p_stop near 0 or 1 everywhere (|u| = 30) over 60 words: no underflow to -inf or NaN, and
    float32 agrees with float64."""
    rng = np.random.default_rng(2)
    B, T, S = 2, 50, 60
    u = 30.0 * np.sign(rng.normal(size=(B, T, S)))
    le = rng.normal(size=(B, T, S)) - 3.0
    lengths, tmask = np.array([60, 41]), np.ones((B, T))
    ref, cache = cursors_forward(le, u, lengths, tmask)
    got, cache32 = cursors_forward(le.astype(np.float32), u.astype(np.float32), lengths, tmask)
    assert np.all(np.isfinite(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    dle, du = cursors_backward(np.ones(B, dtype=np.float32), cache32)
    assert np.all(np.isfinite(dle)) and np.all(np.isfinite(du))


def test_strict_device_equals_numpy(problem):
    sb = get_backend("strict")
    le, u, lengths, tmask = problem
    dlogz = np.array([1.0, 2.0, -0.5])
    logz, cache = cursors_forward(le, u, lengths, tmask)
    dle, du = cursors_backward(dlogz, cache)
    logz_s, cache_s = cursors_forward(*(sb.asarray(a) for a in (le, u, lengths, tmask)))
    assert logz_s.device == sb.device
    np.testing.assert_allclose(to_host(logz_s), logz, rtol=1e-12)
    for a, b in zip((dle, du), cursors_backward(sb.asarray(dlogz), cache_s), strict=True):
        np.testing.assert_allclose(to_host(b), a, rtol=1e-10, atol=1e-14)


# The whole cursors model (cursor_model.py): the band, the smoothed posterior, the config.

def test_band_is_an_upper_bound_and_its_gradients_are_exact():
    from dataclasses import replace

    from minirnnsearch import gradcheck, model

    cfg, params, batch = gradcheck.tiny_problem("cursors")   # S_b 6, 3, 4 with </s>
    exact = float(model.loss(params, cfg, batch))
    wide = float(model.loss(params, replace(cfg, band=3), batch))  # 7 cells >= S: every position
    assert wide == exact
    banded = replace(cfg, band=1)
    loss, grads = model.loss_and_grads(params, banded, batch)
    assert float(loss) > exact                                # fewer trajectories
    for name in ("W_stop", "C_o", "dec.U", "W_o", "E_src"):
        num = numerical_gradient(lambda: float(model.loss(params, banded, batch)), params[name])
        assert rel_error(grads[name], num) < TOL, name


def test_band_cells_follow_the_diagonal_to_the_last_word():
    from minirnnsearch.cursor_model import cell_positions

    lengths = np.array([6, 2])
    tmask = (np.arange(4)[None, :] < np.array([3, 4])[:, None]).astype(float)
    pos = cell_positions(1, lengths, tmask, 6)               # (B,T,3)
    # diagonal (i+1) 6 // 3 - 1 = 1, 3, 5; the window slid inside 0..5 at the end
    np.testing.assert_array_equal(pos[0, :3], [[0, 1, 2], [2, 3, 4], [3, 4, 5]])
    np.testing.assert_array_equal(pos[1], np.tile([0, 1, 2], (4, 1)))  # S_b 2 <= 3: all of it
    assert cell_positions(0, lengths, tmask, 6).shape == (2, 4, 6)
    sb = get_backend("strict")
    on_device = cell_positions(1, sb.asarray(lengths), sb.asarray(tmask), 6)
    np.testing.assert_array_equal(to_host(on_device), pos)


@pytest.mark.parametrize("band", [0, 1, 2])
def test_a_sentences_loss_and_gradients_do_not_depend_on_its_batch(band):
    """A pair with S_b = 2*band+1 (its band covers it: the exact loss) and T_b = 5 gets the same
    log-likelihood and gradients alone as padded beside longer sentences; so does each longer
    one, banded, beside it. The batch's summed loss is the sum of its sentences' alone."""
    from minirnnsearch import gradcheck, model
    from minirnnsearch.data.batching import make_batch

    cfg, params, _ = gradcheck.tiny_problem("cursors", band=band)
    short = (list(range(4, 4 + 2 * band)), [5, 6, 7, 8])        # S_b 2*band+1, T_b 5 with </s>
    longer = [([4, 5, 6, 7, 8, 9, 10], [4, 5, 6]), ([9, 8, 7, 6, 5, 4, 5, 6, 7], [12, 11])]

    def summed(pairs):  # -sum_b log p(y_b | x_b) and its gradients
        batch = make_batch([s for s, _ in pairs], [t for _, t in pairs])
        ntok = float(np.sum(batch.tgt_mask))
        loss, grads = model.loss_and_grads(params, cfg, batch)
        return float(loss) * ntok, {k: g * ntok for k, g in grads.items()}

    alone = [summed([p]) for p in (short, *longer)]
    for together, parts in ((summed([short, *longer]), alone),
                            (summed([longer[1], short]), [alone[2], alone[0]])):
        assert together[0] == pytest.approx(sum(a[0] for a in parts), rel=1e-12)
        for k in params:
            np.testing.assert_allclose(together[1][k], sum(a[1][k] for a in parts),
                                       rtol=1e-9, atol=1e-12, err_msg=k)


def test_smoothed_alignment_is_the_posterior_ending_at_the_last_word():
    from minirnnsearch import decode, gradcheck, model
    from minirnnsearch.backend import get_backend
    from minirnnsearch.data.batching import make_batch

    cfg, params, _ = gradcheck.tiny_problem("cursors")
    packed = model.pack_params(params)
    src = [[5, 6, 7], [8]]
    b = make_batch(src, [[] for _ in src])
    hyps = decode.beam_search(packed, cfg, b.src, b.src_mask, beam=2)
    hyps[1][0] = decode.Hypothesis([9, 10], 0.0, 0.0, np.zeros((3, 2)), True)  # a known one
    smoothed = decode.smooth_alignments(packed, cfg, get_backend("cpu"), src, hyps)
    checked = 0
    for s, hs in zip(src, smoothed, strict=True):
        h = hs[0]
        if h.finished:
            assert h.attention.shape == (len(h.tokens) + 1, len(s) + 1)
            np.testing.assert_allclose(h.attention.sum(axis=1), 1.0, atol=1e-12)
            assert h.attention[-1, -1] == pytest.approx(1.0)  # </s> from the last source word
            F = np.cumsum(h.attention, axis=1)                # P(a_i <= m) falls with i:
            assert np.all(np.diff(F, axis=0) <= 1e-12)        # the cursor only moves forward
            checked += 1
    assert checked >= 1 and not np.allclose(smoothed[1][0].attention, 0.0)


def test_band_config():
    from minirnnsearch import model

    cfg = model.Config(src_vocab=10, tgt_vocab=10, variant="cursors", band=2)
    d = cfg.to_dict()
    assert model.Config.from_dict(d).band == 2
    d.pop("band")                                            # a checkpoint from before the band
    assert model.Config.from_dict(d).band == 0
    with pytest.raises(ValueError, match="band"):
        model.Config(src_vocab=10, tgt_vocab=10, band=-1)
    assert "dec.C_z" not in model.param_shapes(cfg)          # the decoder has no context


def test_chunking_changes_no_result(monkeypatch):
    """Softmax chunks of one cell (training) and one source position (decoding) give the same
    loss, gradients and step as the default chunks."""
    from minirnnsearch import cursor_model, deep_output, gradcheck, model

    cfg, params, batch = gradcheck.tiny_problem("cursors")
    packed = model.pack_params(params)

    def step():
        enc, s0, _ = model.encode(packed, cfg, batch.src, batch.src_mask)
        _, state, _ = model.decoder_step(packed, cfg, enc, batch.tgt[:, 0], s0, 0)
        return model.decoder_step(packed, cfg, enc, batch.tgt[:, 1], state, 1)

    before = model.loss_and_grads(params, cfg, batch), step()
    monkeypatch.setattr(cursor_model, "CHUNK_LOGITS", 1)
    monkeypatch.setattr(deep_output, "SOFTMAX_CHUNK_ROWS", 1)
    after = model.loss_and_grads(params, cfg, batch), step()
    assert float(after[0][0]) == pytest.approx(float(before[0][0]), rel=1e-12)
    for k in params:
        np.testing.assert_allclose(after[0][1][k], before[0][1][k], rtol=1e-10, atol=1e-14)
    for a, b in zip(after[1][:1] + tuple(after[1][1]), before[1][:1] + tuple(before[1][1]),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_the_end_constraint_loses_the_mass_of_early_ends():
    """The docstring's claim (cursor_model.py, "Lost mass"): decoder_step's next-token
    distributions sum to 1 - m_i < 1, with m_i = sum_{j < S_b-1} p(a_i=j | y_<i, x)
    p(</s> | a_i=j), the mass of </s> said before the last source word. m_i is computed here
    from the training path: the forward algorithm's alphas and transitions and the emission
    cells' softmax at every position."""
    from minirnnsearch import cursor_model, gradcheck, model
    from minirnnsearch.data.vocab import BOS_ID, EOS_ID

    cfg, params, batch = gradcheck.tiny_problem("cursors")
    packed = model.pack_params(params)
    f = cursor_model._forward(packed, cfg, batch)
    B, T, S = f.dp_cache.le.shape
    t = np.reshape(f.emission_cache.t, (B, T, S, -1))                     # every cell (i,j)
    logits = t @ packed["W_o"] + packed["b_o"]                            # (B,T,S,V)
    p_eos = np.exp(logits[..., EOS_ID] - np.log(np.exp(logits).sum(axis=-1)))  # (B,T,S)
    lengths, T_b = batch.src_mask.sum(axis=1), batch.tgt_mask.sum(axis=1)
    early = np.arange(S)[None, :] < lengths[:, None] - 1                  # (B,S) j < S_b-1
    alpha = np.where(np.arange(S) == 0, 0.0, -np.inf) * np.ones((B, 1))   # (B,S) a_{-1} = 0
    enc, state, _ = model.encode(packed, cfg, batch.src, batch.src_mask)
    y = np.full(B, BOS_ID)
    for i in range(T):
        logp, state, _ = model.decoder_step(packed, cfg, enc, y, state, i)
        joint = alpha[:, :, None] + f.dp_cache.lts[:, i]                  # (B,S,S) k -> j
        pred = np.exp(np.logaddexp.reduce(joint, axis=1))                 # (B,S) unnormalised
        pred /= pred.sum(axis=1, keepdims=True)                           # p(a_i=j | y_<i, x)
        lost = (pred * p_eos[:, i] * early).sum(axis=1)                   # (B,) m_i
        real = i < T_b
        total = np.exp(logp).sum(axis=1)                                  # (B,)
        np.testing.assert_allclose(total[real], 1.0 - lost[real], rtol=1e-12)
        assert np.all(total[real] < 1.0) and np.all(lost[real] > 0.0)
        alpha, y = f.dp_cache.alphas[:, i], batch.tgt[:, i]
