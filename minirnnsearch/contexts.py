"""How the context models' decoder chooses its context c_i: one class per model of the paper's
story (the fourth model, the cursors, has no c_i: ``cursor_model.py``).

Shapes: B batch, S source length, T target length, H hidden, A alignment hidden.

    encdec     FixedVector  c_i = c = [fwd h_S ; bwd h_1]    the fixed-length vector (Cho et al.
                                                            2014; the paper's RNNencdec)
    diagonal   Diagonal     c_i = h_min(i,S_b)              two cursors moving in step: no
                                                            learnt alignment
    rnnsearch  SoftSearch   c_i = sum_j alpha_ij h_j,       the soft search (eq. 5-6)
                            alpha_i = softmax_j(v_a^T tanh(W_a s_{i-1} + U_a h_j))

Each class has the same small interface, forward beside backward, so the decoder in
``context_model.py`` is written once:

    param_shapes(cfg)                      its own parameters (W_a, U_a, v_a for the soft search)
    memory(packed, annotations)            what it computes once per sentence: a tuple of (B,...)
                                           arrays (the keys U_a h_j; the vector c)
    memory_backward(dmemory, annotations, packed, grads) -> dannotations (B,S,2H)
    step(packed, enc, s_prev, i)           one decoder step: c_i (B,2H), alpha_i (B,S) or None
                                           (the fixed vector has no alignment), and a cache
    has_alignment                          False when ``step`` gives no alpha_i (encdec)
    flops(cfg, B, S, T)                    its own matrix products in one training forward
                                           (2 FLOPs per multiply-add), memory and steps

A context that does not depend on the decoder state (``state_free``) also gives all T contexts
at once, so that their product with the decoder's C matrices is one product before the loop:

    contexts(enc, T)                       c (T,B,2H), alpha (B,T,S) or None
    contexts_backward(dc, enc, alpha)      dc (T,B,2H) -> dannotations (B,S,2H), dmemory

The soft search depends on s_{i-1}; its training backward goes step by step and ends with one
batched product for everything that can wait until after the loop:

    query_width(cfg)                       the width of its per-step query (A: q = W_a s_{i-1})
    step_backward(dc, cache, packed, enc, grads) -> ds_prev (B,H) (its part), dq (B,A), dkeys
    steps_backward(dc_all, dq_all, s_prev_all, caches, grads) -> dannotations (B,S,2H)
"""

from __future__ import annotations

from typing import Any

from .backend import Array, namespace
from .encoder import Encoded
from .nn.attention import (
    attention_step_backward,
    attention_step_forward,
    context_backward_annotations,
    context_backward_weights,
    context_forward,
    diagonal_alignment,
)


class FixedVector:
    """RNNencdec: one vector for the whole sentence, c = [fwd h_S ; bwd h_1] (B,2H). The fwd
    state at the last padded position is each sentence's fwd h_{S_b}: padded steps keep it."""

    state_free = True
    has_alignment = False

    def param_shapes(self, cfg: Any) -> dict[str, tuple[int, ...]]:
        return {}

    def flops(self, cfg: Any, B: int, S: int, T: int) -> int:
        return 0                                                          # a slice, no product

    def memory(self, packed: dict[str, Array], annotations: Array) -> tuple[Array, ...]:
        xp = namespace(annotations)
        B, S, H2 = annotations.shape
        H = H2 // 2
        return (xp.concat([annotations[:, S - 1, :H], annotations[:, 0, H:]], axis=1),)  # (B,2H)

    def memory_backward(self, dmemory: tuple[Array, ...], annotations: Array,
                        packed: dict[str, Array], grads: dict[str, Array]) -> Array:
        xp = namespace(annotations)
        (dc,) = dmemory                                                   # (B,2H)
        B, S, H2 = annotations.shape
        H = H2 // 2
        zeros = xp.zeros((B, S - 1, H), dtype=dc.dtype, device=dc.device)
        fwd = xp.concat([zeros, dc[:, None, :H]], axis=1)                 # (B,S,H) at fwd h_S
        bwd = xp.concat([dc[:, None, H:], zeros], axis=1)                 # (B,S,H) at bwd h_1
        return xp.concat([fwd, bwd], axis=2)                              # (B,S,2H)

    def contexts(self, enc: Encoded, T: int) -> tuple[Array, None]:
        xp = namespace(enc.annotations)
        (c,) = enc.memory
        return xp.broadcast_to(c[None, ...], (T, *c.shape)), None          # (T,B,2H) c_i = c

    def contexts_backward(self, dc: Array, enc: Encoded, alpha: None
                          ) -> tuple[Array, tuple[Array, ...]]:
        xp = namespace(dc)
        return xp.zeros_like(enc.annotations), (xp.sum(dc, axis=0),)      # c used T times

    def step(self, packed: dict[str, Array], enc: Encoded, s_prev: Array, i: int
             ) -> tuple[Array, None, None]:
        return enc.memory[0], None, None


class Diagonal:
    """Two cursors moving in step: c_i = h_min(i,S_b), a one-hot alignment (no parameters)."""

    state_free = True
    has_alignment = True

    def param_shapes(self, cfg: Any) -> dict[str, tuple[int, ...]]:
        return {}

    def flops(self, cfg: Any, B: int, S: int, T: int) -> int:
        return 2 * B * T * S * 2 * cfg.hidden       # c = alpha h for all steps: (B,T,S)(B,S,2H)

    def memory(self, packed: dict[str, Array], annotations: Array) -> tuple[Array, ...]:
        return ()

    def memory_backward(self, dmemory: tuple[Array, ...], annotations: Array,
                        packed: dict[str, Array], grads: dict[str, Array]) -> Array:
        return namespace(annotations).zeros_like(annotations)

    def contexts(self, enc: Encoded, T: int) -> tuple[Array, Array]:
        xp = namespace(enc.annotations)
        steps = xp.arange(T, dtype=enc.lengths.dtype, device=enc.lengths.device)   # (T,)
        alpha = diagonal_alignment(enc.lengths, steps, enc.mask.shape[1], enc.mask.dtype)
        return xp.permute_dims(context_forward(alpha, enc.annotations), (1, 0, 2)), alpha

    def contexts_backward(self, dc: Array, enc: Encoded, alpha: Array
                          ) -> tuple[Array, tuple[Array, ...]]:
        xp = namespace(dc)
        return context_backward_annotations(xp.permute_dims(dc, (1, 0, 2)), alpha), ()

    def step(self, packed: dict[str, Array], enc: Encoded, s_prev: Array, i: int
             ) -> tuple[Array, Array, None]:
        xp = namespace(s_prev)
        pos = xp.clip(enc.lengths - 1, max=i)                             # (B,) min(i, S_b - 1)
        j = xp.arange(enc.mask.shape[1], dtype=pos.dtype, device=pos.device)  # (S,)
        alpha = xp.astype(j[None, :] == pos[:, None], s_prev.dtype)       # (B,S) one-hot
        return context_forward(alpha, enc.annotations), alpha, None


class SoftSearch:
    """RNNsearch (eq. 5-6): e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j), alpha_i = softmax_j(e_i)
    over real words, c_i = sum_j alpha_ij h_j. The keys U_a h_j are its memory (once per
    sentence); q = W_a s_{i-1} is one small product per step."""

    state_free = False
    has_alignment = True

    def param_shapes(self, cfg: Any) -> dict[str, tuple[int, ...]]:
        H, A = cfg.hidden, cfg.align
        return {"W_a": (H, A), "U_a": (2 * H, A), "v_a": (A,)}            # eq. 6

    def flops(self, cfg: Any, B: int, S: int, T: int) -> int:
        """keys U_a h_j once, 2 B S 2H A; per step q = W_a s, 2 B H A, the scores' v_a,
        2 B S A, and c_i = sum_j alpha_ij h_j, 2 B S 2H."""
        H, A = cfg.hidden, cfg.align
        return 2 * B * S * 2 * H * A + T * (2 * B * H * A + 2 * B * S * A + 2 * B * S * 2 * H)

    def query_width(self, cfg: Any) -> int:
        return cfg.align                                                  # A: q = W_a s_{i-1}

    def memory(self, packed: dict[str, Array], annotations: Array) -> tuple[Array, ...]:
        xp = namespace(annotations)
        B, S, H2 = annotations.shape
        keys = xp.reshape(annotations, (B * S, H2)) @ packed["U_a"]       # (B*S,A) U_a h_j
        return (xp.reshape(keys, (B, S, keys.shape[1])),)                 # (B,S,A)

    def memory_backward(self, dmemory: tuple[Array, ...], annotations: Array,
                        packed: dict[str, Array], grads: dict[str, Array]) -> Array:
        xp = namespace(annotations)
        (dkeys,) = dmemory                                                # (B,S,A)
        B, S, A = dkeys.shape
        H2 = annotations.shape[2]
        dk = xp.reshape(dkeys, (B * S, A))                                # forward: keys = h U_a
        grads["U_a"] += xp.reshape(annotations, (B * S, H2)).T @ dk       # (2H,A)
        return xp.reshape(dk @ packed["U_a"].T, (B, S, H2))               # (B,S,2H)

    def step(self, packed: dict[str, Array], enc: Encoded, s_prev: Array, i: int
             ) -> tuple[Array, Array, Any]:
        (keys,) = enc.memory
        return attention_step_forward(s_prev @ packed["W_a"], keys, enc.annotations, enc.mask,
                                      packed["v_a"])                      # c_i (B,2H), alpha_i

    def step_backward(self, dc: Array, cache: Any, packed: dict[str, Array], enc: Encoded,
                      grads: dict[str, Array]) -> tuple[Array, Array, Array]:
        """dc (B,2H) -> ds_prev (B,H) through q = W_a s_{i-1}, dq (B,A), dkeys (B,S,A); dv_a
        into ``grads``. The annotations' part of c_i waits for ``steps_backward``."""
        dq, dkeys, dv_a = attention_step_backward(
            context_backward_weights(dc, enc.annotations), cache, packed["v_a"])
        grads["v_a"] += dv_a
        return dq @ packed["W_a"].T, dq, dkeys

    def steps_backward(self, dc_all: Array, dq_all: Array, s_prev_all: Array,
                       caches: list[Any], grads: dict[str, Array]) -> Array:
        """After the loop, one product each: dW_a = sum_i s_{i-1}^T dq_i and
        dh_j = sum_i alpha_ij dc_i. dc_all (T,B,2H), dq_all (T,B,A), s_prev_all (T,B,H)
        -> dannotations (B,S,2H) (the context's part)."""
        xp = namespace(dc_all)
        T, B, H = s_prev_all.shape
        grads["W_a"] += (xp.reshape(s_prev_all, (T * B, H)).T
                         @ xp.reshape(dq_all, (T * B, dq_all.shape[2])))   # (H,A)
        alpha_all = xp.stack([c.alpha for c in caches], axis=1)           # (B,T,S)
        return context_backward_annotations(xp.permute_dims(dc_all, (1, 0, 2)), alpha_all)
