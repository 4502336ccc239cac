"""Bahdanau's first idea as a whole model: two cursors, the source one a latent monotone
alignment marginalised exactly by dynamic programming (``--variant cursors``).

Shapes: B batch, S source length, T target length, E embedding, H hidden, A the stop scores'
hidden size (cfg.align), L maxout units, V target vocabulary, W cells per target step (S, or
2*band+1 with a band), N = B*T*W cells.

    encoder   h_j as for every variant (encoder.py)                                 (B,S,2H)
    s_0       = tanh(W_s bwd h_1 + b_s)                                             (B,H)
    decoder   s_i = GRU(s_{i-1}; input E y_{i-1}), no context: for the marginal to be exact
              the state must not depend on the cursor
    stop      u_ij = v_stop^T tanh(W_stop s_i + U_stop h_j) + b_stop, p_stop(i,j) = sigmoid(u_ij)
    cursor    p(a_i=j | a_{i-1}=k) = p_stop(i,j) prod_{m=k}^{j-1} (1 - p_stop(i,m))   (k <= j),
              a_{-1} = 0, a_{T_b-1} = S_b-1                                   (nn/cursors.py)
    emission  p(y_i | a_i=j) = softmax(W_o maxout(U_o s_i + V_o E y_{i-1} + C_o h_j) + b_o)
    loss      -sum_b log p(y_b | x_b) / sum_b T_b, log p(y|x) = log sum_a prod_i p(a_i|a_{i-1})
              p(y_i|a_i) by the forward algorithm; T_b counts the real target tokens with </s>.
              The mean per real target token, as for the other variants (whose per-sentence
              log-likelihood is the sum of their per-token ones).

Cost. The emission is a softmax over V for every (i,j) cell: S times RNNsearch's output layer.
Its input is shared: the s_i/y part U_o s_i + V_o E y_{i-1} once per step (B,T,2L), the source
part C_o h_j once per sentence (B,S,2L) (``memory``); a cell adds the two. The softmax runs
chunk by chunk over cells (``chunk_rows`` at a time, deep_output's ``logit_chunks``), so no
(N,V) array exists; the backward recomputes each chunk's logits, because every posterior needs
all the emissions first.

Band (``cfg.band`` > 0, training only): the emissions of only W = 2*band+1 source positions
per target step, the W nearest the diagonal j = (i+1) S_b // T_b - 1 in a window slid to stay
inside the sentence (``cell_positions``); the other cells count as impossible. The diagonal is
S_b-1 at the last step, so one trajectory always stays inside. A sentence's cells depend on its
own lengths only, not on the sentences batched with it: one of at most W positions gets all of
them, the exact loss. The loss is then -log of the sum over the in-band trajectories, an upper
bound of the exact loss. Decoding always uses every source position (the target length is not
known while searching), and so does ``posterior``.

Lost mass (the end constraint). The model is deficient: the emission at a position j < S_b-1
gives </s> some probability, but a </s> said there breaks the end constraint and belongs to no
trajectory of the sum. So the next-token distribution of ``decoder_step`` sums to less than one
(tested),

    sum_v p(y_i=v | y_<i, x) = 1 - m_i,   m_i = sum_{j<S_b-1} p(a_i=j | y_<i, x) p(</s> | a_i=j),

and so does sum_y p(y | x). p(y | x) is still the exact probability the model gives y:
the loss, its gradients and the beam's summed scores are all of it. Training pushes m_i down
(the gradient of log p(y | x) lowers p(</s> | a_i=j) wherever the posterior puts the cursor
before the target's end) but nothing makes it zero. It is kept, not renormalised: dividing each
step by 1 - m_i would make the loss depend on the filtering distributions p(a_i | y_<i, x)
beside the forward algorithm's marginal, a second backward; masking </s> out of the emission
away from the last word would split the emission into two softmaxes. For the scores it means:
the cursors' log p(y | x), beam scores, dev loss and perplexity come from a distribution that
sums to less than one, so they are lower than a normalised model's would be (by
sum_i -log(1 - m_i) per sentence against the same model renormalised per step) and are not to
be compared with the other variants' as likelihoods. Within one beam every hypothesis is scored
by the same model, each paying its own m_i: the ranking is this model's. BLEU compares outputs,
not scores, so it stays comparable across the variants.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

from . import encoder
from .backend import Array, namespace
from .config import Config
from .data.vocab import EOS_ID
from .decoder import decoder_flops, decoder_inputs, decoder_inputs_backward
from .deep_output import SOFTMAX_CHUNK_ROWS, logit_chunks, logits_backward
from .dropout import Masks
from .encoder import Encoded
from .nn.cursors import (
    cursors_backward,
    cursors_forward,
    cursors_posterior,
    log_transition,
    stop_logits_backward,
    stop_logits_forward,
)
from .nn.embedding import embedding_forward
from .nn.gru import gru_step_backward, gru_step_forward
from .nn.output import (
    logsumexp,
    maxout_backward,
    maxout_forward,
    target_log_softmax,
    target_log_softmax_backward,
)
from .params import param_shapes

# Logits per softmax chunk: 256 rows at V = 8192, as deep_output's SOFTMAX_CHUNK_ROWS, but more
# rows for a small vocabulary, where 256 rows leave the products too small (the built-in corpus has
# V = 359: 4096 rows took 36 s a step against 59 s with 256, B 32, S = T = 20, on this machine
# while it was shared, medians of 3 interleaved steps).
CHUNK_LOGITS = 256 * 8192


def chunk_rows(V: int) -> int:
    """Cells per softmax chunk: at least deep_output's SOFTMAX_CHUNK_ROWS, about CHUNK_LOGITS
    logits."""
    return max(SOFTMAX_CHUNK_ROWS, CHUNK_LOGITS // V)


def memory(packed: dict[str, Array], annotations: Array) -> tuple[Array, ...]:
    """The source's two per-sentence products, shared by every target step: the stop scores'
    keys U_stop h_j (B,S,A) and the emission's C_o h_j (B,S,2L)."""
    xp = namespace(annotations)
    B, S, H2 = annotations.shape
    h = xp.reshape(annotations, (B * S, H2))                              # (B*S,2H)
    keys = h @ packed["U_stop"]                                           # (B*S,A)  U_stop h_j
    out = h @ packed["C_o"]                                               # (B*S,2L) C_o h_j
    return (xp.reshape(keys, (B, S, keys.shape[1])), xp.reshape(out, (B, S, out.shape[1])))


def memory_backward(dmemory: tuple[Array, ...], annotations: Array, packed: dict[str, Array],
                    grads: dict[str, Array]) -> Array:
    """(dkeys (B,S,A), dout (B,S,2L)) -> dannotations (B,S,2H); dU_stop, dC_o into ``grads``."""
    xp = namespace(annotations)
    dkeys, dout = dmemory                                                 # (B,S,A), (B,S,2L)
    B, S, H2 = annotations.shape
    h = xp.reshape(annotations, (B * S, H2))                              # (B*S,2H)
    dk = xp.reshape(dkeys, (B * S, dkeys.shape[2]))
    do = xp.reshape(dout, (B * S, dout.shape[2]))
    grads["U_stop"] += h.T @ dk                                           # (2H,A)
    grads["C_o"] += h.T @ do                                              # (2H,2L)
    dh = dk @ packed["U_stop"].T + do @ packed["C_o"].T                   # (B*S,2H)
    return xp.reshape(dh, (B, S, H2))


def encode(packed: dict[str, Array], src: Array, src_mask: Array
           ) -> tuple[Encoded, Array, tuple]:
    """The encoder (encoder.py) and the ``memory``: src (B,S) ids, src_mask (B,S) ->
    (Encoded, s_0 (B,H), cache)."""
    enc, s0, cache = encoder.encode(packed, src, src_mask)
    return enc._replace(memory=memory(packed, enc.annotations)), s0, cache


def cell_positions(band: int, lengths: Array, tgt_mask: Array, S: int) -> Array:
    """The source position of every cell whose emission is computed, (B,T,W) integer.

    Without a band: all of 0..S-1 (W = S). With a band: the W = 2*band+1 positions nearest the
    diagonal center_bi = clip((i+1) S_b // T_b - 1, 0, S_b-1), as a window start_bi + (0..W-1)
    slid to stay inside the sentence, start_bi = clip(center_bi - band, 0, max(S_b - W, 0)).
    So the cells of a sentence depend on its own S_b and T_b only, never on the batch's padded
    S or T: a sentence with S_b <= W gets every one of its positions (the exact loss), whatever
    it is batched with; one with S_b > W gets W positions, the diagonal among them. Positions
    S_b..S-1 are padding, which the forward algorithm never enters, and positions >= S match no
    word. When W >= S, every sentence has S_b <= W, so 0..S-1 are the same cells, fewer of them.
    """
    xp = namespace(lengths)
    B, T = tgt_mask.shape
    width = 2 * band + 1
    if band == 0 or width >= S:
        j = xp.arange(S, dtype=lengths.dtype, device=lengths.device)
        return xp.broadcast_to(j[None, None, :], (B, T, S))
    tlen = xp.sum(xp.astype(tgt_mask > 0, lengths.dtype), axis=1)        # (B,) T_b
    i = xp.arange(T, dtype=lengths.dtype, device=lengths.device)         # (T,)
    center = (i[None, :] + 1) * lengths[:, None] // xp.clip(tlen, min=1)[:, None] - 1  # (B,T)
    center = xp.clip(center, min=xp.zeros_like(center), max=lengths[:, None] - 1)
    last = xp.clip(lengths - width, min=0)[:, None]                      # (B,1) max(S_b-W, 0)
    start = xp.clip(center - band, min=xp.zeros_like(center), max=last)  # (B,T) window start
    offs = xp.arange(width, dtype=lengths.dtype, device=lengths.device)  # (W,)
    return start[:, :, None] + offs                                      # (B,T,W)


class EmissionCache(NamedTuple):
    onehot: Array   # (B,T,W,S) bool: cell (b,i,o) is source position j
    t: Array        # (N,L) maxout outputs
    first: Array    # (N,L) maxout winners
    lse: Array      # (N,) log-partitions
    y: Array        # (N,) targets


def emissions_forward(
    packed: dict[str, Array], g: Array, hout: Array, pos: Array, y: Array
) -> tuple[Array, EmissionCache]:
    """le_ij = log softmax(W_o maxout(g_i + hout_j) + b_o)[y_i] on the cells.

    g (B,T,2L) = U_o s_i + V_o E y_{i-1}; hout (B,S,2L) = C_o h_j; pos (B,T,W) cell positions;
    y (B,T) targets. Returns the grid le (B,T,S), -inf on cells not computed, and the cache."""
    xp = namespace(g)
    B, T, W = pos.shape
    S, L2 = hout.shape[1], hout.shape[2]
    j = xp.arange(S, dtype=pos.dtype, device=pos.device)
    onehot = pos[..., None] == j                                           # (B,T,W,S)
    gather = xp.reshape(xp.astype(onehot, g.dtype), (B, T * W, S))         # (B,TW,S)
    t_tilde = xp.reshape(gather @ hout, (B, T, W, L2)) + g[:, :, None, :]  # (B,T,W,2L) the sum
    t, first = maxout_forward(xp.reshape(t_tilde, (B * T * W, L2)))      # (N,L) maxout
    y_cells = xp.reshape(xp.broadcast_to(y[:, :, None], (B, T, W)), (B * T * W,))  # (N,)
    le, lse = [], []
    for a, z, logits in logit_chunks(packed, t, chunk_rows(packed["W_o"].shape[1])):  # cells
        le_c, lse_c = target_log_softmax(logits, y_cells[a:z])            # (n,), (n,)
        le.append(le_c)
        lse.append(lse_c)
    le_cells = xp.reshape(xp.concat(le), (B, T, W, 1))                    # (B,T,W,1)
    ninf = xp.full(onehot.shape, -xp.inf, dtype=g.dtype, device=g.device)
    grid = xp.max(xp.where(onehot, le_cells, ninf), axis=2)               # (B,T,S) -inf off cells
    return grid, EmissionCache(onehot, t, first, xp.concat(lse), y_cells)


def emissions_backward(
    dgrid: Array, cache: EmissionCache, packed: dict[str, Array], grads: dict[str, Array]
) -> tuple[Array, Array]:
    """dgrid (B,T,S) -> dg (B,T,2L), dhout (B,S,2L); dW_o, db_o into ``grads``."""
    xp = namespace(dgrid)
    onehot, t, first, lse, y = cache
    B, T, W, S = onehot.shape
    hot = xp.astype(onehot, dgrid.dtype)                                   # (B,T,W,S)
    dle = xp.reshape(xp.sum(hot * dgrid[:, :, None, :], axis=3), (B * T * W,))  # (N,) per cell
    dts = []
    for a, z, logits in logit_chunks(packed, t, chunk_rows(packed["W_o"].shape[1])):  # cells
        dlogits = target_log_softmax_backward(dle[a:z], logits, lse[a:z], y[a:z])  # (n,V) the
        # logits recomputed: the posteriors needed every emission first
        dts.append(logits_backward(dlogits, t[a:z, ...], packed, grads))  # (n,L)
    dt_tilde = maxout_backward(xp.concat(dts, axis=0), first)             # (N,2L)
    L2 = dt_tilde.shape[1]
    dt_tilde = xp.reshape(dt_tilde, (B, T, W, L2))
    scatter = xp.permute_dims(xp.reshape(hot, (B, T * W, S)), (0, 2, 1))  # (B,S,TW)
    return xp.sum(dt_tilde, axis=2), scatter @ xp.reshape(dt_tilde, (B, T * W, L2))


class _Forward(NamedTuple):
    enc: Encoded
    enc_cache: tuple
    y_prev: Array      # (T,B)
    ey: Array          # (T,B,E)
    s_all: Array       # (T,B,H) s_1..s_T
    gru_caches: list
    stop_cache: Any
    emission_cache: EmissionCache
    dp_cache: Any
    logz: Array        # (B,) log p(y_b | x_b)


def _forward(packed: dict[str, Array], cfg: Config, batch: Any) -> _Forward:
    """Encoder, decoder states, stop logits, emissions and the forward algorithm."""
    xp = namespace(packed["E_src"])
    enc, s0, enc_cache = encode(packed, batch.src, batch.src_mask)
    keys, hout = enc.memory                                               # (B,S,A), (B,S,2L)
    B, T = batch.tgt.shape
    S, H = keys.shape[1], cfg.hidden
    _, y_prev, ey, xproj = decoder_inputs(packed, batch.tgt)             # (T,B,3H) W.. E y + b..
    s = s0
    s_all = xp.empty((T, B, H), dtype=s0.dtype, device=s0.device)
    gru_caches = []
    for i in range(T):                                                    # s_i = GRU(s_{i-1}, E y)
        s, cache = gru_step_forward(xproj[i, ...], s, packed["dec.U_zr"], packed["dec.U"])
        s_all[i, ...] = s
        gru_caches.append(cache)
    s_bt = xp.permute_dims(s_all, (1, 0, 2))                              # (B,T,H)
    ey_bt = xp.permute_dims(ey, (1, 0, 2))                                # (B,T,E)
    u, stop_cache = stop_logits_forward(s_bt @ packed["W_stop"], keys, packed["v_stop"],
                                        packed["b_stop"])                 # (B,T,S) u_ij
    g = s_bt @ packed["U_o"] + ey_bt @ packed["V_o"]                      # (B,T,2L) once per i
    tmask = xp.astype(batch.tgt_mask, s0.dtype)                           # (B,T)
    pos = cell_positions(cfg.band, enc.lengths, tmask, S)                 # (B,T,W)
    le, emission_cache = emissions_forward(packed, g, hout, pos, batch.tgt)  # (B,T,S)
    logz, dp_cache = cursors_forward(le, u, enc.lengths, tmask)          # (B,) forward algorithm
    return _Forward(enc, enc_cache, y_prev, ey, s_all, gru_caches, stop_cache, emission_cache,
                    dp_cache, logz)


def loss(packed: dict[str, Array], cfg: Config, batch: Any,
         grads: dict[str, Array] | None = None) -> Array:
    """-sum_b log p(y_b | x_b) / (real target tokens), a 0-d array; with ``grads`` (zeros, the
    params' keys) the gradients are accumulated into it by the backward below."""
    xp = namespace(packed["E_src"])
    f = _forward(packed, cfg, batch)
    ntok = xp.sum(xp.astype(batch.tgt_mask, f.logz.dtype))
    if grads is not None:
        _backward(packed, cfg, f, xp.full_like(f.logz, -1.0) / ntok, grads)
    return -xp.sum(f.logz) / ntok


def _backward(packed: dict[str, Array], cfg: Config, f: _Forward, dlogz: Array,
              grads: dict[str, Array]) -> None:
    """Backward of ``_forward`` from dlogz (B,), accumulating into ``grads``."""
    xp = namespace(dlogz)
    T, B, H = f.s_all.shape
    dle, du = cursors_backward(dlogz, f.dp_cache)                         # (B,T,S) posteriors
    # forward: u = v_stop^T tanh(s W_stop + U_stop h) + b_stop
    dq, dkeys, dv, db = stop_logits_backward(du, f.stop_cache, packed["v_stop"])
    grads["v_stop"] += dv
    grads["b_stop"] += db
    s_flat = xp.reshape(xp.permute_dims(f.s_all, (1, 0, 2)), (B * T, H))  # (BT,H) batch-major
    ey_flat = xp.reshape(xp.permute_dims(f.ey, (1, 0, 2)), (B * T, f.ey.shape[2]))  # (BT,E)
    dq = xp.reshape(dq, (B * T, dq.shape[2]))                             # (BT,A)
    grads["W_stop"] += s_flat.T @ dq
    # forward: g = U_o s_i + V_o E y_{i-1}; the emissions
    dg, dhout = emissions_backward(dle, f.emission_cache, packed, grads)  # (B,T,2L), (B,S,2L)
    dg = xp.reshape(dg, (B * T, dg.shape[2]))                             # (BT,2L)
    grads["U_o"] += s_flat.T @ dg
    grads["V_o"] += ey_flat.T @ dg
    ds_all = xp.permute_dims(xp.reshape(dq @ packed["W_stop"].T + dg @ packed["U_o"].T,
                                        (B, T, H)), (1, 0, 2))            # (T,B,H)
    dey = xp.reshape(xp.permute_dims(xp.reshape(dg @ packed["V_o"].T, (B, T, -1)), (1, 0, 2)),
                     (T * B, -1))                                         # (TB,E) time-major
    dxproj = xp.empty((T, B, 3 * H), dtype=dlogz.dtype, device=dlogz.device)
    ds = xp.zeros((B, H), dtype=dlogz.dtype, device=dlogz.device)
    for i in range(T - 1, -1, -1):
        dxproj[i, ...], ds = gru_step_backward(ds + ds_all[i, ...], f.gru_caches[i],
                                               packed["dec.U_zr"], packed["dec.U"])
    decoder_inputs_backward(packed, f.gru_caches, dxproj, f.ey, f.y_prev, dey, grads)
    dannotations = memory_backward((dkeys, dhout), f.enc.annotations, packed, grads)
    encoder.encode_backward(packed, f.enc_cache, dannotations, ds, grads)


def posterior(packed: dict[str, Array], cfg: Config, batch: Any) -> Array:
    """The smoothed posterior of the source cursor, gamma_i(j) = p(a_i = j | y, x) (B,T,S), by
    forward-backward over every source position (no band); 0 on padded steps."""
    return cursors_posterior(_forward(packed, replace(cfg, band=0), batch).dp_cache)


class CursorState(NamedTuple):
    """The decoder state of one hypothesis after step i-1, all (B,...) for beam reordering."""

    s: Array      # (B,H)   s_{i-1}
    pred: Array   # (B,S)   log p(a_{i-1}=j | y_<i-1, x), the cursor before y_{i-1} was seen
    t: Array      # (B,S,L) maxout outputs of step i-1 at every j (to score y_{i-1})
    lse: Array    # (B,S)   their log-partitions


def decoder_step(packed: dict[str, Array], cfg: Config, enc: Encoded, y_prev: Array,
                 state: Any, i: int) -> tuple[Array, CursorState, Array]:
    """One step of the exact marginal, for greedy and beam search.

    The state carries the forward vector; with y_{i-1} = y_prev it becomes the filtering
    posterior f(k) = p(a_{i-1}=k | y_<i, x) (a_{-1} = 0 at i = 0, when ``state`` is s_0), then

        pred(j) = log sum_k f(k) p(a_i=j | a_{i-1}=k)                    log p(a_i=j | y_<i, x)
        log p(y_i=v | y_<i, x) = logsumexp_j (pred(j) + log p(v | a_i=j))    v != </s>
        log p(y_i=</s> | y_<i, x) = pred(S_b-1) + log p(</s> | a_i=S_b-1)    the end constraint

    so a hypothesis' summed scores are its exact log p(y | x) (the trajectories ending at the
    last source word once </s> is out). Returns those (B,V), the new state and the cursor's
    predictive distribution p(a_i | y_<i, x) (B,S) as the alignment."""
    xp = namespace(y_prev)
    keys, hout = enc.memory                                               # (B,S,A), (B,S,2L)
    B, S = enc.mask.shape
    dtype = enc.mask.dtype
    j = xp.arange(S, dtype=enc.lengths.dtype, device=enc.lengths.device)
    if i == 0:
        s_prev = state                                                    # (B,H) s_0
        zero = xp.zeros((B, S), dtype=dtype, device=enc.mask.device)
        filt = xp.where(j == 0, zero, xp.full_like(zero, -xp.inf))        # (B,S) a_{-1} = 0
    else:
        s_prev, pred, t, lse = state
        w = xp.permute_dims(xp.take(packed["W_o"], y_prev, axis=1), (1, 0))  # (B,L) W_o[:, y]
        le = (t @ w[:, :, None])[:, :, 0] + xp.take(packed["b_o"], y_prev)[:, None] - lse
        filt = pred + le                                                  # (B,S) joint with y_{i-1}
        filt = filt - logsumexp(filt, axis=1)[:, None]                    # (B,S) filtering
    ey = embedding_forward(packed["E_tgt"], y_prev)                       # (B,E)
    s, _ = gru_step_forward(ey @ packed["dec.W_x"] + packed["dec.b_x"], s_prev,
                            packed["dec.U_zr"], packed["dec.U"])          # (B,H) s_i
    u, _ = stop_logits_forward((s @ packed["W_stop"])[:, None, :], keys, packed["v_stop"],
                               packed["b_stop"])                          # (B,1,S)
    lt = log_transition(u[:, 0, :], enc.lengths)                          # (B,S,S)
    pred = logsumexp(filt[:, :, None] + lt, axis=1)                       # (B,S) p(a_i | y_<i)
    g = s @ packed["U_o"] + ey @ packed["V_o"]                            # (B,2L)
    L2 = g.shape[1]
    t, _ = maxout_forward(xp.reshape(g[:, None, :] + hout, (B * S, L2)))  # (BS,L)
    t = xp.reshape(t, (B, S, L2 // 2))                                    # (B,S,L)
    V = packed["b_o"].shape[0]
    acc = xp.full((B, V), -xp.inf, dtype=dtype, device=enc.mask.device)  # (B,V)
    lse_parts, eos_parts = [], []
    P = max(1, CHUNK_LOGITS // (B * V))                                   # positions per chunk
    for a, z, logits in logit_chunks(packed, t, P, axis=1):               # (B,P,V) positions
        lse_c = logsumexp(logits, axis=2)                                 # (B,P)
        lp = pred[:, a:z, None] + logits - lse_c[:, :, None]              # (B,P,V) joint
        acc = xp.logaddexp(acc, logsumexp(lp, axis=1))                    # (B,V)
        lse_parts.append(lse_c)
        eos_parts.append(logits[:, :, EOS_ID] - lse_c)                    # (B,P)
    lse = xp.concat(lse_parts, axis=1)                                    # (B,S)
    at_end = j == enc.lengths[:, None] - 1                                # (B,S)
    end = pred + xp.concat(eos_parts, axis=1)                             # (B,S)
    eos = xp.sum(xp.where(at_end, end, xp.zeros_like(end)), axis=1)       # (B,)
    v = xp.arange(acc.shape[1], device=acc.device)
    logp = xp.where(v == EOS_ID, eos[:, None], acc)                       # (B,V)
    return logp, CursorState(s, pred, t, lse), xp.exp(pred)


def _refuse_unsupported(masks: Masks | None, label_smoothing: float = 0.0) -> None:
    if masks is not None:
        raise ValueError("dropout is not implemented for the cursors variant")
    if label_smoothing:
        raise ValueError("label smoothing is not implemented for the cursors variant")


class CursorModel:
    """The family of the cursors (``model.Family``); parameters come packed
    (``params.pack_params``)."""

    has_alignment = True  # the cursor's predictive distribution p(a_i | y_<i, x)
    supports_dropout = False  # not implemented: masks are refused
    supports_band = True      # cfg.band: training's emissions near the diagonal only
    # not implemented (refused): the loss is a marginal over cursor paths, not a sum of
    # per-token cross-entropies
    supports_label_smoothing = False

    def param_shapes(self, cfg: Config) -> dict[str, tuple[int, ...]]:
        H, A = cfg.hidden, cfg.align
        return param_shapes(cfg, False, {"W_stop": (H, A), "U_stop": (2 * H, A),
                                         "v_stop": (A,), "b_stop": (1,)})

    def encode(self, packed: dict[str, Array], cfg: Config, src: Array, src_mask: Array
               ) -> tuple[Encoded, Array, tuple]:
        return encode(packed, src, src_mask)

    def flops(self, cfg: Config, B: int, S: int, T: int) -> int:
        """The matrix products of one training forward, 2 FLOPs per multiply-add, with W cells
        per step (S, or 2*band+1 with a band): the encoder and s_0, the decoder's shared
        products, and instead of a context and the deep output

            stop scores      U_stop h_j 2 B S 2H A, W_stop s_i 2 T B H A
            emission inputs  U_o s_i + V_o E y_{i-1} 2 T B (H + E) 2L, C_o h_j 2 B S 2H 2L,
                             gathered into the cells 2 B T W S 2L
            softmax          W_o t 2 B T W L V (the backward's recomputed logits not counted)
        """
        E, H, A, L, V = cfg.emb, cfg.hidden, cfg.align, cfg.maxout, cfg.tgt_vocab
        W = S if cfg.band == 0 else min(S, 2 * cfg.band + 1)
        return (encoder.encoder_flops(cfg, B, S) + decoder_flops(cfg, B, T)
                + 2 * B * S * 2 * H * A + 2 * T * B * H * A + 2 * T * B * (H + E) * 2 * L
                + 2 * B * S * 2 * H * 2 * L + 2 * B * T * W * S * 2 * L + 2 * B * T * W * L * V)

    def loss(self, packed: dict[str, Array], cfg: Config, batch: Any,
             masks: Masks | None = None, label_smoothing: float = 0.0) -> Array:
        _refuse_unsupported(masks, label_smoothing)
        return loss(packed, cfg, batch)

    def loss_and_grads(self, packed: dict[str, Array], cfg: Config, batch: Any,
                       grads: dict[str, Array], masks: Masks | None = None,
                       label_smoothing: float = 0.0) -> Array:
        _refuse_unsupported(masks, label_smoothing)
        return loss(packed, cfg, batch, grads)

    def decoder_step(self, packed: dict[str, Array], cfg: Config, enc: Encoded, y_prev: Array,
                     state: Any, i: int) -> tuple[Array, CursorState, Array]:
        return decoder_step(packed, cfg, enc, y_prev, state, i)

    def posterior(self, packed: dict[str, Array], cfg: Config, batch: Any) -> Array:
        return posterior(packed, cfg, batch)
