"""What every decoder shares: the target words' input to its GRU, computed for all steps
before the loop, and the GRU's weight gradients, computed after it.

Shapes: B batch, T target length, E embedding, H hidden. Time-major (T,B,...).

    y_{i-1}                     (T,B)    the previous target word, y_0 = <s>
    E_tgt y_{i-1}               (T,B,E)  times the dropout mask m_y
    W.. E_tgt y_{i-1} + b..     (T,B,3H) the decoder GRU's input part for its three gates,
                                         one product for all steps (appendix A.2.2)

A family adds the rest of each gate's input (the context models C.. c_i) and runs the
recurrence s_i = GRU(s_{i-1}, ...) itself (nn/gru.py ``gru_step_forward``).
"""

from __future__ import annotations

from .backend import Array, namespace
from .config import Config
from .data.vocab import BOS_ID
from .dropout import drop
from .nn.embedding import embedding_backward, embedding_forward
from .nn.gru import gru_step_flops, gru_weight_grads
from .params import add_stacked, gate_names


def decoder_inputs(packed: dict[str, Array], tgt_bt: Array, m_y: Array | None = None
                   ) -> tuple[Array, Array, Array, Array]:
    """Targets tgt_bt (B,T) -> y_i (T,B), y_{i-1} (T,B) (y_0 = <s>), E_tgt y_{i-1} (T,B,E) and the
    decoder GRU's input part W.. E y_{i-1} + b.. (T,B,3H), one product for all steps.
    m_y (B,E): dropout mask on the target embeddings (training only)."""
    xp = namespace(tgt_bt)
    B, T = tgt_bt.shape
    tgt = xp.permute_dims(tgt_bt, (1, 0))                                 # (T,B) y_i
    bos = xp.full((1, B), BOS_ID, dtype=tgt.dtype, device=tgt.device)
    y_prev = xp.concat([bos, tgt[: T - 1, ...]], axis=0)                  # (T,B) y_{i-1}, y_0 <s>
    ey = drop(embedding_forward(packed["E_tgt"], y_prev), m_y)            # (T,B,E)
    E = ey.shape[2]
    xproj = xp.reshape(xp.reshape(ey, (T * B, E)) @ packed["dec.W_x"] + packed["dec.b_x"],
                       (T, B, packed["dec.W_x"].shape[1]))                # (T,B,3H)
    return tgt, y_prev, ey, xproj


def decoder_flops(cfg: Config, B: int, T: int) -> int:
    """What every decoder's products share, 2 FLOPs per multiply-add: the input part
    W.. E y_{i-1} of all steps, 2 T B E 3H, and T recurrent steps (a family adds its own)."""
    return 2 * T * B * cfg.emb * 3 * cfg.hidden + T * gru_step_flops(B, cfg.hidden)


def decoder_inputs_backward(
    packed: dict[str, Array], gru_caches: list, dxproj: Array, ey: Array, y_prev: Array,
    dey: Array, grads: dict[str, Array], m_y: Array | None = None,
) -> None:
    """The decoder GRU's weight gradients, one product each after the loop, and the backward of
    ``decoder_inputs``: dxproj (T,B,3H) (the gates' pre-activation gradients), ey (T,B,E),
    y_prev (T,B), dey (T*B,E) the embedding's gradient from elsewhere (the deep output), m_y
    the target embeddings' dropout mask of the forward."""
    xp = namespace(dxproj)
    T, B, H3 = dxproj.shape
    N = T * B
    dxp2 = xp.reshape(dxproj, (N, H3))                                    # (N,3H)
    dU_zr, dU = gru_weight_grads(gru_caches, dxproj)
    add_stacked(grads, gate_names("dec", "U")[:2], dU_zr)
    grads["dec.U"] += dU
    add_stacked(grads, gate_names("dec", "W"), xp.reshape(ey, (N, ey.shape[2])).T @ dxp2)
    add_stacked(grads, gate_names("dec", "b"), xp.sum(dxp2, axis=0))
    dey = dey + dxp2 @ packed["dec.W_x"].T                                # (N,E)
    embedding_backward(grads["E_tgt"], y_prev,
                       drop(xp.reshape(dey, (T, B, ey.shape[2])), m_y))   # forward: E[y] m_y
