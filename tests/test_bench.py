"""The benchmark's bookkeeping on tiny shapes (never its times): the BLAS kernel and the best
kernel's sgemm, achieved / best, the load average, and --profile."""

import json

import pytest

from minirnnsearch import bench, blas
from minirnnsearch.backend import get_backend

TINY = ["--batch", "3", "--src-len", "4", "--tgt-len", "3", "--emb", "4", "--hidden", "5",
        "--align", "6", "--maxout", "3", "--vocab", "20", "--steps", "2", "--warmup", "0",
        "--decode-sentences", "2", "--beam", "2", "--device", "cpu"]


def test_json_line_reports_kernel_ratio_against_best_and_load(capsys, monkeypatch):
    monkeypatch.setattr(bench, "matmul_gflops", lambda backend: 100.0)
    assert bench.main([*TINY, "--profile"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["blas_kernel"] == blas.loaded()["kernel"]
    assert out["ratio"] == pytest.approx(out["achieved_gflops"] / out["best_matmul_gflops"],
                                         abs=1e-3)
    assert len(out["load_avg"]) == 2 and min(out["load_avg"]) >= 0
    assert captured.err.startswith("BLAS: ") and "tottime" in captured.err  # the profile


def test_peak_times_the_best_kernel_in_a_child_only_when_it_differs(monkeypatch):
    asked = []
    monkeypatch.setattr(bench, "matmul_gflops", lambda backend: 100.0)
    monkeypatch.setattr(bench, "best_kernel_gflops", lambda k: asked.append(k) or 200.0)
    monkeypatch.setattr(blas, "cpu_flags", lambda: frozenset(
        {"avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}))
    monkeypatch.setattr(blas, "loaded", lambda: {"kernel": "Haswell"})
    got = bench.peak(get_backend("cpu"))
    assert asked == ["SkylakeX"]
    assert got == dict(blas_kernel="Haswell", matmul_gflops=100.0, best_kernel="SkylakeX",
                       best_matmul_gflops=200.0)
    monkeypatch.setattr(blas, "loaded", lambda: {"kernel": "SKYLAKEX"})  # same, other case
    assert bench.peak(get_backend("cpu"))["best_matmul_gflops"] == 100.0 and len(asked) == 1
