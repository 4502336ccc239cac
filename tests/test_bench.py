"""The benchmark's bookkeeping on tiny shapes (never its times): the BLAS kernel and the best
kernel's sgemm, achieved / best, the load average, and --profile (the op profiler's
classification, its coverage of the model's products, and its table's arithmetic)."""

import json

import numpy as np
import pytest

from minirnnsearch import backend, blas, model
from minirnnsearch.backend import get_backend
from minirnnsearch.bench import cli, opprofile, steps
from minirnnsearch.data.batching import Batch, make_batch
from minirnnsearch.nn.gru import gru_step_forward

TINY = ["--batch", "3", "--src-len", "4", "--tgt-len", "3", "--emb", "4", "--hidden", "5",
        "--align", "6", "--maxout", "3", "--vocab", "20", "--steps", "2", "--warmup", "0",
        "--decode-sentences", "2", "--beam", "2", "--device", "cpu"]


def test_json_line_reports_kernel_ratio_against_best_and_load(capsys, monkeypatch):
    monkeypatch.setattr(steps, "matmul_gflops", lambda backend: 100.0)
    assert cli.main(TINY) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["blas_kernel"] == blas.loaded()["kernel"]
    assert out["ratio"] == pytest.approx(out["achieved_gflops"] / out["best_matmul_gflops"],
                                         abs=1e-3)
    assert len(out["load_avg"]) == 2 and min(out["load_avg"]) >= 0
    assert captured.err.startswith("BLAS: ")


def test_peak_times_the_best_kernel_in_a_child_only_when_it_differs(monkeypatch):
    asked = []
    monkeypatch.setattr(steps, "matmul_gflops", lambda backend: 100.0)
    monkeypatch.setattr(steps, "best_kernel_gflops",
                        lambda k, threads=None: asked.append(k) or 200.0)
    monkeypatch.setattr(blas, "cpu_flags", lambda: frozenset(
        {"avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}))
    monkeypatch.setattr(blas, "loaded", lambda: {"kernel": "Haswell"})
    got = steps.peak(get_backend("cpu"))
    assert asked == ["SkylakeX"]
    assert got == dict(blas_kernel="Haswell", matmul_gflops=100.0, best_kernel="SkylakeX",
                       best_matmul_gflops=200.0)
    monkeypatch.setattr(blas, "loaded", lambda: {"kernel": "SKYLAKEX"})  # same, other case
    assert steps.peak(get_backend("cpu"))["best_matmul_gflops"] == 100.0 and len(asked) == 1


# -- the op profiler -----------------------------------------------------------------------------

def test_profile_prints_a_table_by_op_and_kind_that_adds_up(capsys, monkeypatch):
    monkeypatch.setattr(steps, "matmul_gflops", lambda backend: 100.0)
    assert cli.main([*TINY, "--profile"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    ops, kinds = out["profile_ms_per_step"], out["profile_ms_by_kind"]
    assert set(kinds) == set(opprofile.KINDS)
    for op in ("nn.gru.gru_step_forward", "nn.gru.gru_step_backward",
               "nn.attention.attention_step_forward", "nn.output.softmax_xent_forward",
               "optim.Adam._update", "optim.clip_grad_norm"):
        assert op in ops, op
    for k in opprofile.KINDS:  # the kinds are the columns' sums (each rounded to 1e-3 ms)
        assert kinds[k] == pytest.approx(sum(row.get(k, 0.0) for row in ops.values()),
                                         abs=1e-3 * (len(ops) + 1))
    assert ops["nn.gru.gru_step_forward"]["calls"] > 0
    assert "op (ms per step)" in captured.err and "the same step timed without" in captured.err


def test_timed_arrays_give_the_same_numbers_and_name_the_op_and_kind():
    rng = np.random.default_rng(0)
    x, h, U_zr, U = (rng.standard_normal(s).astype(np.float32)
                     for s in ((2, 9), (2, 3), (3, 6), (3, 3)))
    want, _ = gru_step_forward(x, h, U_zr, U)
    args = [opprofile.timed(a) for a in (x, h, U_zr, U)]
    got = []
    rec = opprofile.record(lambda: got.append(gru_step_forward(*args)[0]), 1)
    assert isinstance(got[0], opprofile.Timed) and np.array_equal(got[0], want)
    calls = dict(rec.calls)
    # h @ U_zr and (r*h) @ U; tanh here, sigmoid's exp in sigmoid
    assert calls[("nn.gru.gru_step_forward", "products")] == 2
    assert calls[("nn.gru.gru_step_forward", "transcendental")] == 1
    assert calls[("nn.gru.sigmoid", "transcendental")] == 1
    assert rec.flops["nn.gru.gru_step_forward"] == 2 * 2 * 3 * 6 + 2 * 2 * 3 * 3


def test_namespace_of_timed_arrays_makes_timed_arrays_and_stays_numpy_for_the_backend():
    t = opprofile.timed(np.ones((2, 3), dtype=np.float32))
    xp = backend.namespace(t)
    assert backend._kind(xp) == "numpy"  # backend.py's helpers take their NumPy branches
    rec = opprofile.record(lambda: xp.empty((4,), dtype=xp.float32), 1)
    assert isinstance(xp.zeros((2,)), opprofile.Timed)
    assert dict(rec.calls) == {("(outside this package)", "copies"): 1}


def test_the_bench_own_numpy_calls_count_in_their_caller():
    """The bench's modules are no op of the model: their NumPy calls (here the sgemm probe's
    product on Timed arrays) are charged to the code that called them, none of the package's."""
    class TimedNumPy:
        name = "numpy"

        def asarray(self, a, dtype):
            return opprofile.timed(np.asarray(a, dtype=dtype))

    rec = opprofile.record(lambda: steps.matmul_gflops(TimedNumPy(), n=4, repeats=1), 1)
    assert rec.calls[("(outside this package)", "products")] == 2
    assert {op for op, _ in rec.calls} == {"(outside this package)"}


def _train_flops_by_name(cfg, B, S, T):
    """``train_flops`` (then in bench.py) as it was before each family counted its own products
    (commit 850a108), branching on the variant's name: the numbers the families must keep."""
    E, H, A, L, V = cfg.emb, cfg.hidden, cfg.align, cfg.maxout, cfg.tgt_vocab
    gru = 2 * B * H * 2 * H + 2 * B * H * H
    fwd = 2 * (2 * S * B * E * 3 * H + S * gru) + 2 * B * H * H
    fwd += 2 * T * B * E * 3 * H + T * gru
    if cfg.variant == "cursors":
        W = S if cfg.band == 0 else min(S, 2 * cfg.band + 1)
        fwd += 2 * B * S * 2 * H * A + 2 * T * B * H * A + 2 * T * B * (H + E) * 2 * L
        fwd += 2 * B * S * 2 * H * 2 * L + 2 * B * T * W * S * 2 * L + 2 * B * T * W * L * V
        return 3 * fwd
    if cfg.variant == "rnnsearch":
        fwd += 2 * B * S * 2 * H * A + 2 * T * B * 2 * H * 3 * H
        fwd += T * (2 * B * H * A + 2 * B * S * A + 2 * B * S * 2 * H)
    else:
        fwd += 2 * T * B * 2 * H * 3 * H
        if cfg.variant == "diagonal":
            fwd += 2 * B * T * S * 2 * H
    fwd += 2 * T * B * (H + E + 2 * H) * 2 * L + 2 * T * B * L * V
    return 3 * fwd


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_each_familys_flops_are_the_old_count(variant):
    """The FLOPs each family counts beside its code are the old count's, for every variant,
    band and shape (bench's presets among them)."""
    for preset in ("tiny", "paper"):
        for band in (0, 1, 3):
            cfg = model.Config.from_preset(preset, src_vocab=50, tgt_vocab=8000, variant=variant,
                                           band=band)
            for B, S, T in ((1, 1, 1), (3, 7, 6), (64, 20, 20), (80, 30, 30), (2, 40, 9)):
                assert steps.train_flops(cfg, B, S, T) == _train_flops_by_name(cfg, B, S, T)


@pytest.mark.parametrize("variant", ("rnnsearch", "encdec", "diagonal"))
def test_profiler_sees_every_product_of_a_training_step(variant):
    """Its matmul FLOPs equal the analytic count (``train_flops``, 3 x the forward's products)
    less the products this code does elementwise or never needs, so no product escaped it
    (arrays made by ``xp.empty`` in the model included); the loss and gradients are the plain
    ones bit for bit."""
    B, S, T = 3, 7, 6
    cfg = model.Config(src_vocab=50, tgt_vocab=50, variant=variant, emb=4, hidden=5, align=6,
                       maxout=3)
    params = model.init_params(cfg, get_backend("cpu"), seed=0)
    rng = np.random.default_rng(0)
    batch = make_batch([list(rng.integers(4, 50, S - 1)) for _ in range(B)],
                       [list(rng.integers(4, 50, T - 1)) for _ in range(B)])
    loss, grads = model.loss_and_grads(params, cfg, batch)
    params_t = {k: opprofile.timed(v) for k, v in params.items()}
    got = []
    rec = opprofile.record(lambda: got.append(model.loss_and_grads(
        params_t, cfg, Batch(*(opprofile.timed(a) for a in batch)))), 1)
    loss_t, grads_t = got[0]
    assert float(loss_t) == float(loss)
    for k in grads:
        assert isinstance(grads_t[k], opprofile.Timed) and np.array_equal(grads_t[k], grads[k]), k
    H, A = cfg.hidden, cfg.align
    elementwise = {"rnnsearch": 2 * T * B * S * A,       # the scores' gradient on tanh(..)
                   "encdec": 0,
                   "diagonal": 2 * B * T * S * 2 * H}    # a fixed alignment has no gradient
    assert sum(rec.flops.values()) == steps.train_flops(cfg, B, S, T) - elementwise[variant]


def test_table_subtracts_the_calibrated_cost_per_call_and_sorts_by_total():
    rec = opprofile.Recorder()
    rec.seconds.update({("a", "products"): 0.004, ("a", "python"): 0.002,
                        ("b", "copies"): 0.010, ("b", "python"): 0.0001})
    rec.entries.update({("a", "ufunc"): 10, ("b", "index"): 4})
    ops = opprofile.table(rec, 2, {"ufunc": 1e-4, "index": 1e-4, "function": 0, "create": 0})
    assert list(ops) == ["b", "a"]
    assert ops["a"]["products"] == pytest.approx(2.0) and ops["a"]["python"] == pytest.approx(0.5)
    assert ops["b"]["python"] == 0.0  # never below zero
    assert opprofile.by_kind(ops)["copies"] == pytest.approx(5.0)


def test_kinds_and_flops_of_numpy_calls():
    assert opprofile.ufunc_kind("matmul", "__call__") == "products"
    assert opprofile.ufunc_kind("tanh", "__call__") == "transcendental"
    assert opprofile.ufunc_kind("multiply", "__call__") == "elementwise"
    assert opprofile.ufunc_kind("add", "reduce") == "reductions"
    assert opprofile.ufunc_kind("add", "at") == "copies"
    assert opprofile.function_kind(np.concat) == "copies"
    assert opprofile.function_kind(np.sum) == "reductions"
    assert opprofile.function_kind(np.where) == "elementwise"
    assert opprofile.function_kind(np.tensordot) == "products"
    assert opprofile.matmul_flops((4, 5), (5, 6)) == 2 * 4 * 5 * 6
    assert opprofile.matmul_flops((3, 1, 5), (3, 5, 7)) == 2 * 3 * 5 * 7
    assert opprofile.matmul_flops((5,), (5, 6)) == 2 * 5 * 6
    assert opprofile.matmul_flops((2, 4, 5), (5,)) == 2 * 2 * 4 * 5
