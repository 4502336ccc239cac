"""The bidirectional encoder every variant shares (paper section 3.2, appendix A.2.1), the
decoder's initial state, and their backward.

Shapes: B batch, S source length, E embedding, H hidden. Time-major (S,B,...) inside the
recurrent loops, batch-major (B,S,...) for the annotations.

    x_j  = E_src[w_j]                                       (S,B,E)  times the mask m_x
    fwd h_j = GRU(fwd h_{j-1}, x_j), bwd h_j = GRU(bwd h_{j+1}, x_j)      nn/gru.py
    h_j  = [fwd h_j ; bwd h_j]                              (B,S,2H) the annotations
    s_0  = tanh(W_s bwd h_1 + b_s)                          (B,H)    appendix A.2.2

A padded step leaves a direction's state unchanged, and the backward direction starts at each
sentence's last real word. What a family computes once per sentence from the annotations (the
keys U_a h_j, the fixed vector, the cursors' products) is its ``memory`` in ``Encoded``.
"""

from __future__ import annotations

from typing import NamedTuple

from .backend import Array, namespace
from .config import Config
from .dropout import drop
from .nn.embedding import embedding_backward, embedding_forward
from .nn.gru import gru_backward, gru_forward, gru_step_flops
from .params import add_stacked, gate_names


class Encoded(NamedTuple):
    """What the decoder needs of the source, batch-major."""

    annotations: Array          # (B,S,2H) h_j = [fwd h_j ; bwd h_j]
    mask: Array                 # (B,S)    1 on real source tokens (with </s>), params' dtype
    lengths: Array              # (B,)     real source lengths, integer
    memory: tuple[Array, ...]   # the family's per-sentence arrays, (B,...) each


def select(enc: Encoded, idx: Array) -> Encoded:
    """Rows ``idx`` (K,) of every field: for beams, repeat or reorder the sentences."""
    xp = namespace(enc.annotations)
    take = lambda a: xp.take(a, idx, axis=0)  # noqa: E731
    return Encoded(take(enc.annotations), take(enc.mask), take(enc.lengths),
                   tuple(take(m) for m in enc.memory))


def encode(
    packed: dict[str, Array], src: Array, src_mask: Array, m_x: Array | None = None,
) -> tuple[Encoded, Array, tuple]:
    """src (B,S) ids, src_mask (B,S) -> (Encoded with an empty memory, s_0 (B,H), cache).
    m_x (B,E): dropout mask on the source embeddings (training only)."""
    xp = namespace(packed["E_src"])
    dtype = packed["E_src"].dtype
    mask = xp.astype(src_mask, dtype)                                  # (B,S)
    ids = xp.permute_dims(src, (1, 0))                                 # (S,B) time-major
    x = drop(embedding_forward(packed["E_src"], ids), m_x)             # (S,B,E) x_j = E_src[w_j]
    gru = {p: (packed[f"{p}.W_x"], packed[f"{p}.b_x"], packed[f"{p}.U_zr"], packed[f"{p}.U"])
           for p in ("enc_fwd", "enc_bwd")}
    mask_t = xp.permute_dims(mask, (1, 0))                             # (S,B)
    hf, cache_f = gru_forward(x, mask_t, *gru["enc_fwd"])              # (S,B,H) fwd h_j
    hb, cache_b = gru_forward(x, mask_t, *gru["enc_bwd"], reverse=True)  # (S,B,H) bwd h_j
    annotations = xp.concat([xp.permute_dims(hf, (1, 0, 2)), xp.permute_dims(hb, (1, 0, 2))],
                            axis=2)                                    # (B,S,2H) h_j
    s0 = xp.tanh(hb[0, ...] @ packed["W_s"] + packed["b_s"])  # (B,H) s_0 = tanh(W_s bwd h_1)
    lengths = xp.sum(xp.astype(src_mask > 0, xp.int64), axis=1)       # (B,)
    return (Encoded(annotations, mask, lengths, ()), s0,
            (ids, cache_f, cache_b, hb[0, ...], s0, m_x))


def encoder_flops(cfg: Config, B: int, S: int) -> int:
    """The encoder's and s_0's matrix products, 2 FLOPs per multiply-add: per direction the
    input parts of all steps, 2 S B E 3H, and S recurrent steps; s_0, 2 B H H."""
    E, H = cfg.emb, cfg.hidden
    return 2 * (2 * S * B * E * 3 * H + S * gru_step_flops(B, H)) + 2 * B * H * H


def encode_backward(
    packed: dict[str, Array], cache: tuple, dannotations: Array, ds0: Array,
    grads: dict[str, Array],
) -> None:
    """Backward of ``encode`` from dannotations (B,S,2H) and ds0 (B,H) (the memory's gradient
    already turned into dannotations by the family), accumulating into ``grads``."""
    xp = namespace(ds0)
    ids, cache_f, cache_b, hb1, s0, m_x = cache
    H = dannotations.shape[2] // 2
    dhf = xp.permute_dims(dannotations[:, :, :H], (1, 0, 2))              # (S,B,H)
    dhb = xp.permute_dims(dannotations[:, :, H:], (1, 0, 2))              # (S,B,H)
    # forward: s0 = tanh(hb1 @ W_s + b_s)
    ds0_pre = ds0 * (1.0 - s0 * s0)                                       # (B,H)
    grads["W_s"] += hb1.T @ ds0_pre
    grads["b_s"] += xp.sum(ds0_pre, axis=0)
    dhb1 = ds0_pre @ packed["W_s"].T                                      # (B,H)
    dhb = xp.concat([(dhb[0, ...] + dhb1)[None, ...], dhb[1:, ...]], axis=0)             # (S,B,H)
    dx = 0.0
    for prefix, dh, c in (("enc_fwd", dhf, cache_f), ("enc_bwd", dhb, cache_b)):
        dxp, dW_x, db_x, dU_zr, dU = gru_backward(
            dh, c, packed[f"{prefix}.W_x"], packed[f"{prefix}.U_zr"], packed[f"{prefix}.U"])
        dx = dx + dxp                                                     # (S,B,E)
        add_stacked(grads, gate_names(prefix, "W"), dW_x)
        add_stacked(grads, gate_names(prefix, "b"), db_x)
        add_stacked(grads, gate_names(prefix, "U")[:2], dU_zr)
        grads[f"{prefix}.U"] += dU
    embedding_backward(grads["E_src"], ids, drop(dx, m_x))               # forward: x = E[w] m_x
