"""The deep output with maxout (appendix A.2.2) and the chunked softmax loss, the linear parts
around ``nn/output.py``'s maxout and softmax cross-entropy.

Shapes: N = T*B rows (one per target step of a sentence), E embedding, H hidden, L maxout
units, V target vocabulary.

    t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i                (N,2L)
    t_i  = [max(t~_{i,2k-1}, t~_{i,2k})]_{k=1..L}           (N,L)   maxout over pairs
    loss = -sum_i w_i log softmax(W_o t_i + b_o)[y_i]       w_i: 1/(real target tokens), 0 on pads
           (training with label smoothing eps: -sum_i w_i sum_v q_iv log p_iv,
            q_i = (1 - eps) onehot(y_i) + eps/V; nn/output.py)

The appendix (A.2.2) writes s_{i-1} in t~_i, the main text (eq. 4) writes s_i: this code uses s_i,
the state that has already seen c_i and y_{i-1}. The cursors have no c_i: their emission adds
C_o h_j per source position instead (cursor_model.py), with the same softmax chunking
(``logit_chunks``, ``logits_backward``).
"""

from __future__ import annotations

from collections.abc import Iterator

from .backend import Array, namespace
from .config import Config
from .nn.output import (
    logits_forward,
    maxout_backward,
    maxout_forward,
    softmax_xent_backward,
    softmax_xent_forward,
)

# Rows of the (N,V) logits handled at once: the softmax and its gradient go chunk by chunk, so
# the full logits never exist (at V = 30000 they would be the memory peak). 256 rows measured
# fastest (python -m minirnnsearch.bench, NumPy, 2 cores) against 128, 512 and 1024 at both
# presets: large enough for efficient products, small enough to stay in cache.
SOFTMAX_CHUNK_ROWS = 256


def deep_output_forward(
    packed: dict[str, Array], s: Array, ey: Array, c: Array
) -> tuple[Array, tuple]:
    """s (N,H), ey (N,E), c (N,2H) -> t (N,L) = maxout(U_o s + V_o E y + C_o c) and the cache."""
    t_tilde = s @ packed["U_o"] + ey @ packed["V_o"] + c @ packed["C_o"]  # (N,2L)
    t, first = maxout_forward(t_tilde)                                    # (N,L)
    return t, (s, ey, c, first)


def deep_output_backward(
    dt: Array, cache: tuple, packed: dict[str, Array], grads: dict[str, Array]
) -> tuple[Array, Array, Array]:
    """dt (N,L) -> ds (N,H), dey (N,E), dc (N,2H); weight gradients into ``grads``."""
    s, ey, c, first = cache
    dt_tilde = maxout_backward(dt, first)                                 # (N,2L)
    grads["U_o"] += s.T @ dt_tilde
    grads["V_o"] += ey.T @ dt_tilde
    grads["C_o"] += c.T @ dt_tilde
    return (dt_tilde @ packed["U_o"].T, dt_tilde @ packed["V_o"].T, dt_tilde @ packed["C_o"].T)


def deep_output_flops(cfg: Config, N: int) -> int:
    """The products of the deep output and the softmax layer for N rows, 2 FLOPs per
    multiply-add: t~ = U_o s + V_o E y + C_o c, 2 N (H + E + 2H) 2L; W_o t, 2 N L V."""
    E, H, L, V = cfg.emb, cfg.hidden, cfg.maxout, cfg.tgt_vocab
    return 2 * N * (H + E + 2 * H) * 2 * L + 2 * N * L * V


def logit_chunks(packed: dict[str, Array], t: Array, size: int, axis: int = 0
                 ) -> Iterator[tuple[int, int, Array]]:
    """The output layer's logits W_o t + b_o, ``size`` indices of ``axis`` at a time, so the
    logits of all of t never exist at once: t (N,L) by rows (axis 0) or (B,S,L) by source
    positions (axis 1). Yields (a, z, logits) for the indices a..z-1 of the axis, logits (n,V)
    or (B,n,V). Every chunked softmax of the package runs in this loop: the loss here, the
    cursors' emissions and their decoder step (cursor_model.py)."""
    n = t.shape[axis]
    for a in range(0, n, size):
        z = min(a + size, n)                                              # indices a..z-1
        t_c = t[a:z, ...] if axis == 0 else t[:, a:z, ...]                # (n,L) or (B,n,L)
        yield a, z, logits_forward(t_c, packed["W_o"], packed["b_o"])     # (n,V) or (B,n,V)


def logits_backward(dlogits: Array, t_c: Array, packed: dict[str, Array],
                    grads: dict[str, Array]) -> Array:
    """Backward of one chunk's logits = t_c W_o + b_o: dlogits (n,V) -> dt_c (n,L); dW_o (L,V)
    and db_o (V,) into ``grads``."""
    xp = namespace(dlogits)
    grads["W_o"] += t_c.T @ dlogits                                       # (L,V)
    grads["b_o"] += xp.sum(dlogits, axis=0)                               # (V,)
    return dlogits @ packed["W_o"].T                                      # (n,L)


def softmax_loss(
    packed: dict[str, Array], t: Array, targets: Array, weights: Array,
    grads: dict[str, Array] | None = None, label_smoothing: float = 0.0,
) -> tuple[Array, Array | None]:
    """loss = -sum_n weights_n log softmax(W_o t_n + b_o)[y_n]; t (N,L), targets (N,), weights
    (N,), SOFTMAX_CHUNK_ROWS rows at a time (``logit_chunks``). With ``label_smoothing`` eps > 0,
    the cross-entropy against (1 - eps) onehot(y_n) + eps/V instead (``softmax_xent_forward``).
    With ``grads``, the backward runs in the same chunk loop: dW_o, db_o accumulate into grads
    and dt (N,L) is returned (else None)."""
    xp = namespace(t)
    loss, dts = 0.0, []
    for a, z, logits in logit_chunks(packed, t, SOFTMAX_CHUNK_ROWS):      # rows a..z-1
        loss_c, cache = softmax_xent_forward(logits, targets[a:z], weights[a:z], label_smoothing)
        loss = loss + loss_c
        if grads is not None:
            dts.append(logits_backward(softmax_xent_backward(cache), t[a:z, ...], packed,
                                       grads))                            # (n,L)
    return loss, (xp.concat(dts, axis=0) if grads is not None else None)
