"""The context models, RNNencdec, the diagonal and RNNsearch (Bahdanau, Cho & Bengio 2014):
their loss and its gradients, and the encoder and one decoder step for greedy and beam search.

Shapes: B batch, S source length, T target length, E embedding, H hidden, A alignment hidden,
L maxout units, V target vocabulary, N = T*B. Time-major (T,B,...) inside the recurrent loops,
batch-major (B,S,...) for the annotations.

One code path for the three variants; each way of choosing the context c_i is a class in
``contexts.py``, forward beside backward. In the order of the forward:

    encoder   x_j = E_src[w_j]; fwd/bwd GRU; h_j = [fwd h_j ; bwd h_j]   (B,S,2H) encoder.py
    s_0       = tanh(W_s bwd h_1 + b_s)                                   (B,H)    encoder.py
    context   rnnsearch: c_i = sum_j alpha_ij h_j,                        (B,2H)   contexts.py
              alpha_i = softmax_j(e_ij), e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)
              encdec:    c_i = c = [fwd h_S ; bwd h_1] for every i (the fixed-length vector)
              diagonal:  c_i = h_min(i,S) (no learnt alignment: two cursors moving in step)
    decoder   s_i = GRU(s_{i-1}; inputs E_tgt y_{i-1} and c_i),           (B,H)    decoder.py,
              gates W.. E y + U.. s + C.. c + b..                                  nn/gru.py
    output    t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i; t_i = maxout(t~_i);        deep_output.py
              p(y_i) = softmax(W_o t_i + b_o)
    loss      -sum_i log p(y_i) / (real target tokens)                             nn/output.py
              (label smoothing eps, training only: -sum_i sum_v q_iv log p_iv / (real target
              tokens), q_i = (1 - eps) onehot(y_i) + eps/V)

The context c_i is computed from s_{i-1} before the decoder update, in the paper's order; the
deep output uses s_i (deep_output.py says why). y_0 is <s>. Dropout (training only) multiplies
x_j, E y_{i-1}, s_i and c_i entering the deep output, and t_i by one mask per sentence
(dropout.py).

The backward runs the same steps in reverse, each line the mirror of one in the forward.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import encoder
from .backend import Array, namespace
from .config import Config
from .contexts import Diagonal, FixedVector, SoftSearch
from .decoder import decoder_flops, decoder_inputs, decoder_inputs_backward
from .deep_output import (
    deep_output_backward,
    deep_output_flops,
    deep_output_forward,
    softmax_loss,
)
from .dropout import NO_MASKS, Masks, drop
from .encoder import Encoded
from .nn.embedding import embedding_forward
from .nn.gru import gru_step_backward, gru_step_forward
from .nn.output import log_softmax
from .params import add_stacked, gate_names, param_shapes

Context = FixedVector | Diagonal | SoftSearch  # how c_i is chosen (contexts.py)


def encode(
    packed: dict[str, Array], ctx: Context, src: Array, src_mask: Array,
    m_x: Array | None = None,
) -> tuple[Encoded, Array, tuple]:
    """The encoder (encoder.py) and the context's per-sentence memory (the keys U_a h_j, the
    fixed vector), made here once. src (B,S) ids, src_mask (B,S) -> (Encoded, s_0 (B,H),
    cache). m_x (B,E): dropout mask on the source embeddings (training only)."""
    enc, s0, cache = encoder.encode(packed, src, src_mask, m_x)
    return enc._replace(memory=ctx.memory(packed, enc.annotations)), s0, cache


class _Decoded(NamedTuple):
    """What the training forward keeps for the backward."""

    enc: Encoded
    s0: Array              # (B,H)
    enc_cache: tuple
    y_prev: Array          # (T,B) y_{i-1}
    ey: Array              # (T,B,E) E_tgt y_{i-1}
    c_all: Array           # (T,B,2H) c_i
    alpha: Array | None    # (B,T,S) the fixed alignment of a state-free context, else None
    s_all: Array           # (T,B,H) s_1..s_T
    gru_caches: list       # T decoder GRU step caches
    ctx_caches: list       # T context step caches (state-dependent contexts)
    out_cache: tuple
    dt: Array | None       # (N,L) the softmax layer's gradient (when grads were asked for)
    masks: Masks           # dropout masks (training), else NO_MASKS


def _forward(
    packed: dict[str, Array], cfg: Config, ctx: Context, batch: Any,
    grads: dict[str, Array] | None = None, masks: Masks | None = None,
    label_smoothing: float = 0.0,
) -> tuple[Array, _Decoded]:
    """The loss of a batch and everything its backward needs. With ``grads``, the softmax
    layer's backward is done here already, chunk by chunk (``softmax_loss``). With ``masks``,
    dropout (dropout.py); with ``label_smoothing`` > 0, the smoothed loss (nn/output.py)."""
    xp = namespace(packed["E_src"])
    dtype = packed["E_src"].dtype
    m = masks if masks is not None else NO_MASKS
    enc, s0, enc_cache = encode(packed, ctx, batch.src, batch.src_mask, m.src_emb)
    B, T = batch.tgt.shape
    H, E = cfg.hidden, cfg.emb
    N = T * B
    tgt, y_prev, ey, xproj = decoder_inputs(packed, batch.tgt, m.tgt_emb)
    C_x, U_zr, U = packed["dec.C_x"], packed["dec.U_zr"], packed["dec.U"]

    alpha, ctx_caches = None, []
    if ctx.state_free:  # c_i does not depend on s_{i-1}: all contexts and C.. c_i at once
        c_all, alpha = ctx.contexts(enc, T)                               # (T,B,2H)
        xproj = xproj + xp.reshape(xp.reshape(c_all, (N, 2 * H)) @ C_x, (T, B, 3 * H))
    else:
        c_all = xp.empty((T, B, 2 * H), dtype=dtype, device=s0.device)

    s = s0
    s_all = xp.empty((T, B, H), dtype=dtype, device=s0.device)            # (T,B,H) s_1..s_T
    gru_caches = []
    for i in range(T):
        xproj_i = xproj[i, ...]                                           # (B,3H)
        if not ctx.state_free:  # c_i from s_{i-1}, before the decoder update
            c, _, ctx_cache = ctx.step(packed, enc, s, i)                 # (B,2H)
            c_all[i, ...] = c
            ctx_caches.append(ctx_cache)
            xproj_i = xproj_i + c @ C_x                                   # (B,3H) + C.. c_i
        s, gru_cache = gru_step_forward(xproj_i, s, U_zr, U)              # (B,H) s_i
        s_all[i, ...] = s
        gru_caches.append(gru_cache)

    t, out_cache = deep_output_forward(
        packed, xp.reshape(drop(s_all, m.state), (N, H)), xp.reshape(ey, (N, E)),
        xp.reshape(drop(c_all, m.context), (N, 2 * H)))                   # (N,L)
    t = xp.reshape(drop(xp.reshape(t, (T, B, cfg.maxout)), m.maxout), (N, cfg.maxout))
    tgt_mask = xp.reshape(xp.permute_dims(xp.astype(batch.tgt_mask, dtype), (1, 0)), (N,))
    weights = tgt_mask / xp.sum(tgt_mask)                                 # (N,) mean per token
    loss_value, dt = softmax_loss(packed, t, xp.reshape(tgt, (N,)), weights, grads,
                                  label_smoothing)
    return loss_value, _Decoded(enc, s0, enc_cache, y_prev, ey, c_all, alpha, s_all,
                                gru_caches, ctx_caches, out_cache, dt, m)


def _backward(packed: dict[str, Array], cfg: Config, ctx: Context, f: _Decoded,
              grads: dict[str, Array]) -> None:
    """Backward of ``_forward`` from the softmax layer's dt down to the embeddings, accumulating
    into ``grads``."""
    xp = namespace(f.s0)
    T, B, H = f.s_all.shape
    N = T * B
    C_x, U_zr, U = packed["dec.C_x"], packed["dec.U_zr"], packed["dec.U"]

    m = f.masks
    L = f.dt.shape[1]
    dt = xp.reshape(drop(xp.reshape(f.dt, (T, B, L)), m.maxout), (N, L))  # forward: t m_t
    ds_out, dey, dc_out = deep_output_backward(dt, f.out_cache, packed, grads)
    ds_out = drop(xp.reshape(ds_out, (T, B, H)), m.state)                 # (T,B,H) s_i m_s
    dc_out = drop(xp.reshape(dc_out, (T, B, 2 * H)), m.context)           # (T,B,2H) c_i m_c
    dxproj = xp.empty((T, B, 3 * H), dtype=f.s_all.dtype, device=f.s_all.device)
    if not ctx.state_free:
        dc_all = xp.empty_like(dc_out)                                    # (T,B,2H)
        dq_all = xp.empty((T, B, ctx.query_width(cfg)), dtype=dc_out.dtype,
                          device=dc_out.device)                           # (T,B,A)
        dkeys = 0.0                                                       # -> (B,S,A)
    ds = xp.zeros_like(f.s0)
    for i in range(T - 1, -1, -1):
        dxproj[i, ...], ds = gru_step_backward(ds + ds_out[i, ...], f.gru_caches[i], U_zr, U)
        if not ctx.state_free:  # forward: c_i fed the gates (C.. c_i) and the deep output
            dc = dc_out[i, ...] + dxproj[i, ...] @ C_x.T                  # (B,2H)
            dc_all[i, ...] = dc
            ds_prev, dq_all[i, ...], dkeys_i = ctx.step_backward(
                dc, f.ctx_caches[i], packed, f.enc, grads)
            ds = ds + ds_prev                                             # c_i read s_{i-1}
            dkeys += dkeys_i                          # a new array once, then in place

    decoder_inputs_backward(packed, f.gru_caches, dxproj, f.ey, f.y_prev, dey, grads, m.tgt_emb)
    dxp2 = xp.reshape(dxproj, (N, 3 * H))                                 # (N,3H)
    add_stacked(grads, gate_names("dec", "C"), xp.reshape(f.c_all, (N, 2 * H)).T @ dxp2)

    if ctx.state_free:
        dc_all = dc_out + xp.reshape(dxp2 @ C_x.T, (T, B, 2 * H))         # (T,B,2H)
        dannotations, dmemory = ctx.contexts_backward(dc_all, f.enc, f.alpha)
    else:
        s_prev = xp.concat([f.s0[None, ...], f.s_all[: T - 1, ...]], axis=0)  # (T,B,H) s_{i-1}
        dannotations = ctx.steps_backward(dc_all, dq_all, s_prev, f.ctx_caches, grads)
        dmemory = (dkeys,)
    dannotations = dannotations + ctx.memory_backward(dmemory, f.enc.annotations, packed, grads)
    encoder.encode_backward(packed, f.enc_cache, dannotations, ds, grads)


def decoder_step(
    packed: dict[str, Array], ctx: Context, enc: Encoded, y_prev: Array, s_prev: Array, i: int
) -> tuple[Array, Array, Array | None]:
    """One decoder step for greedy and beam search: y_prev (B,) ids of y_{i-1} (<s> at i=0),
    s_prev (B,H) s_{i-1}, i the 0-based step -> log p(y_i | y_<i, x) (B,V), s_i (B,H) and the
    alignment alpha_i (B,S) (one-hot for diagonal; None for encdec, which has none)."""
    ey = embedding_forward(packed["E_tgt"], y_prev)                       # (B,E)
    c, alpha, _ = ctx.step(packed, enc, s_prev, i)                        # (B,2H) c_i
    xproj = ey @ packed["dec.W_x"] + packed["dec.b_x"] + c @ packed["dec.C_x"]  # (B,3H)
    s, _ = gru_step_forward(xproj, s_prev, packed["dec.U_zr"], packed["dec.U"])  # (B,H)
    t, _ = deep_output_forward(packed, s, ey, c)                          # (B,L)
    return log_softmax(t @ packed["W_o"] + packed["b_o"]), s, alpha       # (B,V)


class ContextModel:
    """The family of the context models (``model.Family``): the decoder reads a context c_i,
    chosen by ``context``; ``model.FAMILIES`` holds one per variant. Parameters come packed
    (``params.pack_params``)."""

    # The search's alpha_i depends on y_<i only: it is the alignment given the whole output
    # already, with nothing to smooth (the cursors' is not).
    posterior = None
    supports_dropout = True  # dropout.py's masks, all five
    supports_band = False    # every step reads its c_i: no band to leave out
    supports_label_smoothing = True  # the loss is a sum of per-token cross-entropies

    def __init__(self, context: Context) -> None:
        self.context = context
        self.has_alignment = context.has_alignment

    def param_shapes(self, cfg: Config) -> dict[str, tuple[int, ...]]:
        return param_shapes(cfg, True, self.context.param_shapes(cfg))

    def encode(self, packed: dict[str, Array], cfg: Config, src: Array, src_mask: Array
               ) -> tuple[Encoded, Array, tuple]:
        return encode(packed, self.context, src, src_mask)

    def flops(self, cfg: Config, B: int, S: int, T: int) -> int:
        """The matrix products of one training forward, 2 FLOPs per multiply-add: the encoder
        and s_0, the decoder's shared products, C.. c_i of every step, 2 T B 2H 3H (one product
        for all steps with a state-free context, one per step otherwise), the deep output and
        softmax of the T B rows, and the context's own (``contexts.py``)."""
        H = cfg.hidden
        return (encoder.encoder_flops(cfg, B, S) + decoder_flops(cfg, B, T)
                + 2 * T * B * 2 * H * 3 * H + deep_output_flops(cfg, T * B)
                + self.context.flops(cfg, B, S, T))

    def loss(self, packed: dict[str, Array], cfg: Config, batch: Any,
             masks: Masks | None = None, label_smoothing: float = 0.0) -> Array:
        return _forward(packed, cfg, self.context, batch, masks=masks,
                        label_smoothing=label_smoothing)[0]

    def loss_and_grads(self, packed: dict[str, Array], cfg: Config, batch: Any,
                       grads: dict[str, Array], masks: Masks | None = None,
                       label_smoothing: float = 0.0) -> Array:
        loss_value, f = _forward(packed, cfg, self.context, batch, grads, masks, label_smoothing)
        _backward(packed, cfg, self.context, f, grads)
        return loss_value

    def decoder_step(self, packed: dict[str, Array], cfg: Config, enc: Encoded, y_prev: Array,
                     s_prev: Array, i: int) -> tuple[Array, Array, Array | None]:
        return decoder_step(packed, self.context, enc, y_prev, s_prev, i)
