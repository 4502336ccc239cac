"""RNNsearch (Bahdanau, Cho & Bengio 2014): parameters, the loss and its gradients, and the
encoder and one decoder step exposed for greedy and beam search.

Shapes: B batch, S source length, T target length, E embedding (paper m=620), H hidden
(n=1000), A alignment hidden (n'=1000), L maxout units (l=500), Vx/Vy vocabularies.
Time-major (T,B,...) inside the recurrent loops, batch-major (B,S,...) for the annotations.

The model, one code path for three variants (``Config.variant``); each way of choosing the
context has its own class, forward beside backward, in ``contexts.py``:

    encoder   x_j = E_src[w_j]; fwd/bwd GRU (nn/gru.py); h_j = [fwd h_j ; bwd h_j]   (B,S,2H)
    s_0       = tanh(W_s bwd h_1 + b_s)                                             (B,H)
    context   rnnsearch: c_i = sum_j alpha_ij h_j,
              alpha_i = softmax_j(e_ij), e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)
              encdec:    c_i = c = [fwd h_S ; bwd h_1] for every i (the fixed-length vector)
              diagonal:  c_i = h_min(i,S) (no learnt alignment: two cursors moving in step)
              cursors:   no c_i; a latent monotone source cursor marginalised by dynamic
                         programming (Bahdanau's first idea): its decoder and output are in
                         cursor_model.py, which this module hands the cursors' loss and step
    decoder   s_i = GRU(s_{i-1}; inputs E_tgt y_{i-1} and c_i), gates W.. E y + U.. s + C.. c + b..
    output    t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i; t_i = maxout(t~_i);
              p(y_i) = softmax(W_o t_i + b_o)

The appendix (A.2.2) writes s_{i-1} in t~_i, the main text (eq. 4) writes s_i: this code uses s_i,
the state that has already seen c_i and y_{i-1}. The context c_i is computed from s_{i-1} before
the decoder update, in the paper's order. y_0 is <s>.

Dropout (training only; the paper used none, Nematus puts it in these places for this model):
one mask per sentence, the same at every time step (Gal & Ghahramani 2016, Nematus's
``shared_dropout_layer``), inverted (kept units scaled by 1/(1-p)), on
    x_j      the source embeddings, before both encoder directions          m_x (B,E)
    E y_i-1  the target embeddings, before the decoder GRU and the output   m_y (B,E)
    s_i, c_i the decoder states and contexts entering the deep output       m_s (B,H), m_c (B,2H)
    t_i      the maxout layer, before W_o                                   m_t (B,L)
The recurrence itself is not dropped (s_i goes on to s_{i+1} whole). Decoding never drops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from . import cursor_model  # circular on purpose: it uses encode() etc. at call time
from .backend import Array, Backend, dropout_mask, namespace
from .contexts import CONTEXTS, Encoded
from .data.vocab import BOS_ID
from .nn.embedding import embedding_backward, embedding_forward
from .nn.gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward, gru_weight_grads
from .nn.output import (
    log_softmax,
    maxout_backward,
    maxout_forward,
    softmax_xent_backward,
    softmax_xent_forward,
)

VARIANTS = tuple(CONTEXTS)  # rnnsearch, encdec, diagonal, cursors: see contexts.py

# Model sizes by name. "paper" is appendix A/B.1 of the paper (its vocabularies were 30,000).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(emb=32, hidden=64, align=64, maxout=32),        # debugging, seconds per epoch
    "small": dict(emb=128, hidden=256, align=256, maxout=128),   # the built-in corpus
    "paper": dict(emb=620, hidden=1000, align=1000, maxout=500),  # m, n, n', l of the paper
}


@dataclass
class Config:
    """Model configuration; sizes default to the ``small`` preset."""

    src_vocab: int              # Vx, source vocabulary size including the 4 specials
    tgt_vocab: int              # Vy, target vocabulary size including the 4 specials
    variant: str = "rnnsearch"  # rnnsearch | encdec | diagonal | cursors
    emb: int = 128              # E, word embedding size (paper m = 620)
    hidden: int = 256           # H, GRU state size per direction (paper n = 1000)
    align: int = 256            # A, alignment model hidden size (paper n' = 1000)
    maxout: int = 128           # L, maxout units of the deep output (paper l = 500)
    band: int = 0               # cursors, training only: emissions within +-band of the
                                # diagonal (0: every source position, the exact marginal)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}: choose one of {VARIANTS}")
        for f in fields(self):
            if f.type == "int" and getattr(self, f.name) < (0 if f.name == "band" else 1):
                raise ValueError(f"config {f.name} must be a "
                                 f"{'non-negative' if f.name == 'band' else 'positive'} integer")

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> Config:
        """``Config.from_preset("paper", src_vocab=30000, tgt_vocab=30000)``."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}: choose one of {tuple(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """The fields of ``d``; ``band``, added later, takes its default when missing."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name != "band" or f.name in d})


GATES = ("z", "r", "")  # update gate, reset gate, candidate: W_z, W_r, W (and U.., C.., b..)


def _gate_names(prefix: str, mat: str) -> list[str]:
    """``_gate_names("dec", "C")`` -> ["dec.C_z", "dec.C_r", "dec.C"]."""
    return [f"{prefix}.{mat}_{g}" if g else f"{prefix}.{mat}" for g in GATES]


def param_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape. Matrices are stored (in, out): ``x @ W`` = paper W x."""
    E, H, L = cfg.emb, cfg.hidden, cfg.maxout
    shapes: dict[str, tuple[int, ...]] = {"E_src": (cfg.src_vocab, E), "E_tgt": (cfg.tgt_vocab, E)}
    for prefix in ("enc_fwd", "enc_bwd", "dec"):
        for n in _gate_names(prefix, "W"):
            shapes[n] = (E, H)                  # input -> gate
        for n in _gate_names(prefix, "U"):
            shapes[n] = (H, H)                  # recurrent
        if prefix == "dec" and CONTEXTS[cfg.variant].has_context:
            for n in _gate_names(prefix, "C"):
                shapes[n] = (2 * H, H)          # context -> gate
        for n in _gate_names(prefix, "b"):
            shapes[n] = (H,)
    shapes["W_s"], shapes["b_s"] = (H, H), (H,)  # s_0 = tanh(W_s bwd h_1 + b_s)
    shapes.update(CONTEXTS[cfg.variant].param_shapes(cfg))  # eq. 6's, or the cursors' stop
    shapes["U_o"], shapes["V_o"], shapes["C_o"] = (H, 2 * L), (E, 2 * L), (2 * H, 2 * L)
    shapes["W_o"], shapes["b_o"] = (L, cfg.tgt_vocab), (cfg.tgt_vocab,)
    return shapes


class Masks(NamedTuple):
    """Dropout masks, one row per sentence, shared by all its time steps (see the docstring)."""

    src_emb: Array   # (B,E)  on x_j
    tgt_emb: Array   # (B,E)  on E_tgt y_{i-1}
    state: Array     # (B,H)  on s_i entering the deep output
    context: Array   # (B,2H) on c_i entering the deep output
    maxout: Array    # (B,L)  on t_i


def dropout_masks(cfg: Config, batch_size: int, p: float, rng: np.random.Generator,
                  backend: Backend, dtype: str = "float32") -> Masks | None:
    """Fresh masks for one training batch, or None for p = 0 (nothing drawn, nothing
    multiplied: the loss is exactly the undropped one). Random numbers come from ``rng`` on the
    host (``backend.dropout_mask``)."""
    if p == 0.0:
        return None
    sizes = Masks(cfg.emb, cfg.emb, cfg.hidden, 2 * cfg.hidden, cfg.maxout)
    return Masks(*(dropout_mask(backend, (batch_size, d), p, rng, dtype) for d in sizes))


NO_MASKS = Masks(None, None, None, None, None)  # dropout off: _drop leaves every input as it is


def _no_dropout(cfg: Config, masks: Masks | None) -> None:
    if masks is not None:
        raise ValueError(f"dropout is not implemented for the {cfg.variant} variant")


def _drop(a: Array, m: Array | None) -> Array:
    """a (T,B,D) or (B,D) times its sentence's mask m (B,D) at every step; a if m is None."""
    return a if m is None else a * (m if a.ndim == 2 else m[None, ...])


def _is_recurrent(name: str) -> bool:
    return name.split(".")[-1] in ("U_z", "U_r", "U")


def init_params(
    cfg: Config, backend: Backend, seed: int = 0, dtype: str = "float32"
) -> dict[str, Array]:
    """Appendix B.1: recurrent U matrices random orthogonal; W_a, U_a ~ N(0, 0.001^2); v_a and
    all biases zero; every other matrix ~ N(0, 0.01^2). The cursors' stop scores are treated as
    the alignment model's: W_stop, U_stop like W_a, U_a; v_stop like v_a (so p_stop starts at
    1/2 everywhere). Drawn on the host with NumPy from
    ``seed`` (the same numbers on every backend), then moved to the device once."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if _is_recurrent(name):
            q, r = np.linalg.qr(rng.standard_normal(shape))
            value = q * np.sign(np.diag(r))     # uniformly random orthogonal
        elif name in ("W_a", "U_a", "W_stop", "U_stop"):
            value = rng.normal(0.0, 0.001, shape)
        elif len(shape) == 1:                   # v_a, v_stop and the biases
            value = np.zeros(shape)
        else:
            value = rng.normal(0.0, 0.01, shape)
        params[name] = backend.asarray(value, dtype=dtype)
    return params


def pack_params(params: dict[str, Array]) -> dict[str, Array]:
    """The parameters plus the stacked matrices the fast path multiplies with, per GRU:
    ``W_x = [W_z | W_r | W]`` (E,3H), ``b_x`` (3H,), ``U_zr = [U_z | U_r]`` (H,2H) and for the
    decoder ``C_x = [C_z | C_r | C]`` (2H,3H) (not for the cursors, whose decoder has no
    context). Built once per loss call or per decoding run."""
    xp = namespace(params["E_src"])
    packed = dict(params)
    for prefix in ("enc_fwd", "enc_bwd", "dec"):
        packed[f"{prefix}.W_x"] = xp.concat([params[n] for n in _gate_names(prefix, "W")], axis=1)
        packed[f"{prefix}.b_x"] = xp.concat([params[n] for n in _gate_names(prefix, "b")])
        packed[f"{prefix}.U_zr"] = xp.concat([params[f"{prefix}.U_z"], params[f"{prefix}.U_r"]],
                                             axis=1)
    if "dec.C" in params:
        packed["dec.C_x"] = xp.concat([params[n] for n in _gate_names("dec", "C")], axis=1)
    return packed


def _add_stacked(grads: dict[str, Array], names: list[str], d: Array) -> None:
    """Split the gradient of a stacked matrix (.., k*H) back onto its k named parts."""
    H = d.shape[-1] // len(names)
    for k, n in enumerate(names):
        grads[n] += d[..., k * H : (k + 1) * H]


def encode(
    packed: dict[str, Array], cfg: Config, src: Array, src_mask: Array,
    m_x: Array | None = None,
) -> tuple[Encoded, Array, tuple]:
    """The bidirectional encoder. src (B,S) ids, src_mask (B,S) -> (Encoded, s_0 (B,H), cache).
    The context's per-sentence memory (the keys U_a h_j, the fixed vector) is made here once.
    m_x (B,E): dropout mask on the source embeddings (training only)."""
    xp = namespace(packed["E_src"])
    dtype = packed["E_src"].dtype
    mask = xp.astype(src_mask, dtype)                                  # (B,S)
    ids = xp.permute_dims(src, (1, 0))                                 # (S,B) time-major
    x = _drop(embedding_forward(packed["E_src"], ids), m_x)            # (S,B,E) x_j = E_src[w_j]
    gru = {p: (packed[f"{p}.W_x"], packed[f"{p}.b_x"], packed[f"{p}.U_zr"], packed[f"{p}.U"])
           for p in ("enc_fwd", "enc_bwd")}
    mask_t = xp.permute_dims(mask, (1, 0))                             # (S,B)
    hf, cache_f = gru_forward(x, mask_t, *gru["enc_fwd"])              # (S,B,H) fwd h_j
    hb, cache_b = gru_forward(x, mask_t, *gru["enc_bwd"], reverse=True)  # (S,B,H) bwd h_j
    annotations = xp.concat([xp.permute_dims(hf, (1, 0, 2)), xp.permute_dims(hb, (1, 0, 2))],
                            axis=2)                                    # (B,S,2H) h_j
    s0 = xp.tanh(hb[0, ...] @ packed["W_s"] + packed["b_s"])  # (B,H) s_0 = tanh(W_s bwd h_1)
    lengths = xp.sum(xp.astype(src_mask > 0, xp.int64), axis=1)       # (B,)
    memory = CONTEXTS[cfg.variant].memory(packed, annotations)
    return (Encoded(annotations, mask, lengths, memory), s0,
            (ids, cache_f, cache_b, hb[0, ...], s0, m_x))


def encode_backward(
    packed: dict[str, Array], cache: tuple, dannotations: Array, ds0: Array,
    grads: dict[str, Array],
) -> None:
    """Backward of ``encode`` from dannotations (B,S,2H) and ds0 (B,H) (the memory's gradient
    already turned into dannotations by the context), accumulating into ``grads``."""
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
        _add_stacked(grads, _gate_names(prefix, "W"), dW_x)
        _add_stacked(grads, _gate_names(prefix, "b"), db_x)
        _add_stacked(grads, _gate_names(prefix, "U")[:2], dU_zr)
        grads[f"{prefix}.U"] += dU
    embedding_backward(grads["E_src"], ids, _drop(dx, m_x))              # forward: x = E[w] m_x


def _deep_output_forward(
    packed: dict[str, Array], s: Array, ey: Array, c: Array
) -> tuple[Array, tuple]:
    """s (N,H), ey (N,E), c (N,2H) -> t (N,L) = maxout(U_o s + V_o E y + C_o c) and the cache."""
    t_tilde = s @ packed["U_o"] + ey @ packed["V_o"] + c @ packed["C_o"]  # (N,2L)
    t, first = maxout_forward(t_tilde)                                    # (N,L)
    return t, (s, ey, c, first)


def _deep_output_backward(
    dt: Array, cache: tuple, packed: dict[str, Array], grads: dict[str, Array]
) -> tuple[Array, Array, Array]:
    """dt (N,L) -> ds (N,H), dey (N,E), dc (N,2H); weight gradients into ``grads``."""
    s, ey, c, first = cache
    dt_tilde = maxout_backward(dt, first)                                 # (N,2L)
    grads["U_o"] += s.T @ dt_tilde
    grads["V_o"] += ey.T @ dt_tilde
    grads["C_o"] += c.T @ dt_tilde
    return (dt_tilde @ packed["U_o"].T, dt_tilde @ packed["V_o"].T, dt_tilde @ packed["C_o"].T)


# Rows of the (N,V) logits handled at once: the softmax and its gradient go chunk by chunk, so
# the full logits never exist (at V = 30000 they would be the memory peak). 256 rows measured
# fastest (python -m minirnnsearch.bench, NumPy, 2 cores) against 128, 512 and 1024 at both
# presets: large enough for efficient products, small enough to stay in cache.
SOFTMAX_CHUNK_ROWS = 256


def _softmax_loss(
    packed: dict[str, Array], t: Array, targets: Array, weights: Array,
    grads: dict[str, Array] | None = None,
) -> tuple[Array, Array | None]:
    """loss = -sum_n weights_n log softmax(W_o t_n + b_o)[y_n]; t (N,L), targets (N,), weights
    (N,). With ``grads``, the backward runs in the same chunk loop: dW_o, db_o accumulate into
    grads and dt (N,L) is returned (else None)."""
    xp = namespace(t)
    N = t.shape[0]
    W_o, b_o = packed["W_o"], packed["b_o"]
    rows = SOFTMAX_CHUNK_ROWS
    loss, dts = 0.0, []
    for a in range(0, N, rows):
        z = min(a + rows, N)                                              # rows a..z-1
        t_c = t[a:z, ...]                                                 # (n,L)
        loss_c, cache = softmax_xent_forward(t_c @ W_o + b_o, targets[a:z], weights[a:z])
        loss = loss + loss_c
        if grads is not None:
            dlogits = softmax_xent_backward(cache)                        # (n,V)
            grads["W_o"] += t_c.T @ dlogits                               # (L,V)
            grads["b_o"] += xp.sum(dlogits, axis=0)                       # (V,)
            dts.append(dlogits @ W_o.T)                                   # (n,L)
    return loss, (xp.concat(dts, axis=0) if grads is not None else None)


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
    ey = _drop(embedding_forward(packed["E_tgt"], y_prev), m_y)           # (T,B,E)
    E = ey.shape[2]
    xproj = xp.reshape(xp.reshape(ey, (T * B, E)) @ packed["dec.W_x"] + packed["dec.b_x"],
                       (T, B, packed["dec.W_x"].shape[1]))                # (T,B,3H)
    return tgt, y_prev, ey, xproj


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
    packed: dict[str, Array], cfg: Config, batch: Any, grads: dict[str, Array] | None = None,
    masks: Masks | None = None,
) -> tuple[Array, _Decoded]:
    """The loss of a batch and everything its backward needs. With ``grads``, the softmax
    layer's backward is done here already, chunk by chunk (``_softmax_loss``). With ``masks``,
    dropout (see the module docstring)."""
    xp = namespace(packed["E_src"])
    dtype = packed["E_src"].dtype
    ctx = CONTEXTS[cfg.variant]
    m = masks if masks is not None else NO_MASKS
    enc, s0, enc_cache = encode(packed, cfg, batch.src, batch.src_mask, m.src_emb)
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

    t, out_cache = _deep_output_forward(
        packed, xp.reshape(_drop(s_all, m.state), (N, H)), xp.reshape(ey, (N, E)),
        xp.reshape(_drop(c_all, m.context), (N, 2 * H)))                  # (N,L)
    t = xp.reshape(_drop(xp.reshape(t, (T, B, cfg.maxout)), m.maxout), (N, cfg.maxout))
    tgt_mask = xp.reshape(xp.permute_dims(xp.astype(batch.tgt_mask, dtype), (1, 0)), (N,))
    weights = tgt_mask / xp.sum(tgt_mask)                                 # (N,) mean per token
    loss_value, dt = _softmax_loss(packed, t, xp.reshape(tgt, (N,)), weights, grads)
    return loss_value, _Decoded(enc, s0, enc_cache, y_prev, ey, c_all, alpha, s_all,
                                gru_caches, ctx_caches, out_cache, dt, m)


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
    _add_stacked(grads, _gate_names("dec", "U")[:2], dU_zr)
    grads["dec.U"] += dU
    _add_stacked(grads, _gate_names("dec", "W"), xp.reshape(ey, (N, ey.shape[2])).T @ dxp2)
    _add_stacked(grads, _gate_names("dec", "b"), xp.sum(dxp2, axis=0))
    dey = dey + dxp2 @ packed["dec.W_x"].T                                # (N,E)
    embedding_backward(grads["E_tgt"], y_prev,
                       _drop(xp.reshape(dey, (T, B, ey.shape[2])), m_y))  # forward: E[y] m_y


def _backward(packed: dict[str, Array], cfg: Config, f: _Decoded,
              grads: dict[str, Array]) -> None:
    """Backward of ``_forward`` from the softmax layer's dt down to the embeddings, accumulating
    into ``grads``."""
    xp = namespace(f.s0)
    ctx = CONTEXTS[cfg.variant]
    T, B, H = f.s_all.shape
    N = T * B
    C_x, U_zr, U = packed["dec.C_x"], packed["dec.U_zr"], packed["dec.U"]

    m = f.masks
    L = f.dt.shape[1]
    dt = xp.reshape(_drop(xp.reshape(f.dt, (T, B, L)), m.maxout), (N, L))  # forward: t m_t
    ds_out, dey, dc_out = _deep_output_backward(dt, f.out_cache, packed, grads)
    ds_out = _drop(xp.reshape(ds_out, (T, B, H)), m.state)                # (T,B,H) s_i m_s
    dc_out = _drop(xp.reshape(dc_out, (T, B, 2 * H)), m.context)          # (T,B,2H) c_i m_c
    dxproj = xp.empty((T, B, 3 * H), dtype=f.s_all.dtype, device=f.s_all.device)
    if not ctx.state_free:
        dc_all = xp.empty_like(dc_out)                                    # (T,B,2H)
        dq_all = xp.empty((T, B, cfg.align), dtype=dc_out.dtype, device=dc_out.device)
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
    _add_stacked(grads, _gate_names("dec", "C"), xp.reshape(f.c_all, (N, 2 * H)).T @ dxp2)

    if ctx.state_free:
        dc_all = dc_out + xp.reshape(dxp2 @ C_x.T, (T, B, 2 * H))         # (T,B,2H)
        dannotations, dmemory = ctx.contexts_backward(dc_all, f.enc, f.alpha)
    else:
        s_prev = xp.concat([f.s0[None, ...], f.s_all[: T - 1, ...]], axis=0)  # (T,B,H) s_{i-1}
        dannotations = ctx.steps_backward(dc_all, dq_all, s_prev, f.ctx_caches, grads)
        dmemory = (dkeys,)
    dannotations = dannotations + ctx.memory_backward(dmemory, f.enc.annotations, packed, grads)
    encode_backward(packed, f.enc_cache, dannotations, ds, grads)


def loss(params: dict[str, Array], cfg: Config, batch: Any, masks: Masks | None = None
         ) -> Array:
    """Mean negative log-likelihood per real target token (0-d array), no gradients; dropout
    only with ``masks`` (the gradient check fixes them)."""
    if not CONTEXTS[cfg.variant].has_context:
        _no_dropout(cfg, masks)
        return cursor_model.loss(pack_params(params), cfg, batch)
    return _forward(pack_params(params), cfg, batch, masks=masks)[0]


def loss_and_grads(
    params: dict[str, Array], cfg: Config, batch: Any, masks: Masks | None = None
) -> tuple[Array, dict[str, Array]]:
    """The mean negative log-likelihood per real target token (padding excluded) and its
    gradients, a dict with the same keys as ``params``.

    ``batch`` has ``src`` (B,S) and ``tgt`` (B,T) integer ids (targets end with </s>) and
    ``src_mask``, ``tgt_mask`` (B,S), (B,T) with 1 on real tokens, all on the params' device.
    ``masks`` (``dropout_masks``): dropout for this batch; None (the default) drops nothing."""
    xp = namespace(params["E_src"])
    packed = pack_params(params)
    grads = {k: xp.zeros_like(v) for k, v in params.items()}
    if not CONTEXTS[cfg.variant].has_context:
        _no_dropout(cfg, masks)
        return cursor_model.loss(packed, cfg, batch, grads), grads
    loss_value, f = _forward(packed, cfg, batch, grads, masks)
    _backward(packed, cfg, f, grads)
    return loss_value, grads


def decoder_step(
    packed: dict[str, Array], cfg: Config, enc: Encoded, y_prev: Array, s_prev: Any, i: int
) -> tuple[Array, Any, Array | None]:
    """One decoder step for greedy and beam search (``packed = pack_params(params)``).

    y_prev (B,) ids of y_{i-1} (<s> at i=0), s_prev (B,H) s_{i-1}, i the 0-based step.
    Returns log p(y_i | y_<i, x) (B,V), s_i (B,H) and the alignment alpha_i (B,S) (one-hot for
    diagonal; None for encdec, which has none). The cursors' state is a tuple of (B,...)
    arrays (``cursor_model.decoder_step``; at i = 0 it is s_0 like the others')."""
    if not CONTEXTS[cfg.variant].has_context:
        return cursor_model.decoder_step(packed, cfg, enc, y_prev, s_prev, i)
    ey = embedding_forward(packed["E_tgt"], y_prev)                       # (B,E)
    c, alpha, _ = CONTEXTS[cfg.variant].step(packed, enc, s_prev, i)      # (B,2H) c_i
    xproj = ey @ packed["dec.W_x"] + packed["dec.b_x"] + c @ packed["dec.C_x"]  # (B,3H)
    s, _ = gru_step_forward(xproj, s_prev, packed["dec.U_zr"], packed["dec.U"])  # (B,H)
    t, _ = _deep_output_forward(packed, s, ey, c)                         # (B,L)
    return log_softmax(t @ packed["W_o"] + packed["b_o"]), s, alpha       # (B,V)
