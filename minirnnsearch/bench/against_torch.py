"""``--compare torch``: training steps of this code and of the two PyTorch references of
``reference_torch`` (``torch_user``, ``torch_paper_gru``) on the same batch, each side in its own
fresh process, in interleaved rounds; one JSON line with the rounds, the medians and the ratios
(``cli.py``'s help says why processes, and which threads each side gets).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from threadpoolctl import threadpool_limits

from .. import blas, model
from ..backend import Array, get_backend, to_host
from ..data.batching import Batch, make_batch
from . import steps

SIDES = ("ours", "torch_user", "torch_paper_gru")  # --compare torch, in this order each round


def torch_step(name: str, cfg: model.Config, host: Batch, params: dict[str, Array],
               lr: float) -> Callable[[], None]:
    """A training step (forward, backward, clipping to norm 1, Adam at ``lr``) of one PyTorch
    reference on ``host``, in float32: ``user`` (nn.GRU, nn.GRUCell, PyTorch's initialisation
    from ``torch.manual_seed(0)``) or ``paper_gru`` (the paper's GRU from torch ops, starting
    from ``params``)."""
    import torch

    from .. import reference_torch

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


def time_side(args: argparse.Namespace) -> dict:
    """The child process of one side of ``--compare torch``: the median seconds of ``--steps``
    training steps after ``--warmup``, with the threads it used and its peak memory."""
    backend = get_backend(args.device, quiet=True)
    cfg, pairs, params, opt = steps.setup(args, backend, args.variant[0])
    host = make_batch([s for s, _ in pairs], [t for _, t in pairs])
    if args.side == "ours":
        step = steps.our_step(cfg, params, opt, host.to(backend))
        info: dict[str, Any] = dict(threads=blas.loaded()["threads"])
    else:
        import torch

        torch.set_num_threads(args.threads)
        step = torch_step(args.side.removeprefix("torch_"), cfg, host, params, opt.lr)
        info = dict(threads=torch.get_num_threads(), torch_version=torch.__version__)
    return dict(side=args.side, step_s=steps.median_time(step, args.warmup, args.steps),
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
    cfg, pairs, params, _ = steps.setup(args, backend, args.variant[0])
    batch = make_batch([s for s, _ in pairs], [t for _, t in pairs]).to(backend)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        sgemm = steps.peak(backend, args.threads)
        result = steps.result_line(args, backend, cfg, params, batch,
                                   median_ms["ours"] / 1000, sgemm)
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
