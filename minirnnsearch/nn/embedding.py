"""Embedding lookup x_j = E[w_j] (the paper's E_x, E_y) and its gradient."""

from __future__ import annotations

from ..backend import Array, namespace, scatter_add


def embedding_forward(E: Array, ids: Array) -> Array:
    """E (V,D), ids (...) integer -> (..., D): row ids of E."""
    xp = namespace(E)
    flat = xp.reshape(ids, (-1,))                        # (N,)
    return xp.reshape(xp.take(E, flat, axis=0), (*ids.shape, E.shape[1]))  # (..., D)


def embedding_backward(dE: Array, ids: Array, dout: Array) -> Array:
    """Accumulate into dE (V,D): dE[ids[n]] += dout[n], repeated ids summed. Returns dE."""
    xp = namespace(dE)
    flat = xp.reshape(ids, (-1,))                        # (N,)
    return scatter_add(dE, flat, xp.reshape(dout, (flat.shape[0], dE.shape[1])))
