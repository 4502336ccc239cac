"""The deep output with maxout (appendix A.2.2) and the softmax cross-entropy.

    t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i                (2L)
    t_i  = [max(t~_{i,2k-1}, t~_{i,2k})]_{k=1..L}           (L)   maxout over pairs
    p(y_i | s_i, y_{i-1}, c_i) = softmax(W_o t_i + b_o)     (V)

The linear parts are plain products in ``deep_output.py``; this module holds the maxout, the
loss (label smoothing included, train.py --label-smoothing), and the one stable log-sum-exp of
the package (``logsumexp``: the softmaxes here and the cursors' forward algorithm,
nn/cursors.py).
"""

from __future__ import annotations

from ..backend import Array, add_at_columns, apply_inplace, namespace


def maxout_forward(t_tilde: Array) -> tuple[Array, Array]:
    """t~ (N,2L) -> t (N,L), the max of each pair (t~_{2k}, t~_{2k+1}); cache: which won."""
    xp = namespace(t_tilde)
    N, L2 = t_tilde.shape
    pairs = xp.reshape(t_tilde, (N, L2 // 2, 2))          # (N,L,2)
    a, b = pairs[:, :, 0], pairs[:, :, 1]                 # (N,L) each, strided views
    return xp.maximum(a, b), a >= b                       # (N,L) t; (N,L) bool: the first won


def maxout_backward(dt: Array, first: Array) -> Array:
    """dt (N,L) -> dt~ (N,2L): the gradient goes to the winner of each pair."""
    xp = namespace(dt)
    N, L = dt.shape
    won = xp.astype(xp.stack([first, ~first], axis=2), dt.dtype)  # (N,L,2) one-hot winner
    return xp.reshape(dt[:, :, None] * won, (N, 2 * L))  # (N,2L)


def logits_forward(t: Array, W_o: Array, b_o: Array) -> Array:
    """W_o t + b_o for the rows of t (n,L) -> (n,V), in one fresh (n,V) array: the bias is
    added in place rather than into a second array of the vocabulary's width."""
    logits = t @ W_o                                      # (n,V)
    logits += b_o
    return logits


def logsumexp(x: Array, axis: int) -> Array:
    """log sum_k exp(x_k) over ``axis`` (which is removed), stable: with m the max over the
    axis, log sum_k exp(x_k - m) + m. -inf (not NaN, no warning) where every entry is -inf (the
    cursors' impossible cells). One fresh array of x's size: x - m, exponentiated in place."""
    xp = namespace(x)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))                     # -inf rows: shift by 0
    s = xp.sum(apply_inplace(xp.exp, x - m), axis=axis)
    ok = s > 0
    return xp.where(ok, xp.log(xp.where(ok, s, xp.ones_like(s))) + xp.squeeze(m, axis=axis),
                    xp.full_like(s, -xp.inf))


def log_softmax(logits: Array) -> Array:
    """log softmax over the last axis, (logits - m) - log sum exp(logits - m) with m the max.
    (..., V) -> (..., V). Not ``logits - logsumexp(logits)``: rounded as logits - (m + log sum
    exp), that moves decoding's log-probabilities by their last bits; and ``logsumexp`` of the
    shifted logits would take a second max and a second subtraction over (B,V) at every decoder
    step, for the same bits."""
    xp = namespace(logits)
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def softmax_xent_forward(logits: Array, targets: Array, weights: Array, eps: float = 0.0
                         ) -> tuple[Array, tuple]:
    """loss = -sum_n weights_n sum_v q_nv log p_nv, the cross-entropy against the targets
    smoothed by ``eps`` (label smoothing; PyTorch's ``cross_entropy(label_smoothing=eps)``):

        q_n = (1 - eps) onehot(targets_n) + eps/V      (V,)  sums to 1; eps = 0: the one-hot

    logits (N,V), targets (N,) int, weights (N,) (the target mask divided by the number of
    real tokens gives the mean per real token). Returns the 0-d loss and the cache (the
    exponentials, kept so backward needs no exp). One fresh (N,V) array: the shifted logits,
    turned into their exponentials in place. Its log-sum-exp is log(sum_ex) of these same
    exponentials (``logsumexp`` would make its own, a second exp over (N,V)). With eps = 0 no
    line of the smoothing runs: the plain negative log-likelihood, the same floats."""
    xp = namespace(logits)
    shifted = logits - xp.max(logits, axis=1, keepdims=True)                # (N,V) stable
    shifted_q = xp.take_along_axis(shifted, targets[:, None], axis=1)[:, 0]  # (N,) shifted_y
    if eps:  # sum_v q_v log p_v = sum_v q_v shifted_v - log sum_ex, as sum_v q_v = 1
        shifted_q = (1.0 - eps) * shifted_q + eps * xp.mean(shifted, axis=1)  # (N,) sum q shifted
    ex = apply_inplace(xp.exp, shifted)                                     # (N,V) exp, in place
    sum_ex = xp.sum(ex, axis=1)                                             # (N,)
    return -xp.sum(weights * (shifted_q - xp.log(sum_ex))), (ex, sum_ex, targets, weights, eps)


def softmax_xent_backward(cache: tuple) -> Array:
    """dlogits (N,V) = weights_n * (softmax(logits_n) - q_n), q_n = (1 - eps) onehot(targets_n)
    + eps/V. Written into the cache's exponentials (no fresh (N,V) array): call it once per
    forward."""
    ex, sum_ex, targets, weights, eps = cache
    ex *= (weights / sum_ex)[:, None]                                       # (N,V) w * p
    if not eps:
        return add_at_columns(ex, targets, -weights)                        # - w at y_n
    ex -= (eps / ex.shape[1]) * weights[:, None]                            # (N,V) - w eps/V
    return add_at_columns(ex, targets, -(1.0 - eps) * weights)              # - w (1-eps) at y_n


def target_log_softmax(logits: Array, targets: Array) -> tuple[Array, Array]:
    """log softmax(logits_n)[y_n] for every row: logits (N,V), targets (N,) int ->
    log p (N,) and the log-partition lse (N,) (kept so the backward needs no max)."""
    xp = namespace(logits)
    lse = logsumexp(logits, axis=1)                                         # (N,)
    return xp.take_along_axis(logits, targets[:, None], axis=1)[:, 0] - lse, lse


def target_log_softmax_backward(dlogp: Array, logits: Array, lse: Array, targets: Array) -> Array:
    """dlogits (N,V) = dlogp_n * (onehot(y_n) - softmax(logits_n)), from dlogp (N,)."""
    xp = namespace(logits)
    p = apply_inplace(xp.exp, logits - lse[:, None])                        # (N,V) softmax
    p *= (-dlogp)[:, None]                                                  # (N,V) -dlogp * p
    return add_at_columns(p, targets, dlogp)                                # + dlogp at y_n
