"""The bench's first mode: training steps and beam decoding on random ids of fixed shapes, one
JSON line per variant (``cli.py``'s help says what each number means), and the parts the other
modes share: the random batch, the step, the interleaved medians, the analytic FLOP count
(``train_flops``), the machine's sgemm peak and the decoding.

``--profile`` runs here too: ``--steps`` steps of the first variant under the op profiler
(``opprofile.py``) before the timed ones, its table on stderr and in the JSON line.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import blas, decode, model
from ..backend import Backend, get_backend, to_host
from ..data.batching import Batch, make_batch
from ..data.vocab import EOS_ID
from ..optim import Optimizer, clip_grad_norm, make_optimizer
from . import opprofile


def train_flops(cfg: model.Config, B: int, S: int, T: int) -> int:
    """Floating-point operations of one training step, counting the matrix products only
    (2 per multiply-add); elementwise work (gates, tanh, softmax) is left out.

    The forward's are counted by the variant's family beside its code (``flops`` of
    context_model.ContextModel, which asks its context in contexts.py, and of
    cursor_model.CursorModel; the shared parts in encoder.py, decoder.py and deep_output.py).
    Backward: every product y = x W has two of the same size (dx and dW): twice the forward.
    """
    return 3 * model.family(cfg).flops(cfg, B, S, T)


def matmul_gflops(backend: Backend, n: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 matrix-product speed on this backend: median of ``repeats``."""
    rng = np.random.default_rng(0)
    a, b = (backend.asarray(rng.standard_normal((n, n)), dtype="float32") for _ in range(2))
    to_host((a @ b)[0, 0])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        to_host((a @ b)[0, 0])  # waits for the device
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def best_kernel_gflops(kernel: str, threads: int | None = None) -> float | None:
    """``matmul_gflops`` on NumPy in a child process with ``OPENBLAS_CORETYPE=kernel`` (the
    kernel is chosen when NumPy loads, so it cannot change in this process) and ``threads``
    BLAS threads (None: the default); None if it fails."""
    code = ("from minirnnsearch.backend import get_backend; from minirnnsearch.bench.steps "
            "import matmul_gflops; print(matmul_gflops(get_backend('cpu')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**blas.thread_env(threads), blas.VARIABLE: kernel})
    return float(out.stdout) if out.returncode == 0 else None


def peak(backend: Backend, threads: int | None = None) -> dict:
    """sgemm GFLOP/s with the BLAS kernel in use and with the best one this CPU supports
    (``threads``: the BLAS threads of the child that times the best kernel; None: default)."""
    mm = matmul_gflops(backend)
    if backend.name != "numpy":
        return dict(blas_kernel=None, matmul_gflops=round(mm, 1), best_kernel=None,
                    best_matmul_gflops=round(mm, 1))
    in_use = blas.loaded()["kernel"]
    best = blas.best_kernel(blas.cpu_flags())
    best_mm: float | None = mm
    if best is not None and str(in_use).lower() != best.lower():
        best_mm = best_kernel_gflops(best, threads)
    else:
        best = in_use
    return dict(blas_kernel=in_use, matmul_gflops=round(mm, 1), best_kernel=best,
                best_matmul_gflops=None if best_mm is None else round(best_mm, 1))


def setup(args: argparse.Namespace, backend: Backend, variant: str
          ) -> tuple[model.Config, list[tuple[list[int], list[int]]], dict, Optimizer]:
    """The model, B random sentence pairs of S-1 and T-1 words (S and T with </s>; the same for
    every variant), parameters and Adam."""
    cfg = model.Config(src_vocab=args.vocab, tgt_vocab=args.vocab, variant=variant,
                       emb=args.emb, hidden=args.hidden, align=args.align, maxout=args.maxout,
                       band=args.band if model.supports_band(variant) else 0)
    rng = np.random.default_rng(0)
    srcs = [list(rng.integers(4, args.vocab, args.src_len - 1)) for _ in range(args.batch)]
    tgts = [list(rng.integers(4, args.vocab, args.tgt_len - 1)) for _ in range(args.batch)]
    params = model.init_params(cfg, backend, seed=0)
    return cfg, list(zip(srcs, tgts, strict=True)), params, make_optimizer("adam", params)


def median_times(fs: list[Callable[[], Any]], warmup: int, repeats: int) -> list[float]:
    """Median seconds of ``repeats`` calls of each of ``fs`` after ``warmup`` untimed ones,
    interleaved (one call of each in turn), so that the machine's load falls on all alike."""
    for _ in range(warmup):
        for f in fs:
            f()
    times: list[list[float]] = [[] for _ in fs]
    for _ in range(repeats):
        for f, ts in zip(fs, times, strict=True):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def median_time(f: Callable[[], Any], warmup: int, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``f`` after ``warmup`` untimed ones."""
    return median_times([f], warmup, repeats)[0]


def our_step(cfg: model.Config, params: dict, opt: Optimizer, batch: Batch
             ) -> Callable[[], None]:
    """A training step of this code: loss and gradients, clipping to norm 1, the optimiser."""
    def step() -> None:
        loss, grads = model.loss_and_grads(params, cfg, batch)
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads)
        to_host(loss)  # wait for the device
    return step


def profile(args: argparse.Namespace, cfg: model.Config, params: dict, batch: Batch
            ) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, float]]:
    """``--warmup`` then ``--steps`` steps of this code on Timed copies of ``params`` and
    ``batch`` (``opprofile``): per op, ms per step by kind (ops by total time, largest first),
    NumPy calls per step, and the GFLOP of its matmul calls per step."""
    params_t = {k: opprofile.timed(v) for k, v in params.items()}
    step = our_step(cfg, params_t, make_optimizer("adam", params_t),
                    Batch(*(opprofile.timed(a) for a in batch)))
    for _ in range(args.warmup):
        step()
    overhead = opprofile.calibrate()
    rec = opprofile.record(step, args.steps)
    return (opprofile.table(rec, args.steps, overhead),
            opprofile.calls_per_step(rec, args.steps), opprofile.gflop_per_step(rec, args.steps))


def run(args: argparse.Namespace) -> list[dict]:
    """One result dict per variant of ``args.variant``, their training steps interleaved."""
    load_start = os.getloadavg()[0]  # the machine may be shared: its 1-minute load, start and end
    backend = get_backend(args.device)
    setups = [setup(args, backend, v) for v in args.variant]
    pairs = setups[0][1]
    batch = make_batch([s for s, _ in pairs], [t for _, t in pairs]).to(backend)
    steps = [our_step(cfg, p, opt, batch) for cfg, _, p, opt in setups]
    if args.profile:  # where the time of the first variant's steps goes
        ops, calls, gflop = profile(args, setups[0][0], setups[0][2], batch)
    step_s = median_times(steps, args.warmup, args.steps)
    sgemm = peak(backend)
    results = [result_line(args, backend, cfg, params, batch, t, sgemm)
               for (cfg, _, params, _), t in zip(setups, step_s, strict=True)]
    for r in results:
        r["load_avg"] = [round(load_start, 1), round(os.getloadavg()[0], 1)]
    if args.profile:
        print(opprofile.format_table(ops, calls, gflop, 1000 * step_s[0],
                                     results[0]["gflop_per_step"]), file=sys.stderr)
        results[0]["profile_ms_per_step"] = {
            op: {k: round(v, 3) for k, v in {**row, "calls": calls.get(op, 0.0),
                                             "gflop": gflop.get(op, 0.0)}.items() if v}
            for op, row in ops.items()}
        results[0]["profile_ms_by_kind"] = {
            k: round(v, 3) for k, v in opprofile.by_kind(ops).items()}
    return results


def result_line(args: argparse.Namespace, backend: Backend, cfg: model.Config, params: dict,
            batch: Any, step_s: float, sgemm: dict) -> dict:
    """Beam-decoding speed of one trained variant and its line of numbers."""
    B, S, T = args.batch, args.src_len, args.tgt_len
    # Decoding: </s> made impossible so that every sentence takes exactly T steps of beam search.
    packed = model.pack_params(params)
    packed["b_o"] = packed["b_o"] - backend.asarray(
        np.eye(1, args.vocab, EOS_ID)[0] * 1e4, dtype="float32")
    n_dec = min(B, args.decode_sentences)
    src, src_mask = batch.src[:n_dec, ...], batch.src_mask[:n_dec, ...]

    def beam() -> None:
        decode.beam_search(packed, cfg, src, src_mask, beam=args.beam, max_len_ratio=0.0,
                           max_len_offset=T)

    beam()  # warm-up
    t0 = time.perf_counter()
    beam()
    decode_s = time.perf_counter() - t0

    flops = train_flops(cfg, B, S, T)
    achieved = flops / step_s / 1e9
    best = sgemm["best_matmul_gflops"]
    return dict(
        device=backend.name, variant=cfg.variant, band=cfg.band, batch=B, src_len=S, tgt_len=T,
        emb=cfg.emb, hidden=cfg.hidden, align=cfg.align, maxout=cfg.maxout, vocab=args.vocab,
        steps=args.steps, ms_per_step=round(1000 * step_s, 1),
        target_tokens_per_s=round(B * T / step_s, 1),
        decode_sentences_per_s=round(n_dec / decode_s, 2), beam=args.beam,
        peak_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        gflop_per_step=round(flops / 1e9, 2), achieved_gflops=round(achieved, 1), **sgemm,
        ratio=None if best is None else round(achieved / best, 3))

