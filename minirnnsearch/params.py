"""The parameters every variant shares: their names and shapes, their initialisation
(appendix B.1), and the stacked matrices the fast path multiplies with.

Shapes: E embedding, H hidden, A alignment hidden, L maxout units, Vx/Vy vocabularies.
Matrices are stored (in, out): ``x @ W`` is the paper's W x. One dict, name -> array, holds
the parameters; the gradients are a dict with the same keys.

    E_src (Vx,E), E_tgt (Vy,E)                   word embeddings x_j = E_src[w_j], E_tgt y_{i-1}
    enc_fwd., enc_bwd., dec.  W_z W_r W (E,H)    each GRU's input matrices (one per gate),
                              U_z U_r U (H,H)    its recurrent matrices (orthogonal at init),
                              b_z b_r b (H,)     its biases
    dec.C_z C_r C (2H,H)                         the decoder's context c_i -> gates (a family
                                                 whose decoder reads a context)
    W_s (H,H), b_s (H,)                          s_0 = tanh(W_s bwd h_1 + b_s)
    a family's own                               W_a U_a v_a (eq. 6), the cursors' stop scores
    U_o (H,2L), V_o (E,2L), C_o (2H,2L)          t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i
    W_o (L,Vy), b_o (Vy,)                        p(y_i) = softmax(W_o t_i + b_o)
"""

from __future__ import annotations

import numpy as np

from .backend import Array, Backend, namespace
from .config import Config

GATES = ("z", "r", "")  # update gate, reset gate, candidate: W_z, W_r, W (and U.., C.., b..)

# Appendix B.1 draws the alignment model's matrices W_a, U_a from N(0, 0.001^2); the cursors'
# stop scores are treated as the alignment model's (so p_stop starts at 1/2 everywhere).
SMALL_INIT = ("W_a", "U_a", "W_stop", "U_stop")


def gate_names(prefix: str, mat: str) -> list[str]:
    """``gate_names("dec", "C")`` -> ["dec.C_z", "dec.C_r", "dec.C"]."""
    return [f"{prefix}.{mat}_{g}" if g else f"{prefix}.{mat}" for g in GATES]


def param_shapes(cfg: Config, context: bool, own: dict[str, tuple[int, ...]]
                 ) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in the order ``init_params`` draws them: the
    embeddings, the encoder GRUs, the decoder GRU (with the context matrices C.. when
    ``context``: its gates read c_i), W_s and b_s, the family's ``own`` parameters, and the
    deep output's."""
    E, H, L = cfg.emb, cfg.hidden, cfg.maxout
    shapes: dict[str, tuple[int, ...]] = {"E_src": (cfg.src_vocab, E), "E_tgt": (cfg.tgt_vocab, E)}
    for prefix in ("enc_fwd", "enc_bwd", "dec"):
        for n in gate_names(prefix, "W"):
            shapes[n] = (E, H)                  # input -> gate
        for n in gate_names(prefix, "U"):
            shapes[n] = (H, H)                  # recurrent
        if prefix == "dec" and context:
            for n in gate_names(prefix, "C"):
                shapes[n] = (2 * H, H)          # context -> gate
        for n in gate_names(prefix, "b"):
            shapes[n] = (H,)
    shapes["W_s"], shapes["b_s"] = (H, H), (H,)  # s_0 = tanh(W_s bwd h_1 + b_s)
    shapes.update(own)                           # eq. 6's, or the cursors' stop scores
    shapes["U_o"], shapes["V_o"], shapes["C_o"] = (H, 2 * L), (E, 2 * L), (2 * H, 2 * L)
    shapes["W_o"], shapes["b_o"] = (L, cfg.tgt_vocab), (cfg.tgt_vocab,)
    return shapes


def _is_recurrent(name: str) -> bool:
    return name.split(".")[-1] in ("U_z", "U_r", "U")


def init_params(
    shapes: dict[str, tuple[int, ...]], backend: Backend, seed: int = 0, dtype: str = "float32",
    scheme: str = "paper",
) -> dict[str, Array]:
    """Drawn on the host with NumPy from ``seed``, in the order of ``shapes`` (the same numbers
    on every backend), then moved to the device once. Biases are zero in both schemes.

    ``paper``, appendix B.1: recurrent U matrices random orthogonal; W_a, U_a ~ N(0, 0.001^2)
    (and the cursors' W_stop, U_stop: ``SMALL_INIT``); v_a (v_stop) zero; every other matrix
    ~ N(0, 0.01^2).
    ``fan-in``, PyTorch's defaults: the embeddings ~ N(0, 1) (``nn.Embedding``); every other
    matrix, stored (in, out), and v_a (v_stop) ~ U(-1/sqrt(in), 1/sqrt(in)) (``nn.Linear``, and
    ``nn.GRU``'s 1/sqrt(H) for the (H, .) recurrent matrices)."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in shapes.items():
        if scheme == "fan-in":
            if name in ("E_src", "E_tgt"):
                value = rng.standard_normal(shape)
            elif len(shape) == 2 or name in ("v_a", "v_stop"):
                bound = 1.0 / np.sqrt(shape[0])
                value = rng.uniform(-bound, bound, shape)
            else:                                   # the biases
                value = np.zeros(shape)
        elif _is_recurrent(name):
            q, r = np.linalg.qr(rng.standard_normal(shape))
            value = q * np.sign(np.diag(r))     # uniformly random orthogonal
        elif name in SMALL_INIT:
            value = rng.normal(0.0, 0.001, shape)
        elif len(shape) == 1:                   # v_a, v_stop and the biases
            value = np.zeros(shape)
        else:
            value = rng.normal(0.0, 0.01, shape)
        params[name] = backend.asarray(value, dtype=dtype)
    return params


def pack_params(params: dict[str, Array]) -> dict[str, Array]:
    """The parameters plus the stacked matrices the fast path multiplies with, per GRU:
    ``W_x = [W_z | W_r | W]`` (E,3H), ``b_x`` (3H,), ``U_zr = [U_z | U_r]`` (H,2H) and for a
    decoder that reads a context ``C_x = [C_z | C_r | C]`` (2H,3H). Built once per loss call or
    per decoding run."""
    xp = namespace(params["E_src"])
    packed = dict(params)
    for prefix in ("enc_fwd", "enc_bwd", "dec"):
        packed[f"{prefix}.W_x"] = xp.concat([params[n] for n in gate_names(prefix, "W")], axis=1)
        packed[f"{prefix}.b_x"] = xp.concat([params[n] for n in gate_names(prefix, "b")])
        packed[f"{prefix}.U_zr"] = xp.concat([params[f"{prefix}.U_z"], params[f"{prefix}.U_r"]],
                                             axis=1)
    if "dec.C" in params:
        packed["dec.C_x"] = xp.concat([params[n] for n in gate_names("dec", "C")], axis=1)
    return packed


def add_stacked(grads: dict[str, Array], names: list[str], d: Array) -> None:
    """Split the gradient of a stacked matrix (.., k*H) back onto its k named parts."""
    H = d.shape[-1] // len(names)
    for k, n in enumerate(names):
        grads[n] += d[..., k * H : (k + 1) * H]
