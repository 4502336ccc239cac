"""Dropout masks for training (the paper used none; Nematus puts them in these places for this
model).

Shapes: B batch, T target length, E embedding, H hidden, L maxout units.

One mask per sentence, the same at every time step (Gal & Ghahramani 2016, Nematus's
``shared_dropout_layer``), inverted (kept units scaled by 1/(1-p)), on
    x_j      the source embeddings, before both encoder directions          m_x (B,E)
    E y_i-1  the target embeddings, before the decoder GRU and the output   m_y (B,E)
    s_i, c_i the decoder states and contexts entering the deep output       m_s (B,H), m_c (B,2H)
    t_i      the maxout layer, before W_o                                   m_t (B,L)
The recurrence itself is not dropped (s_i goes on to s_{i+1} whole). Decoding never drops.
The backward multiplies each gradient by the same mask (``drop`` again).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .backend import Array, Backend, dropout_mask
from .config import Config


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


NO_MASKS = Masks(None, None, None, None, None)  # dropout off: drop leaves every input as it is


def drop(a: Array, m: Array | None) -> Array:
    """a (T,B,D) or (B,D) times its sentence's mask m (B,D) at every step; a if m is None."""
    return a if m is None else a * (m if a.ndim == 2 else m[None, ...])
