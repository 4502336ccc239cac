"""RNNsearch in PyTorch, for honest comparisons (``pip install -e ".[compare]"``, CPU torch).

Two references of the same architecture, on the same shapes:

- ``paper_loss``: the model of ``model.py`` written again from torch ops on the same parameter
  dict (same names, (in, out) matrices), autograd for the backward. The paper's GRU applies the
  reset gate BEFORE the recurrent product, ``h~ = tanh(W x + U (r * h) + b)``, which
  ``nn.GRU``/``nn.GRUCell`` cannot express (they compute ``r * (U h + b_hn)``), so it is written
  out step by step. The tests check in float64 that its loss and every gradient equal
  ``model.loss_and_grads`` (padding, masks and all three variants included, and label
  smoothing, from PyTorch's own ``F.cross_entropy(label_smoothing=eps)``).
- ``UserRNNsearch``: what a PyTorch user would write for speed: ``nn.GRU`` (bidirectional) for
  the encoder, ``nn.GRUCell`` for the decoder, ``nn.Linear`` layers for the additive attention,
  the deep output and the softmax, ``F.cross_entropy``; padded batches packed with
  ``pack_padded_sequence`` (the bench's batches have none), greedy decoding for the quality
  comparison (``quality.py``). Its GRU is PyTorch's (reset after the product): the same sizes
  and matrix products, not the same numbers.

Shapes: B batch, S source length, T target length, E embedding, H hidden, A alignment hidden,
L maxout units, V vocabulary; matrices (in, out) as in ``model.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.vocab import BOS_ID, EOS_ID
from .model import Config

# The variants ``paper_loss`` writes out, each by its name.
CONTEXT_VARIANTS = ("encdec", "diagonal", "rnnsearch")


def _gru_step(p: dict[str, Tensor], prefix: str, xin: Tensor, h: Tensor) -> Tensor:
    """The paper's GRU (appendix A.1.1), input part ``xin`` (B,3H) = [W_z x | W_r x | W x] + b
    (the decoder adds C.. c there), h (B,H) -> h~ and gates combined, (B,H), without the mask."""
    H = h.shape[1]
    z = torch.sigmoid(xin[:, :H] + h @ p[f"{prefix}.U_z"])          # z = sigmoid(W_z x + U_z h)
    r = torch.sigmoid(xin[:, H : 2 * H] + h @ p[f"{prefix}.U_r"])   # r = sigmoid(W_r x + U_r h)
    hh = torch.tanh(xin[:, 2 * H :] + (r * h) @ p[f"{prefix}.U"])   # h~ = tanh(W x + U (r*h))
    return (1 - z) * h + z * hh                                      # h = (1-z) h + z h~


def _input_part(p: dict[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    """[W_z x + b_z | W_r x + b_r | W x + b] for x (..., E) -> (..., 3H)."""
    return torch.cat([x @ p[f"{prefix}.W_z"] + p[f"{prefix}.b_z"],
                      x @ p[f"{prefix}.W_r"] + p[f"{prefix}.b_r"],
                      x @ p[f"{prefix}.W"] + p[f"{prefix}.b"]], dim=-1)


def paper_loss(p: dict[str, Tensor], cfg: Config, batch: Any, label_smoothing: float = 0.0
               ) -> Tensor:
    """The mean negative log-likelihood per real target token of ``model.loss``, from torch ops.
    ``p``: the parameters as tensors (``model.param_shapes`` names); ``batch``: host arrays
    src, src_mask (B,S), tgt, tgt_mask (B,T). With ``label_smoothing`` eps > 0, each real
    token's term is PyTorch's ``F.cross_entropy(logits, y, label_smoothing=eps)``, -(1-eps)
    log p(y) - (eps/V) sum_v log p(v) (unreduced, so the mean is over the real tokens as
    ``model.loss``'s). The context models only: ValueError for any other variant."""
    if cfg.variant not in CONTEXT_VARIANTS:
        raise ValueError(f"paper_loss writes out {CONTEXT_VARIANTS}, not {cfg.variant!r}")
    dtype = p["E_src"].dtype
    src, tgt = torch.as_tensor(batch.src), torch.as_tensor(batch.tgt)
    src_mask = torch.as_tensor(batch.src_mask).to(dtype)                    # (B,S)
    tgt_mask = torch.as_tensor(batch.tgt_mask).to(dtype)                    # (B,T)
    B, S = src.shape
    T = tgt.shape[1]
    H = cfg.hidden
    x = p["E_src"][src]                                                     # (B,S,E)
    hf, hb = [None] * S, [None] * S
    h = x.new_zeros(B, H)
    for j in range(S):                   # forward direction; a padded step keeps the state
        m = src_mask[:, j : j + 1]
        h = m * _gru_step(p, "enc_fwd", _input_part(p, "enc_fwd", x[:, j]), h) + (1 - m) * h
        hf[j] = h
    h = x.new_zeros(B, H)
    for j in range(S - 1, -1, -1):       # backward direction, from each sentence's end
        m = src_mask[:, j : j + 1]
        h = m * _gru_step(p, "enc_bwd", _input_part(p, "enc_bwd", x[:, j]), h) + (1 - m) * h
        hb[j] = h
    ann = torch.cat([torch.stack(hf, 1), torch.stack(hb, 1)], dim=2)       # (B,S,2H) h_j
    s = torch.tanh(hb[0] @ p["W_s"] + p["b_s"])                            # (B,H) s_0
    lengths = src_mask.sum(1).long()                                       # (B,)
    y_prev = torch.cat([torch.full((B, 1), BOS_ID, dtype=tgt.dtype), tgt[:, :-1]], dim=1)
    ey = p["E_tgt"][y_prev]                                                # (B,T,E)
    if cfg.variant == "rnnsearch":
        keys = ann @ p["U_a"]                                              # (B,S,A) U_a h_j
    nll = x.new_zeros(())
    for i in range(T):
        if cfg.variant == "rnnsearch":   # eq. 6 from s_{i-1}, over real source words only
            e = torch.tanh(keys + (s @ p["W_a"])[:, None]) @ p["v_a"]     # (B,S)
            alpha = torch.softmax(e.masked_fill(src_mask == 0, -torch.inf), dim=1)
            c = (alpha[:, :, None] * ann).sum(1)                           # (B,2H) eq. 5
        elif cfg.variant == "encdec":
            c = torch.cat([hf[S - 1], hb[0]], dim=1)               # (B,2H) [fwd h_S; bwd h_1]
        elif cfg.variant == "diagonal":
            c = ann[torch.arange(B), torch.clamp(lengths - 1, max=i)]      # (B,2H) h_min(i,S)
        xin = _input_part(p, "dec", ey[:, i]) + torch.cat(
            [c @ p["dec.C_z"], c @ p["dec.C_r"], c @ p["dec.C"]], dim=1)   # (B,3H)
        s = _gru_step(p, "dec", xin, s)                                    # (B,H) s_i
        t_tilde = s @ p["U_o"] + ey[:, i] @ p["V_o"] + c @ p["C_o"]        # (B,2L)
        t = t_tilde.view(B, -1, 2).amax(dim=2)                            # (B,L) maxout
        logits = t @ p["W_o"] + p["b_o"]                                   # (B,V)
        xent = F.cross_entropy(logits, tgt[:, i], reduction="none",
                               label_smoothing=label_smoothing)             # (B,)
        nll = nll + (tgt_mask[:, i] * xent).sum()
    return nll / tgt_mask.sum()


def paper_loss_and_grads(
    params: dict[str, np.ndarray], cfg: Config, batch: Any, label_smoothing: float = 0.0
) -> tuple[float, dict[str, np.ndarray]]:
    """``paper_loss`` and its autograd gradients, on host NumPy parameters (their dtype kept)."""
    p = {k: torch.tensor(np.asarray(v), requires_grad=True) for k, v in params.items()}
    loss = paper_loss(p, cfg, batch, label_smoothing)
    loss.backward()
    return float(loss.detach()), {k: v.grad.numpy() for k, v in p.items()}


class UserRNNsearch(nn.Module):
    """RNNsearch as a PyTorch user writes it (see the module docstring for what differs)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        E, H, A, L = cfg.emb, cfg.hidden, cfg.align, cfg.maxout
        self.emb_src = nn.Embedding(cfg.src_vocab, E)
        self.emb_tgt = nn.Embedding(cfg.tgt_vocab, E)
        self.encoder = nn.GRU(E, H, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(H, H)                                  # W_s, b_s
        self.query = nn.Linear(H, A, bias=False)                           # W_a
        self.key = nn.Linear(2 * H, A, bias=False)                         # U_a
        self.score = nn.Linear(A, 1, bias=False)                           # v_a
        self.decoder = nn.GRUCell(E + 2 * H, H)
        self.deep_out = nn.Linear(H + E + 2 * H, 2 * L)                    # U_o, V_o, C_o
        self.out = nn.Linear(L, cfg.tgt_vocab)                             # W_o, b_o

    def encode(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Annotations (B,S,2H), s_0 (B,H) and keys U_a h_j (B,S,A) of src (B,S). A padded
        batch is packed (``pack_padded_sequence``), so the backward direction starts at each
        sentence's last word and padded annotations are zero; without padding (the bench's
        batches) the GRU runs on the plain tensor."""
        H = self.decoder.hidden_size
        x = self.emb_src(src)                                              # (B,S,E)
        lengths = src_mask.sum(1).long()                                   # (B,)
        if bool((lengths < src.shape[1]).any()):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            ann, _ = nn.utils.rnn.pad_packed_sequence(self.encoder(packed)[0], batch_first=True,
                                                      total_length=src.shape[1])
        else:
            ann, _ = self.encoder(x)                                       # (B,S,2H)
        s = torch.tanh(self.init_state(ann[:, 0, H:]))                     # (B,H) bwd h_1
        return ann, s, self.key(ann)

    def attend(self, s: Tensor, ann: Tensor, keys: Tensor, src_mask: Tensor) -> Tensor:
        """c_i (B,2H) from s_{i-1} (B,H): additive attention over the real source words."""
        e = self.score(torch.tanh(keys + self.query(s)[:, None])).squeeze(2)  # (B,S)
        alpha = torch.softmax(e.masked_fill(src_mask == 0, -torch.inf), dim=1)
        return torch.bmm(alpha[:, None], ann).squeeze(1)                   # (B,2H)

    def output(self, s: Tensor, ey: Tensor, c: Tensor) -> Tensor:
        """Logits (..., V) of the deep output with maxout from s_i, E y_{i-1}, c_i (..., *)."""
        t_tilde = self.deep_out(torch.cat([s, ey, c], dim=-1))             # (...,2L)
        return self.out(t_tilde.unflatten(-1, (-1, 2)).amax(dim=-1))       # (...,V) maxout

    def logits(self, src: Tensor, src_mask: Tensor, tgt: Tensor) -> Tensor:
        """Logits (B,T,V) of every target position, teacher-forced on tgt (B,T) ids."""
        B, T = tgt.shape
        ann, s, keys = self.encode(src, src_mask)
        y_prev = torch.cat([torch.full((B, 1), BOS_ID, dtype=tgt.dtype), tgt[:, :-1]], dim=1)
        ey = self.emb_tgt(y_prev)                                          # (B,T,E)
        states, contexts = [], []
        for i in range(T):
            c = self.attend(s, ann, keys, src_mask)                        # (B,2H)
            s = self.decoder(torch.cat([ey[:, i], c], dim=1), s)           # (B,H)
            states.append(s)
            contexts.append(c)
        return self.output(torch.stack(states, 1), ey, torch.stack(contexts, 1))  # (B,T,V)

    def forward(self, src: Tensor, src_mask: Tensor, tgt: Tensor, tgt_mask: Tensor) -> Tensor:
        """Mean negative log-likelihood per real target token. src (B,S), tgt (B,T) ids."""
        B, T = tgt.shape
        nll = F.cross_entropy(self.logits(src, src_mask, tgt).reshape(B * T, -1),
                              tgt.reshape(-1), reduction="none")
        return (nll * tgt_mask.reshape(-1)).sum() / tgt_mask.sum()

    @torch.no_grad()
    def greedy(self, src: Tensor, src_mask: Tensor, max_len: int) -> Tensor:
        """The most probable next word at every step, (B,n) ids with n <= max_len, stopping
        once every sentence has produced </s> (what follows a sentence's </s> is to be cut)."""
        B = src.shape[0]
        ann, s, keys = self.encode(src, src_mask)
        y = torch.full((B,), BOS_ID, dtype=src.dtype)
        done = torch.zeros(B, dtype=torch.bool)
        out = []
        for _ in range(max_len):
            ey = self.emb_tgt(y)                                           # (B,E)
            c = self.attend(s, ann, keys, src_mask)                        # (B,2H)
            s = self.decoder(torch.cat([ey, c], dim=1), s)                 # (B,H)
            y = self.output(s, ey, c).argmax(dim=1)                        # (B,)
            out.append(y)
            done |= y == EOS_ID
            if bool(done.all()):
                break
        return torch.stack(out, 1)
