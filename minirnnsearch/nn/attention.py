"""The alignment model (Bahdanau et al. 2014, eq. 5-6 and appendix A.1.2).

    e_ij     = v_a^T tanh(W_a s_{i-1} + U_a h_j)       eq. 6, additive attention
    alpha_ij = exp(e_ij) / sum_k exp(e_ik)              eq. 6, over real source words only
    c_i      = sum_j alpha_ij h_j                       eq. 5

``U_a h_j`` (the keys) does not depend on i: it is computed once per sentence by the caller,
and so is ``q = W_a s_{i-1}`` (one small product per step). The softmax subtracts the row
maximum and gives padded positions exactly zero weight.

The two other alignments of the paper's story use ``context_forward`` with fixed weights:
``diagonal_alignment`` (c_i = h_min(i,S), two cursors moving in step).
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import Array, apply_inplace, namespace


def masked_softmax(e: Array, mask: Array) -> Array:
    """Softmax of e (B,S) over the last axis where mask (B,S) is 1; exactly 0 where it is 0.
    Every row needs at least one real position (every source sentence has its </s>)."""
    xp = namespace(e)
    e = xp.where(mask > 0, e, -xp.inf)                    # (B,S)
    ex = xp.exp(e - xp.max(e, axis=-1, keepdims=True))    # (B,S)  stable: subtract the max
    return ex / xp.sum(ex, axis=-1, keepdims=True)        # (B,S)


def softmax_backward(dalpha: Array, alpha: Array) -> Array:
    """Backward of a softmax over the last axis: de = alpha * (dalpha - sum(alpha * dalpha))."""
    xp = namespace(alpha)
    return alpha * (dalpha - xp.sum(alpha * dalpha, axis=-1, keepdims=True))


def context_forward(alpha: Array, annotations: Array) -> Array:
    """c_i = sum_j alpha_ij h_j (eq. 5). alpha (B,...,S), annotations (B,S,2H) -> (B,...,2H).
    alpha may hold one step (B,S) or all steps batch-major (B,T,S)."""
    if alpha.ndim == 2:
        return (alpha[:, None, :] @ annotations)[:, 0, :]  # (B,2H)
    return alpha @ annotations                            # (B,T,2H)


def context_backward_weights(dc: Array, annotations: Array) -> Array:
    """dalpha_ij = dc_i . h_j, the context's gradient on its weights.
    dc (B,2H) one step or (B,T,2H) all steps; annotations (B,S,2H) -> (B,S) or (B,T,S)."""
    xp = namespace(dc)
    if dc.ndim == 2:
        return (annotations @ dc[:, :, None])[:, :, 0]    # (B,S)
    return dc @ xp.permute_dims(annotations, (0, 2, 1))   # (B,T,S)


def context_backward_annotations(dc: Array, alpha: Array) -> Array:
    """dh_j = sum_i alpha_ij dc_i for all steps at once (one batched product after the loop).
    dc (B,T,2H), alpha (B,T,S) -> dannotations (B,S,2H)."""
    xp = namespace(dc)
    return xp.permute_dims(alpha, (0, 2, 1)) @ dc         # (B,S,2H)


class AttentionCache(NamedTuple):
    act: Array    # (B,S,A) tanh(W_a s_{i-1} + U_a h_j)
    alpha: Array  # (B,S)


def attention_step_forward(
    q: Array, keys: Array, annotations: Array, mask: Array, v_a: Array
) -> tuple[Array, Array, AttentionCache]:
    """One decoder step of the alignment model.

    q (B,A) = W_a s_{i-1}; keys (B,S,A) = U_a h_j; annotations (B,S,2H); mask (B,S); v_a (A,).
    Returns c_i (B,2H), alpha_i (B,S) and the cache."""
    xp = namespace(q)
    act = apply_inplace(xp.tanh, keys + q[:, None, :])    # (B,S,A)  tanh(W_a s_{i-1} + U_a h_j)
    e = act @ v_a                                         # (B,S)    eq. 6: e_ij = v_a^T tanh(..)
    alpha = masked_softmax(e, mask)                       # (B,S)    alpha_ij, real words only
    c = context_forward(alpha, annotations)               # (B,2H)   eq. 5: c_i = sum_j alpha_ij h_j
    return c, alpha, AttentionCache(act, alpha)


def attention_step_backward(
    dalpha: Array, cache: AttentionCache, v_a: Array
) -> tuple[Array, Array, Array]:
    """Backward of the scores and softmax of one step, from dalpha (B,S) (the caller gets it
    from ``context_backward_weights``; the annotations' part of the context is summed over all
    steps at once after the loop by ``context_backward_annotations``).

    Returns dq (B,A) (-> W_a, s_{i-1}), dkeys (B,S,A) (-> U_a, h_j), dv_a (A,)."""
    xp = namespace(dalpha)
    act, alpha = cache
    B, S, A = act.shape
    de = softmax_backward(dalpha, alpha)                  # (B,S)   0 at padded positions
    dv_a = xp.reshape(de, (1, B * S)) @ xp.reshape(act, (B * S, A))  # (1,A)  e = act @ v_a
    # dkeys = de_ij v_a (1 - act^2), backprop through e = v_a . tanh(..), written in place: at
    # the paper's sizes each (B,S,A) temporary is MBs of fresh memory, and three fewer of them
    # per step make this function about 30% faster (python -m minirnnsearch.bench).
    dkeys = act * act                                     # (B,S,A) act^2
    dkeys -= 1.0                                          #         act^2 - 1
    dkeys *= -de[:, :, None]                              #         de (1 - act^2)
    dkeys *= v_a                                          #         de v_a (1 - act^2)
    dq = xp.sum(dkeys, axis=1)                            # (B,A)   q is broadcast over j
    return dq, dkeys, dv_a[0, :]


def diagonal_alignment(lengths: Array, steps: Array, S: int, dtype: object) -> Array:
    """The hard-coded diagonal: alpha_ij = 1 for j = min(i, S_b) (1-based), else 0.

    lengths (B,) real source lengths (with </s>); steps (T,) 0-based decoder steps
    -> (B,T,S) one-hot weights of ``dtype``."""
    xp = namespace(lengths)
    pos = xp.minimum(steps[None, :], lengths[:, None] - 1)  # (B,T)  two cursors in step
    j = xp.arange(S, dtype=pos.dtype, device=pos.device)    # (S,)
    return xp.astype(j[None, None, :] == pos[:, :, None], dtype)  # (B,T,S) one-hot
