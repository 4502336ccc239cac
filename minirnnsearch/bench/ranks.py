"""``--ranks K``: data-parallel training steps, one global batch shared by the ranks of an MPI
job as train.py runs them; the bench reruns itself under ``mpiexec -n K`` (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from .. import blas, distributed
from ..backend import get_backend, to_host
from ..optim import clip_grad_norm
from . import steps


def run_ranks(args: argparse.Namespace) -> dict | None:
    """Training steps of one global batch shared by the ranks of this MPI job, as train.py
    runs them (each rank its share, the token-weighted all-reduce, clipping, Adam, the per-step
    stop agreement); with one rank, plain steps on the whole batch. Rank 0 returns the medians:
    ms per step, target tokens/s in total and per rank, and apart the all-reduce of the gradients
    and the stop agreement alone; other ranks return None."""
    group = distributed.init()
    backend = get_backend(args.device, quiet=True)
    cfg, pairs, params, opt = steps.setup(args, backend, args.variant[0])

    def step() -> None:
        loss, grads, _ = distributed.loss_and_grads(group, params, cfg, backend, pairs)
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads)
        to_host(loss)  # wait for the device
        group.agree_stop("")

    step_s = steps.median_time(step, args.warmup, args.steps)
    grads = {k: backend.xp.zeros_like(p) for k, p in params.items()}
    loss = grads["b_o"][0]
    reduce_s = steps.median_time(lambda: to_host(group.reduce(grads, loss, 1.0)), 2, 20)
    agree_s = steps.median_time(lambda: group.agree_stop(""), 10, 200)
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
