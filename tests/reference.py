"""A naive reference of the whole model, written from the paper (Bahdanau, Cho & Bengio 2014,
section 3 and appendix A) and DESIGN.md, the slowest and plainest way: one sentence at a time,
no padding, no stacked matrices, a Python loop per time step and per source word, every vector
1-D. It shares nothing with the model's code but the parameter names and shapes (matrices
stored (in, out), so the paper's ``W x`` is ``x @ W`` here) and the special token ids.

Conventions pinned here (each one a choice the paper leaves open or states twice):

    GRU       z = sigmoid(W_z x + U_z h + b_z), r = sigmoid(W_r x + U_r h + b_r),
              h~ = tanh(W x + U (r * h) + b)           the reset gate BEFORE the product
              h = (1 - z) * h + z * h~                 from h = 0 in each encoder direction
    s_0       = tanh(W_s bwd h_1 + b_s)                the backward state at the FIRST word
    c_i       from s_{i-1}, before the decoder update (rnnsearch, eq. 6)
    decoder   s_i = GRU(s_{i-1}; E y_{i-1} and c_i), y_0 = <s>
    output    t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i (s_i, as eq. 4 writes, not the
              appendix's s_{i-1}); t_i,k = max(t~_i,2k, t~_i,2k+1) for k = 0..L-1 (0-based):
              maxout over ADJACENT pairs, the appendix's max(t~_2j-1, t~_2j) 1-based;
              p(y_i) = softmax(W_o t_i + b_o)
    loss      -sum_b log p(y_b | x_b) / sum_b T_b, T_b the target tokens with </s>

Variants: rnnsearch (soft alignment), encdec (c_i = [fwd h_S ; bwd h_1]), diagonal
(c_i = h_min(i,S), 1-based), cursors (no c_i: a latent monotone source cursor, emission with
C_o h_j in place of C_o c_i, its marginal by a plain forward algorithm in probability space).

Dropout masks (one vector per sentence, the same at every step), where the model's docstring
puts them: on x_j, on E y_{i-1} (into the GRU and the output alike), on s_i and c_i as they
enter the deep output only (the recurrence carries s_i whole), on t_i.
"""

import numpy as np

from minirnnsearch.data.vocab import BOS_ID, EOS_ID

MASK_NAMES = ("src_emb", "tgt_emb", "state", "context", "maxout")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gru(p, prefix, x, h, c=None):
    """One step of the paper's GRU (appendix A.1.1), one sentence: x (E,), h (H,), c (2H,) the
    decoder's context (None: no context input)."""
    def gate(g):
        name = f"_{g}" if g else ""
        pre = x @ p[f"{prefix}.W{name}"] + p[f"{prefix}.b{name}"]
        if c is not None:
            pre = pre + c @ p[f"{prefix}.C{name}"]
        return pre

    z = sigmoid(gate("z") + h @ p[f"{prefix}.U_z"])
    r = sigmoid(gate("r") + h @ p[f"{prefix}.U_r"])
    h_tilde = np.tanh(gate("") + (r * h) @ p[f"{prefix}.U"])
    return (1.0 - z) * h + z * h_tilde


def encoder(p, src, m_x):
    """src: ids with </s> (S,). Returns the annotations h_j = [fwd h_j ; bwd h_j] (a list of
    S vectors (2H,)), fwd h_S, bwd h_1 and s_0."""
    H = p["enc_fwd.U"].shape[0]
    x = [p["E_src"][w] * m_x for w in src]
    fwd, h = [], np.zeros(H)
    for j in range(len(src)):
        h = gru(p, "enc_fwd", x[j], h)
        fwd.append(h)
    bwd, h = [None] * len(src), np.zeros(H)
    for j in reversed(range(len(src))):
        h = gru(p, "enc_bwd", x[j], h)
        bwd[j] = h
    annotations = [np.concatenate([fwd[j], bwd[j]]) for j in range(len(src))]
    s0 = np.tanh(bwd[0] @ p["W_s"] + p["b_s"])
    return annotations, fwd[-1], bwd[0], s0


def maxout(t_tilde):
    """t_k = max(t~_2k, t~_2k+1), adjacent pairs, 0-based."""
    return np.array([max(t_tilde[2 * k], t_tilde[2 * k + 1]) for k in range(len(t_tilde) // 2)])


def log_softmax_at(logits, y):
    m = max(logits)
    return logits[y] - m - np.log(sum(np.exp(v - m) for v in logits))


def softmax(e):
    m = max(e)
    ex = [np.exp(v - m) for v in e]
    return [v / sum(ex) for v in ex]


def context(p, variant, annotations, fwd_last, bwd_first, s_prev, i):
    """c_i of a model with a context, from s_{i-1} (0-based step i)."""
    if variant == "encdec":
        return np.concatenate([fwd_last, bwd_first])
    if variant == "diagonal":
        return annotations[min(i, len(annotations) - 1)]
    if variant != "rnnsearch":
        raise ValueError(f"no context for the variant {variant!r}")
    e = [p["v_a"] @ np.tanh(s_prev @ p["W_a"] + h_j @ p["U_a"]) for h_j in annotations]  # eq. 6
    alpha = softmax(e)
    c = np.zeros_like(annotations[0])
    for a_j, h_j in zip(alpha, annotations, strict=True):
        c = c + a_j * h_j                                                               # eq. 5
    return c


def context_logprob(p, variant, src, tgt, masks):
    """sum_i log p(y_i | y_<i, x), src and tgt as given (tgt with </s> for a finished one)."""
    m_x, m_y, m_s, m_c, m_t = masks
    annotations, fwd_last, bwd_first, s = encoder(p, src, m_x)
    total, y_prev = 0.0, BOS_ID
    for i, y in enumerate(tgt):
        c = context(p, variant, annotations, fwd_last, bwd_first, s, i)     # from s_{i-1}
        ey = p["E_tgt"][y_prev] * m_y
        s = gru(p, "dec", ey, s, c)                                          # s_i, whole
        t = maxout((s * m_s) @ p["U_o"] + ey @ p["V_o"] + (c * m_c) @ p["C_o"]) * m_t
        total += log_softmax_at(t @ p["W_o"] + p["b_o"], y)
        y_prev = y
    return total


def cursors_logprob(p, src, tgt, finished):
    """log p(y | x) summed over every monotone trajectory of the source cursor, by the forward
    algorithm with explicit loops over (i, j, k) (cursor_model.py's docstring):

        u_ij = v_stop^T tanh(W_stop s_i + U_stop h_j) + b_stop,  p_stop = sigmoid(u_ij),
               p_stop = 1 at the last source word j = S-1 (0-based)
        p(a_i=j | a_{i-1}=k) = p_stop(i,j) prod_{m=k}^{j-1} (1 - p_stop(i,m))   k <= j
        p(y_i | a_i=j) = softmax(W_o maxout(U_o s_i + V_o E y_{i-1} + C_o h_j) + b_o)[y_i]
        f_i(j) = p(y_i | a_i=j) sum_{k<=j} f_{i-1}(k) p(a_i=j | a_{i-1}=k),  f_{-1}(k) = [k=0]

    finished: p(y|x) = f_{T-1}(S-1) (the cursor ends on the source </s>); else the prefix's
    probability sum_j f_{T-1}(j) (no end constraint)."""
    ones = np.ones(p["E_src"].shape[1])
    annotations, _, _, s = encoder(p, src, ones)
    S = len(src)
    f = [1.0 if k == 0 else 0.0 for k in range(S)]
    y_prev = BOS_ID
    for y in tgt:
        ey = p["E_tgt"][y_prev]
        s = gru(p, "dec", ey, s)
        p_stop = [sigmoid(p["v_stop"] @ np.tanh(s @ p["W_stop"] + h_j @ p["U_stop"])
                          + p["b_stop"][0]) for h_j in annotations]
        p_stop[S - 1] = 1.0
        emit = [np.exp(log_softmax_at(maxout(s @ p["U_o"] + ey @ p["V_o"] + h_j @ p["C_o"])
                                      @ p["W_o"] + p["b_o"], y)) for h_j in annotations]
        new = []
        for j in range(S):
            into_j = 0.0
            for k in range(j + 1):
                move = p_stop[j]
                for m in range(k, j):
                    move *= 1.0 - p_stop[m]
                into_j += f[k] * move
            new.append(emit[j] * into_j)
        f = new
        y_prev = y
    return float(np.log(f[S - 1] if finished else sum(f)))


def sentence_logprob(params, variant, src, tgt, finished=True, masks=None):
    """log p(y | x) of one sentence under ``params`` (float64 NumPy arrays, the model's names):
    src, tgt word ids WITHOUT </s> (added here: to the source always, to the target when
    ``finished``; an unfinished target is a prefix). masks: dropout vectors of this sentence
    by MASK_NAMES (a dict), or None."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    src_eos, tgt_eos = [*src, EOS_ID], [*tgt, EOS_ID] if finished else list(tgt)
    if variant == "cursors":
        if masks is not None:
            raise ValueError("the cursors have no dropout")
        return cursors_logprob(p, src_eos, tgt_eos, finished)
    sizes = dict(src_emb=p["E_src"].shape[1], tgt_emb=p["E_tgt"].shape[1],
                 state=p["W_s"].shape[0], context=2 * p["W_s"].shape[0],
                 maxout=p["W_o"].shape[0])
    m = [np.ones(sizes[n]) if masks is None else np.asarray(masks[n], np.float64)
         for n in MASK_NAMES]
    return context_logprob(p, variant, src_eos, tgt_eos, m)


def loss(params, variant, srcs, tgts, masks=None):
    """The mean negative log-likelihood per real target token (with </s>) of a list of
    sentence pairs; masks: by MASK_NAMES, (B,D) arrays, row b for sentence b, or None."""
    total, tokens = 0.0, 0
    for b, (src, tgt) in enumerate(zip(srcs, tgts, strict=True)):
        row = None if masks is None else {n: masks[n][b] for n in MASK_NAMES}
        total -= sentence_logprob(params, variant, src, tgt, True, row)
        tokens += len(tgt) + 1
    return total / tokens
