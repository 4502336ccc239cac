# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # RNNsearch, cell by cell
#
# This notebook builds the model of Bahdanau, Cho & Bengio (2014), *Neural Machine Translation
# by Jointly Learning to Align and Translate* ([arXiv 1409.0473](https://arxiv.org/abs/1409.0473)),
# one piece at a time, with the functions of this package: a batch, one GRU step, the
# encoder's annotations, one step of the alignment model (eq. 6), the deep output and the
# loss; then it trains a tiny model, translates with it and draws what it looks at, and sets
# the fixed vector of RNNencdec against the soft search. Every cell checks what it computes
# (a gradient against central differences, a shape, a sum that must be 1), so a cell that
# runs is a cell that is right. The paper's notation is the README's
# ([the equations in the code](../README.md#the-equations-in-the-code)); matrices are stored
# (in, out), so the paper's `W x` is `x @ W` here.
#
# Shapes: B batch, S source length, T target length, E embedding, H hidden, A alignment
# hidden, L maxout units, V vocabulary.
#
# It runs in well under two minutes on a CPU; CI executes it from `docs/walkthrough.py`
# (`tests/test_walkthrough.py`), and `python docs/make_walkthrough.py` writes the executed
# `docs/walkthrough.ipynb`.

# %% [markdown]
# ## Setting up
#
# `import minirnnsearch` comes before NumPy: it chooses the BLAS kernel, which OpenBLAS fixes
# when NumPy loads it ([docs/api.md](api.md)). The matrices of a tiny model are too small to
# share between threads, so BLAS gets one. Everything this notebook writes goes into a
# temporary directory.

# %%
from minirnnsearch import blas  # importing the package first chooses the BLAS kernel

# isort: split
import dataclasses
import math
import shutil
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display
from sacrebleu.metrics import BLEU
from threadpoolctl import threadpool_limits

from minirnnsearch import Config, Settings, Translator, model, train
from minirnnsearch.backend import get_backend
from minirnnsearch.data.batching import make_batch
from minirnnsearch.data.corpus import builtin_corpus
from minirnnsearch.data.io import read_lines
from minirnnsearch.data.subword import WordSegmenter
from minirnnsearch.data.tokenize import tokenize
from minirnnsearch.data.vocab import BOS_ID, EOS_ID, Vocab
from minirnnsearch.deep_output import deep_output_forward
from minirnnsearch.encoder import encode
from minirnnsearch.gradcheck import numerical_gradient, rel_error
from minirnnsearch.nn.attention import attention_step_forward, masked_softmax
from minirnnsearch.nn.gru import gru_step_backward, gru_step_forward, sigmoid
from minirnnsearch.nn.output import log_softmax
from minirnnsearch.params import pack_params
from minirnnsearch.report import Panel, plot_attention, plot_contexts

threadpool_limits(limits=1, user_api="blas")
work = Path(tempfile.mkdtemp(prefix="walkthrough-"))
cpu = get_backend("cpu")
print(blas.describe())
print("work directory:", work)

# %% [markdown]
# ## The built-in corpus and a batch
#
# The built-in English→French corpus comes from a seeded grammar: agreement in gender and
# number, adjectives after the noun in mirror order, object pronouns before the verb
# (`minirnnsearch/data/corpus.py`). We write a small one: 10,000 training pairs, and held-out
# dev and test pairs that never occur in training.
#
# A batch holds word ids, each sentence ending in `</s>` and right-padded with `<pad>` (id 0),
# and masks with 1 on the real tokens: `src` (B,S), `src_mask` (B,S), `tgt` (B,T), `tgt_mask`
# (B,T).

# %%
files = builtin_corpus(work / "corpus", n_train=10000, n_dev=400, n_test=400)
train_en, train_fr = read_lines(files["train.en"]), read_lines(files["train.fr"])
for en, fr in zip(train_en[:3], train_fr[:3], strict=True):
    print(f"{en}\n  -> {fr}")

src_vocab = Vocab.build([tokenize(s) for s in train_en], 30000)
tgt_vocab = Vocab.build([tokenize(t) for t in train_fr], 30000)
pairs = [(en, fr) for en, fr in zip(train_en, train_fr, strict=True) if len(en.split()) <= 6][:3]
batch = make_batch([src_vocab.encode(tokenize(en)) for en, _ in pairs],
                   [tgt_vocab.encode(tokenize(fr)) for _, fr in pairs])
print("vocabularies:", len(src_vocab), len(tgt_vocab))
print("src (B,S):\n", batch.src, "\nsrc_mask:\n", batch.src_mask)

lengths = [len(tokenize(en)) + 1 for en, _ in pairs]                  # the words and </s>
assert batch.src_mask.sum(axis=1).tolist() == lengths
assert all(batch.src[b, n - 1] == EOS_ID for b, n in enumerate(lengths))
assert (batch.src[batch.src_mask == 0] == 0).all()                     # <pad> where the mask is 0

# %% [markdown]
# ## The parameters
#
# One dict, name → array, in the paper's names; the gradients are a dict with the same keys.
# A tiny model (E 32, H 64, A 64, L 32) in float64 for the checks. `init="fan-in"` draws
# PyTorch's defaults (train.py's default); the paper's appendix B.1 (`init="paper"`) starts
# `v_a` at zero, which would make the first alignment below exactly uniform.
# `pack_params` adds the stacked matrices the fast path multiplies with, e.g.
# `enc_fwd.W_x = [W_z | W_r | W]` (E,3H).

# %%
cfg = Config.from_preset("tiny", src_vocab=len(src_vocab), tgt_vocab=len(tgt_vocab),
                         init="fan-in")
params = model.init_params(cfg, cpu, seed=0, dtype="float64")
p = pack_params(params)
E, H, A, L = cfg.emb, cfg.hidden, cfg.align, cfg.maxout
for name in ("E_src", "enc_fwd.W_z", "enc_fwd.U_z", "dec.C_z", "W_a", "U_a", "v_a", "U_o",
             "W_o"):
    print(f"{name:12} {params[name].shape}")
assert {k: v.shape for k, v in params.items()} == model.param_shapes(cfg)
assert p["enc_fwd.W_x"].shape == (E, 3 * H)

# %% [markdown]
# ## One GRU step (appendix A.1.1)
#
# The paper's GRU applies the reset gate *before* the recurrent product, `U (r ∘ h)` (PyTorch
# and cuDNN apply it after). `gru_step_forward` takes the input part of all three gates at
# once, `xproj = [W_z x + b_z | W_r x + b_r | W x + b]` (B,3H); below, each equation is written
# out again beside the package's result. Then the backward pass, `gru_step_backward`, against
# central differences of a scalar `f = Σ g ∘ h` (g random): its gradient with respect to `h` is
# `g`, so `gru_step_backward(g, ...)` must give `∂f/∂xproj` and `∂f/∂h_{j-1}`.

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((2, E))                                        # (B,E)  x_j, B = 2
h_prev = rng.standard_normal((2, H)) * 0.5                             # (B,H)  h_{j-1}
W = {g: params[f"enc_fwd.{g}"] for g in ("W_z", "W_r", "W", "U_z", "U_r", "U", "b_z", "b_r", "b")}

xproj = x @ p["enc_fwd.W_x"] + p["enc_fwd.b_x"]                        # (B,3H)
h, cache = gru_step_forward(xproj, h_prev, p["enc_fwd.U_zr"], p["enc_fwd.U"])
z = sigmoid(x @ W["W_z"] + h_prev @ W["U_z"] + W["b_z"])     # z = σ(W_z x + U_z h + b_z)
r = sigmoid(x @ W["W_r"] + h_prev @ W["U_r"] + W["b_r"])     # r = σ(W_r x + U_r h + b_r)
h_tilde = np.tanh(x @ W["W"] + (r * h_prev) @ W["U"] + W["b"])  # h~ = tanh(W x + U (r∘h) + b)
print("h (B,H):", h.shape, " max |h - ((1-z) h + z h~)| =",
      np.abs(h - ((1 - z) * h_prev + z * h_tilde)).max())
assert np.allclose(h, (1 - z) * h_prev + z * h_tilde, rtol=0, atol=1e-12)  # h = (1-z)∘h + z∘h~

g = rng.standard_normal(h.shape)                                       # f = Σ g ∘ h
dxproj, dh_prev = gru_step_backward(g, cache, p["enc_fwd.U_zr"], p["enc_fwd.U"])


def f():
    return float(np.sum(g * gru_step_forward(xproj, h_prev, p["enc_fwd.U_zr"], p["enc_fwd.U"])[0]))


errors = {"xproj": rel_error(dxproj, numerical_gradient(f, xproj)),
          "h_prev": rel_error(dh_prev, numerical_gradient(f, h_prev))}
print("relative error against central differences:", errors)
assert max(errors.values()) < 1e-7

# %% [markdown]
# ## The encoder's annotations (section 3.2)
#
# Two GRUs read the source embeddings `x_j = E_src[w_j]`, one forward, one backward; each word's
# annotation is both states side by side, `h_j = [→h_j ; ←h_j]` (B,S,2H). A padded position
# leaves a direction's state unchanged, so the backward GRU starts at each sentence's last real
# word. The decoder's first state is `s_0 = tanh(W_s ←h_1 + b_s)`.

# %%
enc, s0, _ = encode(p, batch.src, batch.src_mask)
annotations = enc.annotations                                          # (B,S,2H) h_j
B, S = batch.src.shape
print("annotations (B,S,2H):", annotations.shape, " s_0 (B,H):", s0.shape)
assert annotations.shape == (B, S, 2 * H) and s0.shape == (B, H)

short = int(np.argmin(lengths))                                        # the most padded sentence
n = lengths[short]
assert np.array_equal(annotations[short, n - 1:, :H],                  # →h stays after the end
                      np.broadcast_to(annotations[short, n - 1, :H], (S - n + 1, H)))
x_last = p["E_src"][batch.src[short, n - 1]][None, :]                  # ←h starts at </s>, h = 0
h_last, _ = gru_step_forward(x_last @ p["enc_bwd.W_x"] + p["enc_bwd.b_x"], np.zeros((1, H)),
                             p["enc_bwd.U_zr"], p["enc_bwd.U"])
assert np.allclose(annotations[short, n - 1, H:], h_last[0], rtol=0, atol=1e-12)
assert np.allclose(s0, np.tanh(annotations[:, 0, H:] @ p["W_s"] + p["b_s"]))  # s_0 from ←h_1

# %% [markdown]
# ## One alignment step (eq. 5–6)
#
# Before the decoder writes word i, the alignment model scores every source annotation against
# the previous decoder state, `e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j)`, and turns the scores
# into weights over the real words, `α_ij = exp(e_ij) / Σ_k exp(e_ik)`; the context is the
# annotations' weighted average, `c_i = Σ_j α_ij h_j`. The keys `U_a h_j` do not depend on i:
# they are computed once per sentence. `attention_step_forward` does all three; here each is
# recomputed beside it, for the first step (`s_0`). Untrained, the weights are nearly flat:
# training makes them point.

# %%
keys = annotations @ p["U_a"]                                          # (B,S,A)  U_a h_j, once
q = s0 @ p["W_a"]                                                      # (B,A)    W_a s_{i-1}
c, alpha, _ = attention_step_forward(q, keys, annotations, enc.mask, p["v_a"])
assert keys.shape == (B, S, A) and c.shape == (B, 2 * H) and alpha.shape == (B, S)
e = np.tanh(q[:, None, :] + keys) @ p["v_a"]                           # (B,S)  e_ij, eq. 6
assert np.allclose(alpha, masked_softmax(e, enc.mask))                 # (B,S)  α_ij, eq. 6
assert np.allclose(c, np.einsum("bs,bsk->bk", alpha, annotations))     # (B,2H) c_i, eq. 5
print("α_1 of each sentence sums to", alpha.sum(axis=1))
assert np.allclose(alpha.sum(axis=1), 1.0) and (alpha[enc.mask == 0] == 0).all()

words = [WordSegmenter().show(w) for w in [*tokenize(pairs[short][0]), "</s>"]]
plt.figure(figsize=(5, 2.2))
plt.bar(range(n), alpha[short, :n])
plt.xticks(range(n), words)
plt.ylabel("α_1j")
plt.title("first alignment step, untrained: weights over the source words")
plt.show()

# %% [markdown]
# ## The decoder step, the deep output and the loss (eq. 4, appendix A.2.2)
#
# With `c_i`, the decoder GRU takes one step, its gates reading the previous word and the
# context too: `s_i = GRU(s_{i-1}; E y_{i-1}, c_i)` (the gates `W.. E y + U.. s + C.. c + b..`).
# The deep output mixes the state, the previous word and the context,
# `t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i` (2L), keeps the larger of each pair (maxout,
# `t_i`, L), and the softmax gives `p(y_i) = softmax(W_o t_i + b_o)`. The loss is the negative
# log-probability of the reference word. (The appendix writes `s_{i-1}` in `t~_i`, the main
# text `s_i`; this code uses `s_i`.) The same step is `model.decoder_step`, which translation
# calls; the two must agree.

# %%
y_prev = np.full(B, BOS_ID)                                            # y_0 = <s>
ey = p["E_tgt"][y_prev]                                                # (B,E)  E y_{i-1}
xproj_dec = ey @ p["dec.W_x"] + p["dec.b_x"] + c @ p["dec.C_x"]        # (B,3H) W.. Ey + C.. c + b..
s1, _ = gru_step_forward(xproj_dec, s0, p["dec.U_zr"], p["dec.U"])     # (B,H)  s_1
t_tilde = s1 @ p["U_o"] + ey @ p["V_o"] + c @ p["C_o"]                 # (B,2L) t~_1
t, _ = deep_output_forward(p, s1, ey, c)                               # (B,L)  t_1 = maxout(t~_1)
assert np.array_equal(t, t_tilde.reshape(B, L, 2).max(axis=2))         # max over each pair
logp = log_softmax(t @ p["W_o"] + p["b_o"])                            # (B,V)  log p(y_1)
nll = -logp[np.arange(B), batch.tgt[:, 0]]                             # (B,)   -log p(y_1)
print("p(y_1) sums to", np.exp(logp).sum(axis=1), " -log p(reference y_1):", nll)
assert np.allclose(np.exp(logp).sum(axis=1), 1.0)

encoded = model.encode(p, cfg, batch.src, batch.src_mask)[0]           # with the keys U_a h_j
logp_model, s1_model, alpha_model = model.decoder_step(p, cfg, encoded, y_prev, s0, 0)
assert np.allclose(logp_model, logp) and np.allclose(s1_model, s1)
assert np.allclose(alpha_model, alpha)

# %% [markdown]
# ## The whole loss, three ways
#
# Repeating the step for every target word, with the reference word as the next input, gives
# the loss: the mean of `-log p(y_i)` over the real target tokens of the batch. Here it is
# from `model.decoder_step` in a loop; from `model.loss_and_grads`, the training code (the
# decoder inputs of all steps in one product, the softmax chunked, the backward by hand); and
# from `tests/reference.py`, the model written again from the paper one sentence and one word
# at a time with plain loops. `tests/` is not a package: the cell puts that directory on
# `sys.path`, found from the notebook's own directory (`docs/`, where Jupyter and
# `make_walkthrough.py` run it). The three agree to float64 rounding; then a few gradients of
# the whole model against central differences.

# %%
sys.path.insert(0, str(Path.cwd().parent / "tests"))
import reference  # tests/reference.py: the paper's equations with loops

s = s0
total, y_prev = 0.0, np.full(B, BOS_ID)
for i in range(batch.tgt.shape[1]):
    logp_i, s, _ = model.decoder_step(p, cfg, encoded, y_prev, s, i)   # (B,V) log p(y_i)
    total -= np.sum(logp_i[np.arange(B), batch.tgt[:, i]] * batch.tgt_mask[:, i])
    y_prev = batch.tgt[:, i]                                           # the reference word
loop_loss = total / batch.tgt_mask.sum()

loss, grads = model.loss_and_grads(params, cfg, batch)
ref_loss = reference.loss(params, "rnnsearch", [src_vocab.encode(tokenize(en)) for en, _ in pairs],
                          [tgt_vocab.encode(tokenize(fr)) for _, fr in pairs])
print(f"decoder_step loop {loop_loss:.12f}\nloss_and_grads    {float(loss):.12f}\n"
      f"tests/reference   {ref_loss:.12f}")
assert math.isclose(loop_loss, float(loss), rel_tol=1e-12)
assert math.isclose(ref_loss, float(loss), rel_tol=1e-12)
assert grads.keys() == params.keys()

for name in ("v_a", "b_o", "enc_bwd.b_z"):
    numerical = numerical_gradient(lambda: float(model.loss(params, cfg, batch)), params[name])
    err = rel_error(grads[name], numerical)
    print(f"{name:12} relative error {err:.1e}")
    assert err < 1e-6

# %% [markdown]
# ## Training a tiny model with the API
#
# `train(Settings(...))` runs what `python train.py` runs ([docs/api.md](api.md)): Adam,
# gradients clipped to norm 1, batches of similar lengths, greedy dev BLEU every
# `valid_every` updates, the best checkpoint kept. A tiny model on the pairs of at most 20
# words, 800 updates of 32 pairs; the dev sentences are those of at most 20 words too. The
# seeds fix the run: on this project's machine it reaches a dev BLEU of 82.5 (54.8 after 600
# updates); the cell asserts 60. The files hold the built-in corpus, so the cell gives the
# built-in corpora's rate and dropout (3e-3, none): for files, `train` would otherwise take the
# defaults for real text, 1e-3 and dropout 0.2 ([docs/training.md](training.md#defaults-by-corpus)).

# %%
dev = [(en, fr) for en, fr in zip(read_lines(files["dev.en"]), read_lines(files["dev.fr"]),
                                  strict=True) if len(en.split()) <= 20]
(work / "dev.en").write_text("".join(f"{en}\n" for en, _ in dev), encoding="utf-8")
(work / "dev.fr").write_text("".join(f"{fr}\n" for _, fr in dev), encoding="utf-8")

settings = Settings(
    train_src=str(files["train.en"]), train_tgt=str(files["train.fr"]),
    dev_src=str(work / "dev.en"), dev_tgt=str(work / "dev.fr"), max_len=20,
    preset="tiny", batch_size=32, lr=3e-3, dropout=0.0, max_steps=800, valid_every=200,
    valid_size=100, seed=1, device="cpu", quiet=True, out=str(work / "rnnsearch"))
result = train(settings)
print(f"{result.updates} updates, dev BLEU {result.best_bleu:.1f}, stopped: {result.stop}")
assert result.updates == 800 and result.best_bleu > 60

# %% [markdown]
# ## A translation and its alignment (Figure 3)
#
# `Translator` loads the run's best checkpoint and translates with beam search; each
# translation comes with its alignment, one row of weights `α_i` per target word over the
# source words and `</s>` (white = 1), the paper's Figure 3. The adjectives come after the
# noun in French, in mirror order: the alignment crosses there.

# %%
translator = Translator(work / "rnnsearch", "best", device="cpu")
sentence = "I see the European economic area and the large green houses."
(text, score, attention, src_tokens, tgt_tokens), = translator.translate([sentence], beam=5)[0]
print(sentence, "->", text)
print("attention (target tokens, source tokens + </s>):", attention.shape)
assert attention.shape == (len(tgt_tokens), len(src_tokens))
assert np.allclose(attention.sum(axis=1), 1.0)
plot_attention(attention, src_tokens, tgt_tokens, work / "alignment.png")
display(Image(filename=work / "alignment.png"))

# %% [markdown]
# ## The fixed vector against the soft search
#
# RNNencdec (`variant="encdec"`) reads the same annotations but hands the decoder one vector
# for the whole sentence, `c = [→h_S ; ←h_1]`: a long sentence has to fit in it. The same
# settings train it here; then both models translate test sentences of three lengths (greedy,
# 30 of each), and one long sentence is drawn side by side. After 800 updates the fixed vector
# is far behind at every length (it learns more slowly), and it loses more of what it has as
# the sentences grow: on 20–30 words it keeps about a tenth of its BLEU on short sentences,
# the soft search about half. The paper's Figure 2 in miniature; [docs/story.md](story.md)
# has both trained to their plateaus.

# %%
encdec = train(dataclasses.replace(settings, variant="encdec", out=str(work / "encdec")))
models = {"RNNencdec": Translator(work / "encdec", "best", device="cpu", max_len=60),
          "RNNsearch": Translator(work / "rnnsearch", "best", device="cpu", max_len=60)}
test = list(zip(read_lines(files["test.en"]), read_lines(files["test.fr"]), strict=True))
bleu = BLEU(tokenize="13a", effective_order=True)  # effective order: one sentence too
by_length = {}
for lo, hi in ((0, 10), (10, 20), (20, 30)):
    chosen = [(en, fr) for en, fr in test if lo < len(en.split()) <= hi][:30]
    for name, tr in models.items():
        hyps = [out[0][0] for out in tr.translate([en for en, _ in chosen], beam=1)]
        by_length[name, lo] = bleu.corpus_score(hyps, [[fr for _, fr in chosen]]).score
print("source words   RNNencdec   RNNsearch")
for lo, hi in ((0, 10), (10, 20), (20, 30)):
    print(f"{lo:>5}-{hi:<5}    {by_length['RNNencdec', lo]:9.1f}   "
          f"{by_length['RNNsearch', lo]:9.1f}")

long_en, long_fr = next((en, fr) for en, fr in test if 25 <= len(en.split()) <= 30)
panels = []
for name, tr in models.items():
    (text, _, attention, src_tokens, tgt_tokens), = tr.translate([long_en], beam=5)[0]
    print(f"{name}: {text}  (sentence BLEU {bleu.sentence_score(text, [long_fr]).score:.1f})")
    panels.append(Panel(name, attention, src_tokens, tgt_tokens, "one fixed vector:\nno alignment"))
print(f"reference: {long_fr}")
plot_contexts(panels, work / "contexts.png", "one long sentence, after 800 updates each")
display(Image(filename=work / "contexts.png"))

kept = {name: by_length[name, 20] / by_length[name, 0] for name in models}  # long / short BLEU
print("BLEU kept from 0-10 to 20-30 words:", {name: round(k, 2) for name, k in kept.items()})
assert all(by_length["RNNsearch", lo] > by_length["RNNencdec", lo] + 20 for lo in (0, 10, 20))
assert kept["RNNsearch"] > 2 * kept["RNNencdec"]

# %% [markdown]
# ## Where next
#
# - The whole model's gradients, every parameter: `python -m minirnnsearch.gradcheck`.
# - The four models of the story trained to their plateaus, Figures 2 and 3:
#   [docs/story.md](story.md).
# - Training on your own corpus, every option: [docs/training.md](training.md).
#
# The runs and the corpus of this notebook go with its temporary directory:

# %%
shutil.rmtree(work)
assert not work.exists()
