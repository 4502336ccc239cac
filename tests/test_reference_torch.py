"""The PyTorch reference (skipped without torch): loss and every gradient equal autograd's in
float64 on the same weights, and the bench's interleaved comparison reports both sides."""

import json

import numpy as np
import pytest

from minirnnsearch import config, gradcheck, model
from minirnnsearch.bench import against_torch, cli, steps
from minirnnsearch.data.batching import make_batch
from minirnnsearch.nn.output import softmax_xent_forward

torch = pytest.importorskip("torch")
reference_torch = pytest.importorskip("minirnnsearch.reference_torch")
F = torch.nn.functional


# the reference writes the three models with a context; the cursors' dynamic programme is
# checked against brute-force enumeration and central differences in test_cursors.py
@pytest.mark.parametrize("variant", ("rnnsearch", "encdec", "diagonal"))
def test_loss_and_every_gradient_equal_torch_autograd(variant):
    cfg, params, batch = gradcheck.tiny_problem(variant)  # float64, padded sources and targets
    assert params["E_src"].dtype == np.float64 and np.any(batch.src_mask == 0)
    loss, grads = model.loss_and_grads(params, cfg, batch)
    ref_loss, ref_grads = reference_torch.paper_loss_and_grads(params, cfg, batch)
    assert float(loss) == pytest.approx(ref_loss, rel=1e-12)
    assert set(ref_grads) == set(grads)
    for k in grads:
        scale = max(1e-12, float(np.max(np.abs(ref_grads[k]))))
        assert np.max(np.abs(grads[k] - ref_grads[k])) / scale < 1e-10, k


@pytest.mark.parametrize("variant", ("rnnsearch", "encdec", "diagonal"))
def test_label_smoothed_loss_and_every_gradient_equal_torch_autograd(variant):
    """eps 0.1: the reference's terms are F.cross_entropy(label_smoothing=0.1), unreduced and
    weighted by the target mask over the real tokens (torch's own mean would count padded
    positions unless told an ignore_index)."""
    cfg, params, batch = gradcheck.tiny_problem(variant)
    assert np.any(batch.tgt_mask == 0)
    loss, grads = model.loss_and_grads(params, cfg, batch, label_smoothing=0.1)
    ref_loss, ref_grads = reference_torch.paper_loss_and_grads(params, cfg, batch, 0.1)
    assert float(loss) == pytest.approx(ref_loss, rel=1e-12)
    assert ref_loss != pytest.approx(reference_torch.paper_loss_and_grads(params, cfg, batch)[0],
                                     rel=1e-3)
    assert set(ref_grads) == set(grads)
    for k in grads:
        scale = max(1e-12, float(np.max(np.abs(ref_grads[k]))))
        assert np.max(np.abs(grads[k] - ref_grads[k])) / scale < 1e-10, k


def test_torch_label_smoothing_is_our_definition():
    """PyTorch's F.cross_entropy(label_smoothing=eps) per token is -(1-eps) log p(y) - (eps/V)
    sum_v log p(v), the uniform over all V words (the target's included, no ignore_index), as
    softmax_xent_forward; weighted by the mask over the real tokens, the same mean."""
    rng = np.random.default_rng(3)
    logits, y = rng.normal(size=(4, 6)) * 2, np.array([5, 0, 2, 2])
    w = np.array([1.0, 1.0, 0.0, 1.0]) / 3                               # one padded token
    logp = torch.log_softmax(torch.tensor(logits), dim=1)
    explicit = -(0.75 * logp[torch.arange(4), torch.tensor(y)] + 0.25 / 6 * logp.sum(dim=1))
    theirs = F.cross_entropy(torch.tensor(logits), torch.tensor(y), reduction="none",
                             label_smoothing=0.25)
    torch.testing.assert_close(theirs, explicit, rtol=1e-14, atol=0)
    ours = softmax_xent_forward(logits, y, w, 0.25)[0]
    assert float(ours) == pytest.approx(float((theirs * torch.tensor(w)).sum()), rel=1e-13)


@pytest.mark.parametrize("variant", ("cursors", "luong"))
def test_a_variant_it_does_not_write_raises(monkeypatch, variant):
    """The cursors, or a name added to config.VARIANTS, raise rather than becoming the diagonal."""
    monkeypatch.setattr(config, "VARIANTS", (*config.VARIANTS, "luong"))
    cfg, _, batch = gradcheck.tiny_problem("rnnsearch")
    cfg.variant = variant
    params = {k: torch.zeros(s) for k, s in model.param_shapes(
        model.Config(11, 13, "rnnsearch", emb=4, hidden=5, align=4, maxout=3)).items()}
    with pytest.raises(ValueError, match=f"not '{variant}'"):
        reference_torch.paper_loss(params, cfg, batch)


def test_user_model_has_the_same_sizes():
    cfg = model.Config(src_vocab=11, tgt_vocab=13, emb=4, hidden=5, align=6, maxout=3)
    ours = sum(int(np.prod(s)) for s in model.param_shapes(cfg).values())
    user = reference_torch.UserRNNsearch(cfg)
    theirs = sum(p.numel() for p in user.parameters())
    # nn.GRU/GRUCell carry a second bias per gate (b_ih and b_hh): 3H per GRU and direction;
    # the deep output's Linear has a bias (2L) the paper's t~ has not.
    assert theirs - ours == 3 * 3 * cfg.hidden + 2 * cfg.maxout


def _user_model() -> "reference_torch.UserRNNsearch":
    torch.manual_seed(0)
    cfg = model.Config(src_vocab=11, tgt_vocab=13, emb=4, hidden=5, align=6, maxout=3)
    return reference_torch.UserRNNsearch(cfg).double()


def _batch(src, tgt):
    b = make_batch(src, tgt)
    return (torch.as_tensor(b.src), torch.as_tensor(b.src_mask), torch.as_tensor(b.tgt),
            torch.as_tensor(b.tgt_mask))


def test_user_model_packs_padded_sources_so_padding_changes_nothing():
    user = _user_model()
    src, tgt = [[4, 5, 6, 7, 8], [9, 10]], [[5, 6], [7, 8, 9, 10]]
    together = user(*_batch(src, tgt)).item()
    alone = [user(*_batch([s], [t])).item() for s, t in zip(src, tgt, strict=True)]
    n = [len(t) + 1 for t in tgt]  # real target tokens, </s> included
    assert together == pytest.approx(sum(a * k for a, k in zip(alone, n, strict=True)) / sum(n),
                                     rel=1e-12)


def test_user_model_greedy_takes_the_most_probable_word_at_every_step():
    user = _user_model()
    src, src_mask, _, _ = _batch([[4, 5, 6, 7, 8], [9, 10]], [[5], [5]])
    ys = user.greedy(src, src_mask, max_len=6)                             # (B,n)
    assert ys.shape[0] == 2 and ys.shape[1] <= 6
    with torch.no_grad():  # teacher-forced on its own output, the model picks it again
        assert torch.equal(user.logits(src, src_mask, ys).argmax(dim=2), ys)
    for b in range(2):  # a sentence alone gives the same words (padding changes nothing)
        alone = user.greedy(src[b : b + 1, : int(src_mask[b].sum())], src_mask[b : b + 1, :
                            int(src_mask[b].sum())], max_len=6)[0]
        k = min(len(alone), ys.shape[1])
        assert torch.equal(alone[:k], ys[b, :k])


COMPARE = ["--batch", "3", "--src-len", "4", "--tgt-len", "3", "--emb", "4", "--hidden", "5",
           "--align", "6", "--maxout", "3", "--vocab", "20", "--steps", "1", "--warmup", "0",
           "--decode-sentences", "2", "--beam", "2", "--device", "cpu", "--compare", "torch"]


def test_bench_compares_with_torch_each_side_in_its_own_process(capsys, monkeypatch):
    monkeypatch.setattr(steps, "matmul_gflops", lambda backend: 100.0)  # the 2048^3 sgemm
    assert cli.main([*COMPARE, "--rounds", "1", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["threads"] == out["torch_threads"] == out["ours_blas_threads"] == 1
    assert out["torch_version"] == torch.__version__
    for side in ("ours", "torch_user", "torch_paper_gru"):
        assert len(out[f"{side}_ms_per_round"]) == 1
        assert out[f"{side}_ms_per_step"] == out[f"{side}_ms_per_round"][0] > 0
    for side in ("torch_user", "torch_paper_gru"):
        assert out[f"speedup_vs_{side}"] == round(
            out[f"{side}_ms_per_step"] / out["ours_ms_per_step"], 3)
        assert out[f"{side}_peak_rss_gb"] > 0
    assert out["ms_per_step"] == round(out["ours_ms_per_step"], 1)
    assert out["ratio"] == pytest.approx(out["achieved_gflops"] / 100.0, abs=1e-3)


def test_compare_interleaves_rounds_and_reports_medians_and_ratios_of_its_numbers(
        capsys, monkeypatch):
    """The arithmetic on made-up times (tests never assert a measured one): 4 rounds, so the
    medians are means of the two middle rounds."""
    monkeypatch.setattr(steps, "matmul_gflops", lambda backend: 100.0)
    order = []
    times = {"ours": [0.0021, 0.0024, 0.0022, 0.0030],
             "torch_user": [0.0050, 0.0046, 0.0047, 0.0049],
             "torch_paper_gru": [0.0031, 0.0032, 0.0033, 0.0040]}

    def fake_side(args, side):
        order.append(side)
        return dict(side=side, step_s=times[side][order.count(side) - 1], peak_rss_gb=0.1,
                    threads=args.threads, torch_version="x")

    monkeypatch.setattr(against_torch, "run_side", fake_side)
    assert cli.main([*COMPARE, "--rounds", "4", "--threads", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert order == ["ours", "torch_user", "torch_paper_gru"] * 4
    assert out["ours_ms_per_round"] == [2.1, 2.4, 2.2, 3.0]
    assert out["ours_ms_per_step"] == 2.3 and out["ms_per_step"] == 2.3
    assert out["torch_user_ms_per_step"] == 4.8
    assert out["torch_paper_gru_ms_per_step"] == 3.25
    assert out["speedup_vs_torch_user"] == round(4.8 / 2.3, 3)
    assert out["speedup_vs_torch_paper_gru"] == round(3.25 / 2.3, 3)
    assert out["target_tokens_per_s"] == round(3 * 3 / 0.0023, 1)
