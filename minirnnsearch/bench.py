"""Benchmark: training steps and beam decoding on random ids of fixed shapes.

    python -m minirnnsearch.bench --preset small        # B 64, S 20, T 20, E 128, H 256, V 8000
    python -m minirnnsearch.bench --preset paper        # B 80, S 30, T 30, E 620, H 1000, V 30000
    python -m minirnnsearch.bench --compare torch       # and PyTorch on the same shapes
    python -m minirnnsearch.bench --variant rnnsearch cursors   # both, steps interleaved
    python -m minirnnsearch.bench --preset small --profile --steps 5   # where a step's time goes
    python -m minirnnsearch.bench --compare torch --corpus DIR --minutes M   # BLEU after M min

Prints one JSON line per variant: target tokens/s and ms per training step (forward, backward,
clipping, Adam; the median of the timed steps after a warm-up), beam-decoding sentences/s (T
output tokens each: </s> is switched off so every run does the same work), the peak resident
memory of the process, the model's FLOPs per step from the analytic count in ``train_flops``, the
achieved GFLOP/s, and the machine's own float32 matmul (sgemm) GFLOP/s measured in the same run:
with the BLAS kernel in use and, where that is not the best kernel the CPU supports
(``blas.best_kernel``), with the best one in a child process; the ratio is achieved / best.
It also prints the machine's 1-minute load average at the start and the end of the run: on a
shared machine, numbers are comparable only within one run.

``--profile`` (NumPy only) first runs ``--steps`` steps of the first variant under the op
profiler of ``opprofile.py`` and prints on stderr a table of milliseconds per step: a row per
op (the function of this package that made the NumPy call: ``gru_step_forward``,
``attention_step_backward``, ``softmax_xent_forward``, the model's products outside the loops,
``Adam._update``, ``clip_grad_norm``, ...), a column per kind of work (matrix products,
transcendental functions, other elementwise work, reductions, copies, Python), the kinds'
shares, and the same step timed without the profiler for comparison; the JSON line gets the
table too (``profile_ms_per_step``, ``profile_ms_by_kind``). For a before/after comparison, run
the same command on both versions, alone on the machine.

``--compare torch`` times this code and the two PyTorch references of ``reference_torch`` (what a
PyTorch user writes, ``torch_user``, and the paper's GRU from torch ops, ``torch_paper_gru``)
on the same batch (the same seed), with Adam and clipping as here, each side in its own fresh
process: ``--rounds`` rounds (3), each running one process per side in turn (this code,
``torch_user``, ``torch_paper_gru``, this code, ...), each process timing ``--steps`` steps after
``--warmup`` and reporting its median as JSON. Why processes: NumPy's OpenBLAS keeps its
threads alive between calls, and PyTorch keeps its own OpenMP pool; in one process the two pools
compete for the same cores, and PyTorch's steps were measurably slower there than alone in a
fresh process (issue 21), so an in-process comparison favoured this code. Each side gets
``--threads`` threads (default: the BLAS threads of this process, which is OpenBLAS's default of
one per core unless ``OPENBLAS_NUM_THREADS`` says otherwise: 2 on this project's 2-core
machines), the same number for both: this code's BLAS through
``OMP/OPENBLAS/MKL_NUM_THREADS``, PyTorch through ``torch.set_num_threads`` (its processes give
NumPy's BLAS 1 thread: NumPy only makes the batch there). One JSON line gives the rounds, the
medians (ms rounded to the microsecond first; medians and ratios computed from the rounded
values), this code's speed-up over each, and each side's peak memory; the sgemm peak and the
decoding are measured in the parent afterwards, with the same threads.

``--compare torch --corpus DIR --minutes M`` compares translation quality instead of speed:
each side trained alone for M minutes on the same corpus, both scored by sacrebleu the same way
(``quality.py`` says how).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from . import blas, decode, distributed, model, opprofile
from .backend import Array, Backend, get_backend, to_host
from .cli import (
    beam_size,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
)
from .data.batching import Batch, make_batch
from .data.io import DataError
from .data.vocab import EOS_ID, vocab_size
from .optim import Optimizer, clip_grad_norm, make_optimizer
from .oserrors import reports_os_errors

PRESETS = {
    "small": dict(batch=64, src_len=20, tgt_len=20, emb=128, hidden=256, align=256, maxout=128,
                  vocab=8000),
    "paper": dict(batch=80, src_len=30, tgt_len=30, emb=620, hidden=1000, align=1000,
                  maxout=500, vocab=30000),
}


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
    code = ("from minirnnsearch.backend import get_backend; from minirnnsearch.bench import "
            "matmul_gflops; print(matmul_gflops(get_backend('cpu')))")
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


def torch_step(name: str, cfg: model.Config, host: Batch, params: dict[str, Array],
               lr: float) -> Callable[[], None]:
    """A training step (forward, backward, clipping to norm 1, Adam at ``lr``) of one PyTorch
    reference on ``host``, in float32: ``user`` (nn.GRU, nn.GRUCell, PyTorch's initialisation
    from ``torch.manual_seed(0)``) or ``paper_gru`` (the paper's GRU from torch ops, starting
    from ``params``)."""
    import torch

    from . import reference_torch

    if name == "user":
        torch.manual_seed(0)
        user = reference_torch.UserRNNsearch(cfg)
        src, tgt = torch.as_tensor(host.src), torch.as_tensor(host.tgt)
        src_mask, tgt_mask = torch.as_tensor(host.src_mask), torch.as_tensor(host.tgt_mask)
        weights = list(user.parameters())

        def loss_fn() -> Any:
            return user(src, src_mask, tgt, tgt_mask)
    else:
        paper = {k: torch.tensor(to_host(v), requires_grad=True) for k, v in params.items()}
        weights = list(paper.values())

        def loss_fn() -> Any:
            return reference_torch.paper_loss(paper, cfg, host)

    opt = torch.optim.Adam(weights, lr=lr)

    def step() -> None:
        opt.zero_grad()
        loss_fn().backward()
        torch.nn.utils.clip_grad_norm_(weights, 1.0)
        opt.step()

    return step


def _setup(args: argparse.Namespace, backend: Backend, variant: str
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


def _median_times(fs: list[Callable[[], Any]], warmup: int, repeats: int) -> list[float]:
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


def _median_time(f: Callable[[], Any], warmup: int, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``f`` after ``warmup`` untimed ones."""
    return _median_times([f], warmup, repeats)[0]


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
    setups = [_setup(args, backend, v) for v in args.variant]
    pairs = setups[0][1]
    batch = make_batch([s for s, _ in pairs], [t for _, t in pairs]).to(backend)
    steps = [our_step(cfg, p, opt, batch) for cfg, _, p, opt in setups]
    if args.profile:  # where the time of the first variant's steps goes
        ops, calls, gflop = profile(args, setups[0][0], setups[0][2], batch)
    step_s = _median_times(steps, args.warmup, args.steps)
    sgemm = peak(backend)
    results = [_result(args, backend, cfg, params, batch, t, sgemm)
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


SIDES = ("ours", "torch_user", "torch_paper_gru")  # --compare torch, in this order each round


def time_side(args: argparse.Namespace) -> dict:
    """The child process of one side of ``--compare torch``: the median seconds of ``--steps``
    training steps after ``--warmup``, with the threads it used and its peak memory."""
    backend = get_backend(args.device, quiet=True)
    cfg, pairs, params, opt = _setup(args, backend, args.variant[0])
    host = make_batch([s for s, _ in pairs], [t for _, t in pairs])
    if args.side == "ours":
        step = our_step(cfg, params, opt, host.to(backend))
        info: dict[str, Any] = dict(threads=blas.loaded()["threads"])
    else:
        import torch

        torch.set_num_threads(args.threads)
        step = torch_step(args.side.removeprefix("torch_"), cfg, host, params, opt.lr)
        info = dict(threads=torch.get_num_threads(), torch_version=torch.__version__)
    return dict(side=args.side, step_s=_median_time(step, args.warmup, args.steps),
                peak_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
                **info)


class SideError(RuntimeError):
    """A side's process of ``--compare torch`` failed; the message says which and why."""


def run_side(args: argparse.Namespace, side: str) -> dict:
    """``time_side`` for ``side`` in a fresh process (``python -m minirnnsearch.bench --side``)
    with ``args.threads`` threads: this code's BLAS, or PyTorch's pool (NumPy's BLAS gets 1)."""
    shapes = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in (
        "batch", "src_len", "tgt_len", "emb", "hidden", "align", "maxout", "vocab", "band",
        "steps", "warmup", "device", "threads")]
    cmd = [sys.executable, "-m", "minirnnsearch.bench", "--side", side,
           "--variant", args.variant[0], *shapes]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         env=blas.thread_env(args.threads, None if side == "ours" else 1))
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        why = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise SideError(f"--compare torch: the {side} process failed (status "
                        f"{out.returncode}): {why}")
    return json.loads(lines[-1])


def compare_torch(args: argparse.Namespace) -> dict:
    """``--compare torch``: ``--rounds`` rounds of one fresh process per side (``SIDES``), then
    this code's line of numbers with both sides' rounds, medians and ratios."""
    load_start = os.getloadavg()[0]
    rounds = [{side: run_side(args, side) for side in SIDES} for _ in range(args.rounds)]
    # ms rounded to the microsecond first; medians and ratios from the rounded values
    per_round = {side: [round(1000 * r[side]["step_s"], 3) for r in rounds] for side in SIDES}
    median_ms = {side: round(statistics.median(per_round[side]), 3) for side in SIDES}
    backend = get_backend(args.device)
    cfg, pairs, params, _ = _setup(args, backend, args.variant[0])
    batch = make_batch([s for s, _ in pairs], [t for _, t in pairs]).to(backend)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        sgemm = peak(backend, args.threads)
        result = _result(args, backend, cfg, params, batch, median_ms["ours"] / 1000, sgemm)
    B, T = args.batch, args.tgt_len
    result.update(
        load_avg=[round(load_start, 1), round(os.getloadavg()[0], 1)], threads=args.threads,
        processes="one fresh process per side and round",
        torch_version=rounds[0]["torch_user"]["torch_version"],
        torch_threads=rounds[0]["torch_user"]["threads"],
        ours_blas_threads=rounds[0]["ours"]["threads"], rounds=args.rounds,
        peak_rss_gb=max(r["ours"]["peak_rss_gb"] for r in rounds),
        ours_ms_per_round=per_round["ours"], ours_ms_per_step=median_ms["ours"])
    for side in SIDES[1:]:
        result.update({
            f"{side}_ms_per_round": per_round[side],
            f"{side}_ms_per_step": median_ms[side],
            f"{side}_target_tokens_per_s": round(B * T / (median_ms[side] / 1000), 1),
            f"{side}_peak_rss_gb": max(r[side]["peak_rss_gb"] for r in rounds),
            f"speedup_vs_{side}": round(median_ms[side] / median_ms["ours"], 3)})
    return result


def _result(args: argparse.Namespace, backend: Backend, cfg: model.Config, params: dict,
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


def run_ranks(args: argparse.Namespace) -> dict | None:
    """Training steps of one global batch shared by the ranks of this MPI job, as train.py
    runs them (each rank its share, the token-weighted all-reduce, clipping, Adam, the per-step
    stop agreement); with one rank, plain steps on the whole batch. Rank 0 returns the medians:
    ms per step, target tokens/s in total and per rank, and apart the all-reduce of the gradients
    and the stop agreement alone; other ranks return None."""
    group = distributed.init()
    backend = get_backend(args.device, quiet=True)
    cfg, pairs, params, opt = _setup(args, backend, args.variant[0])

    def step() -> None:
        loss, grads, _ = distributed.loss_and_grads(group, params, cfg, backend, pairs)
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads)
        to_host(loss)  # wait for the device
        group.agree_stop("")

    step_s = _median_time(step, args.warmup, args.steps)
    grads = {k: backend.xp.zeros_like(p) for k, p in params.items()}
    loss = grads["b_o"][0]
    reduce_s = _median_time(lambda: to_host(group.reduce(grads, loss, 1.0)), 2, 20)
    agree_s = _median_time(lambda: group.agree_stop(""), 10, 200)
    if not group.is_root:
        return None
    total = args.batch * args.tgt_len / step_s
    return dict(
        device=backend.name, ranks=group.size, threads=os.environ.get("OMP_NUM_THREADS"),
        variant=cfg.variant, batch=args.batch, src_len=args.src_len, tgt_len=args.tgt_len,
        emb=cfg.emb, hidden=cfg.hidden, align=cfg.align, maxout=cfg.maxout, vocab=args.vocab,
        steps=args.steps, ms_per_step=round(1000 * step_s, 1),
        target_tokens_per_s=round(total, 1),
        target_tokens_per_s_per_rank=round(total / group.size, 1),
        gradient_mb=round(sum(p.size * 4 for p in params.values()) / 2**20, 2),
        allreduce_ms=round(1000 * reduce_s, 2), agree_stop_us=round(1e6 * agree_s, 1))


def launch_ranks(args: argparse.Namespace, argv: list[str]) -> int:
    """Run this benchmark again as ``mpiexec -n RANKS`` (the mpiexec beside this Python, as the
    mpich wheel installs it) with OMP/OpenBLAS/MKL threads set to --threads in every rank."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        print(f"error: --ranks needs mpiexec beside {sys.executable}: pip install -e \".[mpi]\"",
              file=sys.stderr)
        return 2
    return subprocess.run([str(mpiexec), "-n", str(args.ranks), sys.executable, "-m",
                           "minirnnsearch.bench", *argv], env=blas.thread_env(args.threads)
                          ).returncode


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=tuple(PRESETS), default="small")
    for name in ("batch", "src-len", "tgt-len", "emb", "hidden", "align", "maxout"):
        ap.add_argument(f"--{name}", type=positive_int, help="overrides the preset")
    ap.add_argument("--vocab", type=vocab_size, help="overrides the preset")
    ap.add_argument("--variant", nargs="+", default=["rnnsearch"], choices=model.VARIANTS,
                    help="one or more; their training steps are interleaved, and with several "
                         "a last line gives each one's ms per step over the first's")
    ap.add_argument("--band", type=non_negative_int, default=0,
                    help="cursors: emissions within +-BAND of the diagonal (0: all positions)")
    ap.add_argument("--steps", type=positive_int, default=10, help="timed training steps")
    ap.add_argument("--warmup", type=non_negative_int, default=2, help="untimed steps first")
    ap.add_argument("--beam", type=beam_size, default=5)
    ap.add_argument("--decode-sentences", type=positive_int, default=32,
                    help="sentences decoded together (at most the batch)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    ap.add_argument("--ranks", type=positive_int,
                    help="time data-parallel training steps on this many MPI ranks (the global "
                         "batch shared among them); tokens/s in total and per rank")
    ap.add_argument("--threads", type=positive_int,
                    help="with --ranks: BLAS/OpenMP threads per rank (sets " +
                         ", ".join(blas.THREAD_VARIABLES) + "); with --compare torch: the "
                         "threads of each side (default: this process's BLAS threads, one per "
                         "core unless OPENBLAS_NUM_THREADS is set)")
    ap.add_argument("--compare", choices=("torch",),
                    help="also time the PyTorch references, each side in its own process "
                         "(pip install -e \".[compare]\")")
    ap.add_argument("--rounds", type=positive_int, default=3,
                    help="interleaved rounds with --compare")
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # a --compare child
    q = ap.add_argument_group(
        "quality at equal time (--compare torch --corpus DIR --minutes M, see quality.py): "
        "train.py's defaults except the sizes given here (--preset, --emb, --hidden, --align, "
        "--maxout, --batch, --vocab)")
    q.add_argument("--corpus", help="directory of train/dev/test files SPLIT.LANG")
    q.add_argument("--minutes", type=positive_float, help="wall time of each side's training")
    q.add_argument("--pair", help="SRC-TGT languages of --corpus's files (default: its two "
                                  "train files' languages, English first)")
    q.add_argument("--out", type=output_dir, default="runs/compare-torch",
                   help="where each side's run and test translations go (OUT/ours, OUT/torch)")
    q.add_argument("--max-steps", type=positive_int, help="stop each side after N updates")
    ap.add_argument("--profile", action="store_true",
                    help="first profile --steps steps of the first variant by op and kind of "
                         "work (NumPy only; a table on stderr), then time as usual")
    return ap


@reports_os_errors  # a full stdout: one line
def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    if args.side is not None:  # one side of --compare torch, in its own process
        for k, v in PRESETS[args.preset].items():
            if getattr(args, k) is None:
                setattr(args, k, v)
        print(json.dumps(time_side(args)))
        return 0
    if (args.corpus is None) != (args.minutes is None) or (
            args.corpus is not None and args.compare != "torch"):
        ap.error("--corpus and --minutes go together, with --compare torch")
    if args.compare == "torch":
        if len(args.variant) > 1 or args.ranks is not None or args.profile:
            ap.error("--compare torch times one --variant, without --ranks or --profile")
        if importlib.util.find_spec("torch") is None:  # not imported here: its own processes
            print("error: --compare torch needs PyTorch: pip install -e \".[compare]\"",
                  file=sys.stderr)
            return 2
        if args.threads is None:
            args.threads = blas.loaded()["threads"] or os.cpu_count() or 1
        if args.corpus is not None:  # sizes left unset: train.py's defaults
            from . import quality

            try:
                print(json.dumps(quality.compare(args)))
            except DataError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            return 0
    if args.profile and get_backend(args.device, quiet=True).name != "numpy":
        ap.error("--profile times NumPy calls: use --device cpu")
    print(blas.describe(), file=sys.stderr)
    for k, v in PRESETS[args.preset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.ranks is not None:
        if len(args.variant) > 1:
            ap.error("--ranks times one --variant at a time")
        if not any(v in os.environ for v in distributed.SIZE_VARIABLES):
            return launch_ranks(args, argv)  # and, inside mpiexec, the branch below
        result = run_ranks(args)
        if result is not None:
            print(json.dumps(result))
        return 0
    if args.compare == "torch":
        try:
            print(json.dumps(compare_torch(args)))
        except SideError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    results = run(args)
    for r in results:
        print(json.dumps(r), flush=True)
    if len(results) > 1:
        first = results[0]["ms_per_step"]
        print(json.dumps({"ms_per_step_over_" + results[0]["variant"]:
                          {r["variant"]: round(r["ms_per_step"] / first, 2) for r in results}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
