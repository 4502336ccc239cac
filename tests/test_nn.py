"""Each op of minirnnsearch.nn alone: analytic gradients of every input and weight against
central differences in float64 (cs231n's eval_numerical_gradient_array: f = sum(out * dout)),
padded positions included."""

import numpy as np
import pytest

from minirnnsearch.backend import get_backend, to_host
from minirnnsearch.gradcheck import numerical_gradient, rel_error
from minirnnsearch.nn.attention import (
    attention_step_backward,
    attention_step_forward,
    context_backward_annotations,
    context_backward_weights,
    diagonal_alignment,
    masked_softmax,
)
from minirnnsearch.nn.embedding import embedding_backward, embedding_forward
from minirnnsearch.nn.gru import (
    gru_backward,
    gru_forward,
    gru_step_backward,
    gru_step_forward,
    gru_weight_grads,
)
from minirnnsearch.nn.output import (
    log_softmax,
    logsumexp,
    maxout_backward,
    maxout_forward,
    softmax_xent_backward,
    softmax_xent_forward,
)

TOL = 1e-6


def check(forward, inputs: dict, analytic: dict, dout) -> None:
    """For every name in ``analytic``: d sum(forward() * dout) / d inputs[name] numerically."""
    for name, grad in analytic.items():
        num = numerical_gradient(lambda: float(np.sum(forward() * dout)), inputs[name])
        err = rel_error(grad, num)
        assert err < TOL, f"{name}: relative error {err:.2e}"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_embedding_gradient_sums_repeated_ids(rng):
    E = rng.normal(size=(7, 3))
    ids = np.array([[1, 4, 1], [1, 0, 6]])  # id 1 three times
    dout = rng.normal(size=(2, 3, 3))
    out = embedding_forward(E, ids)
    np.testing.assert_array_equal(out[0, 1], E[4])
    dE = embedding_backward(np.zeros_like(E), ids, dout)
    check(lambda: embedding_forward(E, ids), {"E": E}, {"E": dE}, dout)
    np.testing.assert_allclose(dE[1], dout[0, 0] + dout[0, 2] + dout[1, 0])


def test_gru_step_gradients_with_padding(rng):
    B, H = 4, 5
    p = {"xproj": rng.normal(size=(B, 3 * H)), "h_prev": rng.normal(size=(B, H)),
         "U_zr": rng.normal(size=(H, 2 * H)), "U": rng.normal(size=(H, H))}
    m = np.array([[1.0], [0.0], [1.0], [0.0]])
    dh = rng.normal(size=(B, H))

    def f():
        return gru_step_forward(p["xproj"], p["h_prev"], p["U_zr"], p["U"], m)[0]

    h, cache = gru_step_forward(p["xproj"], p["h_prev"], p["U_zr"], p["U"], m)
    np.testing.assert_array_equal(h[1], p["h_prev"][1])  # a padded step keeps the state
    dxproj, dh_prev = gru_step_backward(dh, cache, p["U_zr"], p["U"])
    dU_zr, dU = gru_weight_grads([cache], dxproj[None])
    check(f, p, {"xproj": dxproj, "h_prev": dh_prev, "U_zr": dU_zr, "U": dU}, dh)


def test_gru_step_is_the_papers_gru(rng):
    """Reset gate before the recurrent product; h = (1-z) h_prev + z h~ (paper, A.1.1)."""
    B, E, H = 2, 3, 4
    x, h_prev = rng.normal(size=(B, E)), rng.normal(size=(B, H))
    W = {g: rng.normal(size=(E, H)) for g in "zrh"}
    U = {g: rng.normal(size=(H, H)) for g in "zrh"}
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    z = sig(x @ W["z"] + h_prev @ U["z"])
    r = sig(x @ W["r"] + h_prev @ U["r"])
    hh = np.tanh(x @ W["h"] + (r * h_prev) @ U["h"])
    expected = (1 - z) * h_prev + z * hh
    xproj = np.concatenate([x @ W["z"], x @ W["r"], x @ W["h"]], axis=1)
    h, _ = gru_step_forward(xproj, h_prev, np.concatenate([U["z"], U["r"]], axis=1), U["h"])
    np.testing.assert_allclose(h, expected, rtol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_gru_sequence_gradients_with_padding(rng, reverse):
    T, B, E, H = 5, 3, 4, 3
    p = {"x": rng.normal(size=(T, B, E)), "W_x": rng.normal(size=(E, 3 * H)),
         "b_x": rng.normal(size=(3 * H,)), "U_zr": rng.normal(size=(H, 2 * H)),
         "U": rng.normal(size=(H, H))}
    lengths = np.array([5, 2, 4])
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(float)  # (T,B)
    dhs = rng.normal(size=(T, B, H))

    def f():
        return gru_forward(p["x"], mask, p["W_x"], p["b_x"], p["U_zr"], p["U"], reverse)[0]

    hs, cache = gru_forward(p["x"], mask, p["W_x"], p["b_x"], p["U_zr"], p["U"], reverse)
    if reverse:  # the backward direction starts at each sentence's last real word from h = 0
        np.testing.assert_array_equal(hs[2:, 1], 0.0)
        solo, _ = gru_forward(p["x"][:2, 1:2], mask[:2, 1:2], p["W_x"], p["b_x"], p["U_zr"],
                              p["U"], reverse)
        np.testing.assert_allclose(hs[:2, 1:2], solo, rtol=1e-12)
    else:  # padded steps carry the last real state
        np.testing.assert_array_equal(hs[4, 1], hs[1, 1])
    dx, dW_x, db_x, dU_zr, dU = gru_backward(dhs, cache, p["W_x"], p["U_zr"], p["U"])
    check(f, p, {"x": dx, "W_x": dW_x, "b_x": db_x, "U_zr": dU_zr, "U": dU}, dhs)


def test_masked_softmax_is_stable_and_ignores_padding():
    e = np.array([[1000.0, 999.0, 5.0], [0.0, 1e4, -3.0]])
    mask = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    alpha = masked_softmax(e, mask)
    assert np.all(np.isfinite(alpha))
    np.testing.assert_array_equal(alpha[mask == 0], 0.0)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0)
    np.testing.assert_allclose(alpha[0, :2], np.exp([0, -1]) / np.exp([0, -1]).sum())


def test_attention_step_gradients_with_padding(rng):
    B, S, A, H2 = 3, 4, 5, 6
    p = {"q": rng.normal(size=(B, A)), "keys": rng.normal(size=(B, S, A)),
         "annotations": rng.normal(size=(B, S, H2)), "v_a": rng.normal(size=(A,))}
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=float)
    dc = rng.normal(size=(B, H2))

    def f():
        return attention_step_forward(p["q"], p["keys"], p["annotations"], mask, p["v_a"])[0]

    c, alpha, cache = attention_step_forward(p["q"], p["keys"], p["annotations"], mask, p["v_a"])
    np.testing.assert_array_equal(alpha[mask == 0], 0.0)
    e = np.tanh(p["keys"] + p["q"][:, None]) @ p["v_a"]  # eq. 6 written out
    np.testing.assert_allclose(alpha[1, :2], np.exp(e[1, :2]) / np.exp(e[1, :2]).sum())
    np.testing.assert_allclose(c[2], p["annotations"][2, 0])  # one real word: c = h_1
    dq, dkeys, dv_a = attention_step_backward(
        context_backward_weights(dc, p["annotations"]), cache, p["v_a"])
    dann = context_backward_annotations(dc[:, None], alpha[:, None])
    check(f, p, {"q": dq, "keys": dkeys, "annotations": dann, "v_a": dv_a}, dc)


def test_diagonal_alignment_is_two_cursors_in_step():
    lengths = np.array([3, 1])
    alpha = diagonal_alignment(lengths, np.arange(5), 4, np.float64)  # (B,T,S)
    np.testing.assert_array_equal(alpha.argmax(axis=2), [[0, 1, 2, 2, 2], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(alpha.sum(axis=2), 1.0)


def test_maxout_gradient(rng):
    t_tilde = rng.normal(size=(4, 6))
    dt = rng.normal(size=(4, 3))
    t, first = maxout_forward(t_tilde)
    np.testing.assert_array_equal(t, np.maximum(t_tilde[:, 0::2], t_tilde[:, 1::2]))
    check(lambda: maxout_forward(t_tilde)[0], {"t": t_tilde}, {"t": maxout_backward(dt, first)}, dt)


def test_softmax_xent_gradient_and_value(rng):
    logits = rng.normal(size=(5, 7)) * 3
    targets = np.array([0, 6, 3, 3, 1])
    weights = np.array([0.25, 0.25, 0.0, 0.25, 0.25])  # one padded token
    loss, cache = softmax_xent_forward(logits, targets, weights)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss, -np.sum(weights * np.log(p[np.arange(5), targets])))
    np.testing.assert_allclose(np.exp(log_softmax(logits + 1000.0)), p, rtol=1e-12)
    dlogits = softmax_xent_backward(cache)
    np.testing.assert_array_equal(dlogits[2], 0.0)
    check(lambda: softmax_xent_forward(logits, targets, weights)[0], {"l": logits},
          {"l": dlogits}, 1.0)


def test_label_smoothing_by_hand_on_three_words():
    """V = 3, p = (1/8, 2/8, 5/8), the target word 2, eps 0.3: q = 0.7 onehot + 0.1 =
    (0.1, 0.1, 0.8); loss = -(1-eps) log p_y - (eps/V) sum_v log p_v, dlogits = w (p - q). A
    second, padded row (weight 0) adds nothing and gets no gradient."""
    logits = np.log(np.array([[1.0, 2.0, 5.0], [3.0, 1.0, 1.0]]))
    targets, weights = np.array([2, 0]), np.array([0.5, 0.0])
    loss, cache = softmax_xent_forward(logits, targets, weights, 0.3)
    by_hand = -0.7 * np.log(5 / 8) - 0.1 * (np.log(1 / 8) + np.log(2 / 8) + np.log(5 / 8))
    assert float(loss) == pytest.approx(0.5 * by_hand, rel=1e-14)
    dlogits = softmax_xent_backward(cache)
    np.testing.assert_allclose(dlogits, [[0.5 * 0.025, 0.5 * 0.15, -0.5 * 0.175], [0, 0, 0]],
                               atol=1e-16)


@pytest.mark.parametrize("eps", [0.1, 0.6])
def test_label_smoothing_gradient_and_value(rng, eps):
    """Against the definition written out (the mean over the V words of -log p, the cross-entropy
    against eps/V each, added to (1-eps) times the NLL), and central differences; every row's
    gradient sums to 0 (p and q are distributions)."""
    logits = rng.normal(size=(5, 7)) * 3
    targets = np.array([0, 6, 3, 3, 1])
    weights = np.array([0.25, 0.25, 0.0, 0.25, 0.25])  # one padded token
    loss, cache = softmax_xent_forward(logits, targets, weights, eps)
    logp = np.log(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    want = -np.sum(weights * ((1 - eps) * logp[np.arange(5), targets] + eps * logp.mean(axis=1)))
    assert float(loss) == pytest.approx(want, rel=1e-12)
    assert float(loss) != pytest.approx(float(softmax_xent_forward(logits, targets, weights)[0]))
    dlogits = softmax_xent_backward(cache)
    np.testing.assert_array_equal(dlogits[2], 0.0)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-15)
    check(lambda: softmax_xent_forward(logits, targets, weights, eps)[0], {"l": logits},
          {"l": dlogits}, 1.0)


def plain_xent_before_label_smoothing(logits, targets, weights):
    """softmax_xent_forward and _backward as they were before label smoothing (4167a65), in
    NumPy, line for line: the floats eps = 0 must still give."""
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    logp_y = np.take_along_axis(shifted, targets[:, None], axis=1)[:, 0]
    ex = np.exp(shifted)
    sum_ex = np.sum(ex, axis=1)
    loss = -np.sum(weights * (logp_y - np.log(sum_ex)))
    ex *= (weights / sum_ex)[:, None]
    ex[np.arange(len(targets)), targets] += -weights
    return loss, ex


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_label_smoothing_zero_is_the_plain_loss_bit_for_bit(rng, dtype):
    """eps = 0 gives the very floats of the loss before label smoothing, loss and dlogits, not
    merely close ones (so a run without the option trains as before it)."""
    logits = (rng.normal(size=(6, 9)) * 3).astype(dtype)
    targets = np.array([0, 8, 3, 3, 1, 2])
    weights = np.array([0.2, 0.2, 0.0, 0.2, 0.2, 0.2], dtype)
    want_loss, want_dlogits = plain_xent_before_label_smoothing(logits, targets, weights)
    for eps in ((), (0.0,)):  # eps left out, and 0 given
        loss, cache = softmax_xent_forward(logits, targets, weights, *eps)
        assert loss.dtype == want_loss.dtype and loss.tobytes() == want_loss.tobytes()
        np.testing.assert_array_equal(softmax_xent_backward(cache), want_dlogits)


def test_label_smoothing_runs_on_array_api_strict_device(rng):
    sb = get_backend("strict")
    logits = rng.normal(size=(4, 5))
    targets, weights = np.array([1, 4, 0, 2]), np.array([0.3, 0.3, 0.0, 0.4])
    loss, cache = softmax_xent_forward(logits.copy(), targets, weights, 0.2)
    loss_s, cache_s = softmax_xent_forward(sb.asarray(logits), sb.asarray(targets),
                                           sb.asarray(weights), 0.2)
    dlogits_s = softmax_xent_backward(cache_s)
    assert dlogits_s.device == sb.device
    assert float(to_host(loss_s)) == pytest.approx(float(loss), rel=1e-12)
    np.testing.assert_allclose(to_host(dlogits_s), softmax_xent_backward(cache), rtol=1e-12)


def test_logsumexp_is_stable_and_minus_inf_on_impossible_rows(rng):
    """The one log-sum-exp: log sum exp over an axis, with no overflow at 1000, -inf (no NaN,
    no warning) on a row of -inf only; log_softmax built on it keeps its old rounding."""
    x = rng.normal(size=(3, 4, 5)) * 3
    for axis in (0, 1, 2):
        np.testing.assert_allclose(logsumexp(x + 1000.0, axis),
                                   np.log(np.exp(x).sum(axis)) + 1000.0, rtol=1e-12)
    rows = np.array([[0.5, -np.inf, 2.0], [-np.inf, -np.inf, -np.inf]])
    with np.errstate(all="raise"):
        out = logsumexp(rows, 1)
    assert out[1] == -np.inf
    np.testing.assert_allclose(out[0], np.log(np.exp(0.5) + np.exp(2.0)), rtol=1e-15)
    for dtype in (np.float32, np.float64):
        logits = (rng.normal(size=(6, 9)) * 5).astype(dtype)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        old = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
        np.testing.assert_array_equal(log_softmax(logits), old)  # bit for bit


def test_ops_run_on_array_api_strict_device(rng):
    """The ops take arrays of any namespace: array_api_strict on device1 agrees with NumPy."""
    sb = get_backend("strict")
    T, B, E, H = 4, 2, 3, 3
    args = [rng.normal(size=(T, B, E)), (np.arange(T)[:, None] < [[4, 2]]).astype(float),
            rng.normal(size=(E, 3 * H)), rng.normal(size=(3 * H,)),
            rng.normal(size=(H, 2 * H)), rng.normal(size=(H, H))]
    hs_np, cache_np = gru_forward(*args, reverse=True)
    sargs = [sb.asarray(a) for a in args]
    hs_s, cache_s = gru_forward(*sargs, reverse=True)
    assert hs_s.device == sb.device
    np.testing.assert_allclose(to_host(hs_s), hs_np, rtol=1e-12)
    dhs = rng.normal(size=(T, B, H))
    grads_np = gru_backward(dhs, cache_np, args[2], args[4], args[5])
    grads_s = gru_backward(sb.asarray(dhs), cache_s, sargs[2], sargs[4], sargs[5])
    for a, b in zip(grads_np, grads_s, strict=True):
        np.testing.assert_allclose(to_host(b), a, rtol=1e-10)
    E_ = rng.normal(size=(6, 2))
    ids = np.array([[1, 1, 5]])
    d = rng.normal(size=(1, 3, 2))
    dE = embedding_backward(sb.asarray(np.zeros_like(E_)), sb.asarray(ids), sb.asarray(d))
    np.testing.assert_allclose(to_host(dE), embedding_backward(np.zeros_like(E_), ids, d))
