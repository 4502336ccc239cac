"""The PyTorch reference (skipped without torch): loss and every gradient equal autograd's in
float64 on the same weights, and the bench's interleaved comparison reports both sides."""

import json

import numpy as np
import pytest

from minirnnsearch import bench, gradcheck, model

torch = pytest.importorskip("torch")
reference_torch = pytest.importorskip("minirnnsearch.reference_torch")


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


def test_user_model_has_the_same_sizes():
    cfg = model.Config(src_vocab=11, tgt_vocab=13, emb=4, hidden=5, align=6, maxout=3)
    ours = sum(int(np.prod(s)) for s in model.param_shapes(cfg).values())
    user = reference_torch.UserRNNsearch(cfg)
    theirs = sum(p.numel() for p in user.parameters())
    # nn.GRU/GRUCell carry a second bias per gate (b_ih and b_hh): 3H per GRU and direction;
    # the deep output's Linear has a bias (2L) the paper's t~ has not.
    assert theirs - ours == 3 * 3 * cfg.hidden + 2 * cfg.maxout


def test_bench_compares_with_torch_in_one_run(capsys, monkeypatch):
    monkeypatch.setattr(bench, "matmul_gflops", lambda backend: 100.0)  # the 2048^3 sgemm
    args = ["--batch", "3", "--src-len", "4", "--tgt-len", "3", "--emb", "4", "--hidden", "5",
            "--align", "6", "--maxout", "3", "--vocab", "20", "--steps", "1", "--warmup", "0",
            "--rounds", "2", "--decode-sentences", "2", "--beam", "2", "--device", "cpu",
            "--compare", "torch"]
    assert bench.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    for name in ("user", "paper_gru"):
        assert len(out[f"torch_{name}_ms_per_round"]) == 2 == len(out["ours_ms_per_round"])
        assert out[f"speedup_vs_torch_{name}"] == pytest.approx(
            out[f"torch_{name}_ms_per_step"] / out["ms_per_step"], rel=0.02)
    assert out["ratio"] == pytest.approx(out["achieved_gflops"] / 100.0, abs=1e-3)
