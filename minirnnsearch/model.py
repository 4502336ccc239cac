"""The model's public face: one registry from variant name to the family that computes it,
and the functions the rest of the code calls (training, decoding, the checks and the bench).

Shapes: B batch, S source length, T target length, E embedding, H hidden, V target
vocabulary (config.py has the whole legend).

Two families share the encoder (encoder.py), the decoder's input projections (decoder.py), the
deep output and the chunked softmax (deep_output.py), the parameters (params.py), the dropout
masks (dropout.py) and the configuration (config.py):

    context_model.py   encdec, diagonal, rnnsearch: the decoder reads a context c_i, chosen by
                       one class of contexts.py (the paper's RNNencdec and RNNsearch)
    cursor_model.py    cursors: no c_i, a latent monotone source cursor marginalised by
                       dynamic programming (Bahdanau's first idea)

Neither imports the other, and neither imports this module. Each offers the interface of
``Family``; the functions below hand over to ``FAMILIES[cfg.variant]`` (``family``: a name the
registry lacks raises ValueError). What a variant supports is its family's to say, never a
name's: ``supports_dropout``, ``supports_band``, ``supports_label_smoothing``, and its FLOPs
per forward (``Family.flops``).
``loss`` and ``loss_and_grads`` take the raw parameters and pack them (``pack_params``);
``encode`` and ``decoder_step`` take them packed, once per decoding run.
"""

from __future__ import annotations

from typing import Any, Protocol

from . import params as _params
from .backend import Array, Backend, namespace
from .config import INITS, PRESETS, VARIANTS, Config
from .context_model import ContextModel
from .contexts import Diagonal, FixedVector, SoftSearch
from .cursor_model import CursorModel
from .dropout import NO_MASKS, Masks, dropout_masks
from .encoder import Encoded
from .params import pack_params

__all__ = ["FAMILIES", "INITS", "NO_MASKS", "PRESETS", "VARIANTS", "Config", "Encoded", "Family",
           "Masks", "decoder_step", "dropout_masks", "encode", "family", "init_params", "loss",
           "loss_and_grads", "pack_params", "param_shapes", "supports_band", "supports_dropout",
           "supports_label_smoothing"]


class Family(Protocol):
    """What a family of models offers; ``packed`` is ``pack_params(params)``."""

    # decoder_step gives an alignment (B,S) at every step; False: None (encdec)
    has_alignment: bool
    # loss and loss_and_grads take dropout masks (train.py --dropout)
    supports_dropout: bool
    # training takes a band, cfg.band > 0 (train.py --band): emissions near the diagonal only
    supports_band: bool
    # loss and loss_and_grads take label_smoothing > 0 (train.py --label-smoothing)
    supports_label_smoothing: bool
    # posterior(packed, cfg, batch) -> (B,T,S): the alignment given the whole output, p(a_i = j
    # | y, x), where it differs from the search's rows (the cursors); None where it does not
    posterior: Any

    def param_shapes(self, cfg: Config) -> dict[str, tuple[int, ...]]: ...

    # the matrix products of one training forward (B, S, T), 2 FLOPs per multiply-add
    def flops(self, cfg: Config, B: int, S: int, T: int) -> int: ...

    def encode(self, packed: dict[str, Array], cfg: Config, src: Array, src_mask: Array
               ) -> tuple[Encoded, Any, tuple]: ...

    def loss(self, packed: dict[str, Array], cfg: Config, batch: Any,
             masks: Masks | None = None, label_smoothing: float = 0.0) -> Array: ...

    def loss_and_grads(self, packed: dict[str, Array], cfg: Config, batch: Any,
                       grads: dict[str, Array], masks: Masks | None = None,
                       label_smoothing: float = 0.0) -> Array: ...

    def decoder_step(self, packed: dict[str, Array], cfg: Config, enc: Encoded, y_prev: Array,
                     state: Any, i: int) -> tuple[Array, Any, Array | None]: ...


# The registry: every name of config.VARIANTS, in its order, and the family that computes it.
FAMILIES: dict[str, Family] = {
    "encdec": ContextModel(FixedVector()),
    "diagonal": ContextModel(Diagonal()),
    "rnnsearch": ContextModel(SoftSearch()),
    "cursors": CursorModel(),
}


def family(variant: Config | str) -> Family:
    """The family that computes a variant (a Config's, or its name); ValueError naming a
    variant the registry does not hold, never another model."""
    name = variant.variant if isinstance(variant, Config) else variant
    if name not in FAMILIES:
        raise ValueError(f"unknown variant {name!r}: model.FAMILIES has {tuple(FAMILIES)}")
    return FAMILIES[name]


def supports_dropout(variant: Config | str) -> bool:
    """Whether the variant trains with dropout (train.py --dropout): not the cursors."""
    return family(variant).supports_dropout


def supports_band(variant: Config | str) -> bool:
    """Whether the variant takes a training band (train.py --band, ``Config.band``): the
    cursors only."""
    return family(variant).supports_band


def supports_label_smoothing(variant: Config | str) -> bool:
    """Whether the variant trains with label smoothing (train.py --label-smoothing): not the
    cursors."""
    return family(variant).supports_label_smoothing


def param_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape (params.py lists them). Matrices are stored (in, out):
    ``x @ W`` = paper W x."""
    return family(cfg).param_shapes(cfg)


def init_params(
    cfg: Config, backend: Backend, seed: int = 0, dtype: str = "float32"
) -> dict[str, Array]:
    """Appendix B.1, or PyTorch's defaults with ``cfg.init == "fan-in"``
    (``params.init_params``); the same numbers on every backend for a seed."""
    return _params.init_params(param_shapes(cfg), backend, seed, dtype, cfg.init)


def loss(params: dict[str, Array], cfg: Config, batch: Any, masks: Masks | None = None,
         label_smoothing: float = 0.0) -> Array:
    """Mean negative log-likelihood per real target token (0-d array), no gradients; dropout
    only with ``masks`` (the gradient check fixes them); smoothed only with ``label_smoothing``
    > 0 (as ``loss_and_grads``; the dev loss is the plain one)."""
    return family(cfg).loss(pack_params(params), cfg, batch, masks, label_smoothing)


def loss_and_grads(
    params: dict[str, Array], cfg: Config, batch: Any, masks: Masks | None = None,
    label_smoothing: float = 0.0,
) -> tuple[Array, dict[str, Array]]:
    """The mean negative log-likelihood per real target token (padding excluded) and its
    gradients, a dict with the same keys as ``params``.

    ``batch`` has ``src`` (B,S) and ``tgt`` (B,T) integer ids (targets end with </s>) and
    ``src_mask``, ``tgt_mask`` (B,S), (B,T) with 1 on real tokens, all on the params' device.
    ``masks`` (``dropout_masks``): dropout for this batch; None (the default) drops nothing;
    the cursors refuse masks. ``label_smoothing`` eps in [0, 1): the loss is then the
    cross-entropy against (1 - eps) onehot(y) + eps/V per real target token instead
    (nn/output.py ``softmax_xent_forward``); 0 (the default) is the likelihood's, the same
    floats; the cursors refuse eps > 0."""
    xp = namespace(params["E_src"])
    grads = {k: xp.zeros_like(v) for k, v in params.items()}
    return family(cfg).loss_and_grads(pack_params(params), cfg, batch, grads, masks,
                                      label_smoothing), grads


def encode(packed: dict[str, Array], cfg: Config, src: Array, src_mask: Array
           ) -> tuple[Encoded, Any, tuple]:
    """The encoder and the family's per-sentence memory: src (B,S) ids, src_mask (B,S) ->
    (Encoded, the decoder's first state s_0 (B,H), the backward's cache)."""
    return family(cfg).encode(packed, cfg, src, src_mask)


def decoder_step(
    packed: dict[str, Array], cfg: Config, enc: Encoded, y_prev: Array, s_prev: Any, i: int
) -> tuple[Array, Any, Array | None]:
    """One decoder step for greedy and beam search (``packed = pack_params(params)``).

    y_prev (B,) ids of y_{i-1} (<s> at i=0), s_prev the state after step i-1 (s_0 from
    ``encode`` at i=0), i the 0-based step. Returns log p(y_i | y_<i, x) (B,V), the new state
    and the alignment (B,S) (alpha_i; one-hot for diagonal; the cursor's p(a_i | y_<i, x);
    None for encdec, which has none). The state is s_i (B,H) for the context models and a
    tuple of (B,...) arrays for the cursors (``cursor_model.CursorState``)."""
    return family(cfg).decoder_step(packed, cfg, enc, y_prev, s_prev, i)
