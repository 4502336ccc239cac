"""Two cursors, the source one a latent monotone alignment marginalised by dynamic programming
(Bahdanau's first idea, before the soft search of the paper).

Shapes: B batch, T target length, S source length (both padded), A stop-score hidden size.
Indices are 0-based in the code: source positions j = 0..S_b-1 (S_b real words with </s>),
target steps i = 0..T_b-1 (T_b real tokens with </s>).

The target cursor is the decoder step i; the source cursor a_i only moves forward. Before the
first step it stands on the first source word (a_{-1} = 0); at each step it stops at the first
position j >= a_{i-1} where a coin with probability p_stop(i,j) says "stop here":

    u_ij           = v^T tanh(W s_i + U h_j) + b            stop logits  (B,T,S)
    p_stop(i,j)    = sigmoid(u_ij),   forced to 1 at the last real source word j = S_b-1
    p(a_i=j | a_{i-1}=k) = p_stop(i,j) prod_{m=k}^{j-1} (1 - p_stop(i,m))      for k <= j < S_b

so each row of the transition sums to one. The trajectory must end at the last real source word
(a_{T_b-1} = S_b-1, the source </s>; the model's emissions of </s> elsewhere are therefore
lost mass: cursor_model.py, "Lost mass"). With emissions le_ij = log p(y_i | a_i=j, y_<i, x), the
sentence's log-likelihood is the log-marginal over all monotone trajectories,

    log Z = log sum_{a: 0 <= a_0 <= .. <= a_{T_b-1} = S_b-1} prod_i p(a_i|a_{i-1}) p(y_i|a_i),

computed by the forward algorithm in log space (lt_i = log p(a_i | a_{i-1}), (B,S,S)):

    alpha_{-1}(k) = log [k = 0]
    alpha_i(j)    = le_ij + logsumexp_k (alpha_{i-1}(k) + lt_i(k,j))
    log Z         = alpha_{T_b-1}(S_b-1)

Padded target steps copy alpha unchanged, so alpha_{T-1} = alpha_{T_b-1}.

Backward (the forward-backward algorithm). With beta_{T_b-1}(j) = log [j = S_b-1] and

    beta_{i-1}(k) = logsumexp_j (lt_i(k,j) + le_ij + beta_i(j)),

the posterior of the cursor is gamma_i(j) = p(a_i = j | y, x) = exp(alpha_i(j) + beta_i(j) - log Z)
and the pair posterior xi_i(k,j) = p(a_{i-1}=k, a_i=j | y, x). The gradients of log Z are

    d log Z / d le_ij              = gamma_i(j)
    d log Z / d log p_stop(i,j)    = sum_k xi_i(k,j) = gamma_i(j)
    d log Z / d log(1-p_stop(i,m)) = sum_{k <= m < j} xi_i(k,j) = P(a_{i-1} <= m < a_i)
                                   = F_{i-1}(m) - F_i(m)

with F_i(m) = P(a_i <= m) = sum_{j <= m} gamma_i(j), F_{-1} = 1

(the last step because a_i <= m implies a_{i-1} <= m), and through the sigmoid,
d log p_stop / du = 1 - p_stop, d log(1-p_stop) / du = -p_stop:

    d log Z / d u_ij = gamma_i(j) (1 - p_stop(i,j)) - (F_{i-1}(j) - F_i(j)) p_stop(i,j)

for real j < S_b-1 and real steps i, and 0 elsewhere (the forced stop has no parameter). So the
backward needs only the posterior marginals: O(S) per step besides the beta recursion.

Cost and the choice made here: the transition matrices lt_i are built for every step at once,
a (B,T,S,S) array (they do not depend on alpha), and the forward and beta recursions are a
(B,S,S) logsumexp per step: O(S^2). The O(S) alternative (a prefix sum of alpha_{i-1}(k) -
sum_{m<k} log(1-p_stop)) subtracts prefix sums that grow like S * |log(1-p_stop)|, loses every
term but the largest to underflow once the cursor is confident, and so needs a sequential scan
over j to be safe. The O(S^2) form stays exact and vectorised, and it costs next to nothing
beside the emissions the model computes for every (i,j) pair (S * L * V work per pair, against
S here): measured on this machine, 19 ms forward and 8 ms backward at B 64, S = T = 20 in
float32, in training steps of seconds.
Within lt_i the products prod_{m=k}^{j-1} (1 - p_stop) are sums of log(1-p_stop) accumulated
from m = k, never differences of long prefix sums, so no cancellation either.

Related models: Graves' RNN transducer (2012) marginalises monotone alignments of the same kind
with a "stay or emit" lattice; Yu et al. (2016), segment-to-segment neural transduction, have a
latent monotone alignment with a per-position shift/emit decision, marginalised by the same
forward algorithm; the neural HMMs of Wang et al. (2018) use neural emission and transition
models with forward-backward training. The "stop here" transition is that of a geometric-like
jump whose rate is read off s_i and h_j.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import Array, apply_inplace, namespace
from .gru import sigmoid
from .output import logsumexp


def log_sigmoid(x: Array) -> Array:
    """log sigmoid(x) = min(x, 0) - log(1 + exp(-|x|)), stable for large |x|."""
    xp = namespace(x)
    return xp.minimum(x, 0.0) - xp.log1p(xp.exp(-xp.abs(x)))


class StopCache(NamedTuple):
    act: Array   # (B,T,S,A) tanh(W s_i + U h_j)


def stop_logits_forward(
    q: Array, keys: Array, v: Array, b: Array
) -> tuple[Array, StopCache]:
    """u_ij = v^T tanh(q_i + keys_j) + b for every pair at once, like eq. 6's scores.

    q (B,T,A) = W s_i, keys (B,S,A) = U h_j (both computed by the caller in one product each),
    v (A,), b (1,). Returns u (B,T,S) and the cache."""
    xp = namespace(q)
    act = apply_inplace(xp.tanh, q[:, :, None, :] + keys[:, None, :, :])  # (B,T,S,A)
    return act @ v + b, StopCache(act)                        # (B,T,S)


def stop_logits_backward(
    du: Array, cache: StopCache, v: Array
) -> tuple[Array, Array, Array, Array]:
    """du (B,T,S) -> dq (B,T,A), dkeys (B,S,A), dv (A,), db (1,)."""
    xp = namespace(du)
    act = cache.act
    B, T, S, A = act.shape
    dv = xp.reshape(du, (1, B * T * S)) @ xp.reshape(act, (B * T * S, A))  # (1,A) u = act @ v
    # dpre = du v (1 - act^2), backprop through tanh; v (A,) factors out of both sums, so it is
    # applied after them, and w = du (1 - act^2) is built in place: one (B,T,S,A) array.
    w = act * act                                             # (B,T,S,A) act^2
    w -= 1.0                                                  #           act^2 - 1
    w *= -du[..., None]                                       #           du (1 - act^2)
    return (xp.sum(w, axis=2) * v, xp.sum(w, axis=1) * v, dv[0, :],
            xp.reshape(xp.sum(du), (1,)))                     # (B,T,A), (B,S,A), (A,), (1,)


def log_transition(u: Array, lengths: Array) -> Array:
    """lt_i(k,j) = log p(a_i=j | a_{i-1}=k) from the stop logits u_i and the real source lengths
    (B,): log p_stop(j) + sum_{m=k}^{j-1} log(1 - p_stop(m)) for k <= j < S_b, -inf elsewhere;
    p_stop forced to 1 at j = S_b-1. u (B,S) one step -> (B,S,S), or u (B,T,S) every step at
    once -> (B,T,S,S) (it does not depend on alpha, so the forward algorithm builds all steps
    before its loop)."""
    xp = namespace(u)
    S = u.shape[-1]
    j = xp.arange(S, dtype=lengths.dtype, device=u.device)        # (S,)
    last = xp.reshape(lengths, (-1,) + (1,) * (u.ndim - 1)) - 1   # (B,1) or (B,1,1) S_b-1
    zero = xp.zeros_like(u)
    lp = xp.where(j == last, zero, log_sigmoid(u))                # (B,[T,]S) log p_stop, 1 at end
    lq = xp.where(j < last, log_sigmoid(-u), zero)                # (B,[T,]S) log(1-p_stop), 0 after
    k_le_m = j[:, None] <= j[None, :]                             # (S,S) [k <= m]
    runs = xp.where(k_le_m, lq[..., None, :], zero[..., None, :])  # (B,[T,]S,S) lq_m for m >= k
    inc = xp.cumulative_sum(runs, axis=-1, include_initial=True)  # (B,[T,]S,S+1) sum_{k<=m<j}
    valid = k_le_m & (j <= last[..., None])                       # (B,[1,]S,S) k <= j < S_b
    return xp.where(valid, lp[..., None, :] + inc[..., :S], xp.full_like(runs, -xp.inf))


class CursorCache(NamedTuple):
    alphas: Array   # (B,T,S) alpha_i(j)
    lts: Array      # (B,T,S,S) lt_i(k,j)
    le: Array       # (B,T,S) log emissions
    p: Array        # (B,T,S) sigmoid(u), unforced
    lengths: Array  # (B,) S_b
    tmask: Array    # (B,T) 1 on real target steps
    logz: Array     # (B,)


def cursors_forward(
    le: Array, u: Array, lengths: Array, tgt_mask: Array
) -> tuple[Array, CursorCache]:
    """The forward algorithm. le (B,T,S) log p(y_i | a_i=j) (-inf allowed: a cell no trajectory
    may use), u (B,T,S) stop logits, lengths (B,) real source lengths S_b >= 1, tgt_mask (B,T)
    1 on the T_b >= 1 real target steps (right-padded). Returns log Z (B,) and the cache.
    Values at padded source positions and padded steps are ignored (their gradients are 0)."""
    xp = namespace(le)
    B, T, S = le.shape
    j = xp.arange(S, dtype=lengths.dtype, device=le.device)      # (S,)
    ninf = xp.full((B, S), -xp.inf, dtype=le.dtype, device=le.device)
    alpha = xp.where(j == 0, xp.zeros_like(ninf), ninf)          # (B,S) a_{-1} = 0
    alphas = xp.empty((B, T, S), dtype=le.dtype, device=le.device)
    lts = log_transition(u, lengths)                             # (B,T,S,S) every step at once
    for i in range(T):
        new = le[:, i, :] + logsumexp(alpha[:, :, None] + lts[:, i, ...], axis=1)  # alpha_i(j)
        alpha = xp.where(tgt_mask[:, i, None] > 0, new, alpha)   # (B,S) padded steps: unchanged
        alphas[:, i, :] = alpha
    end = xp.astype(j == lengths[:, None] - 1, le.dtype)         # (B,S) one-hot at S_b-1
    logz = xp.sum(xp.where(end > 0, alpha, xp.zeros_like(alpha)), axis=1)  # (B,) alpha_T(S_b-1)
    return logz, CursorCache(alphas, lts, le, sigmoid(u), lengths, tgt_mask, logz)


def cursors_posterior(cache: CursorCache) -> Array:
    """gamma_i(j) = p(a_i = j | y, x) (B,T,S) by the beta recursion; 0 on padded steps."""
    xp = namespace(cache.le)
    alphas, lts, le, _, lengths, tmask, logz = cache
    B, T, S = le.shape
    j = xp.arange(S, dtype=lengths.dtype, device=le.device)
    beta = xp.where(j == lengths[:, None] - 1, xp.zeros((B, S), dtype=le.dtype, device=le.device),
                    xp.full((B, S), -xp.inf, dtype=le.dtype, device=le.device))  # (B,S) end
    betas = xp.empty((B, T, S), dtype=le.dtype, device=le.device)
    for i in range(T - 1, -1, -1):
        betas[:, i, :] = beta                                    # (B,S) beta_i(j)
        prev = logsumexp(lts[:, i, ...] + (le[:, i, :] + beta)[:, None, :], axis=2)  # (B,S)
        beta = xp.where(tmask[:, i, None] > 0, prev, beta)       # (B,S) beta_{i-1}(k)
    post = xp.exp(alphas + betas - logz[:, None, None])          # (B,T,S) gamma_i(j), all steps
    return xp.where(tmask[:, :, None] > 0, post, xp.zeros_like(post))


def cursors_backward(dlogz: Array, cache: CursorCache) -> tuple[Array, Array]:
    """dlogz (B,) -> dle (B,T,S) = dlogz gamma and du (B,T,S), the stop logits' gradient
    gamma (1-p) - (F_{i-1} - F_i) p at real steps and real j < S_b-1 (module docstring)."""
    xp = namespace(dlogz)
    _, _, le, p, lengths, tmask, _ = cache
    B, T, S = le.shape
    gamma = cursors_posterior(cache)                              # (B,T,S)
    F = xp.cumulative_sum(gamma, axis=2)                          # (B,T,S) P(a_i <= m)
    F_prev = xp.concat([xp.ones((B, 1, S), dtype=le.dtype, device=le.device), F[:, : T - 1, :]],
                       axis=1)                                    # (B,T,S) P(a_{i-1} <= m)
    j = xp.arange(S, dtype=lengths.dtype, device=le.device)
    free = (j < lengths[:, None, None] - 1) & (tmask[:, :, None] > 0)  # (B,T,S) u_ij is used
    du = gamma * (1.0 - p) - (F_prev - F) * p                     # (B,T,S)
    d = dlogz[:, None, None]
    return d * gamma, d * xp.where(free, du, xp.zeros_like(du))
