"""Benchmark: training steps and beam decoding on random ids of fixed shapes.

    python -m minirnnsearch.bench --preset small        # B 64, S 20, T 20, E 128, H 256, V 8000
    python -m minirnnsearch.bench --preset paper        # B 80, S 30, T 30, E 620, H 1000, V 30000
    python -m minirnnsearch.bench --compare torch       # and PyTorch on the same shapes

Prints one JSON line: target tokens/s and ms per training step (forward, backward, clipping,
Adam; the median of the timed steps after a warm-up), beam-decoding sentences/s (T output tokens
each: </s> is switched off so every run does the same work), the peak resident
memory of the process, the model's FLOPs per step from the analytic count in ``train_flops``, the
achieved GFLOP/s, and the machine's own float32 matmul (sgemm) GFLOP/s measured in the same run:
with the BLAS kernel in use and, where that is not the best kernel the CPU supports
(``blas.best_kernel``), with the best one in a child process; the ratio is achieved / best.
It also prints the machine's 1-minute load average at the start and the end of the run: on a
shared machine, numbers are comparable only within one run.

``--compare torch`` also times the two PyTorch references of ``reference_torch`` (what a
PyTorch user writes, and the paper's GRU from torch ops) on the same batch, with Adam and
clipping as here: ``--rounds`` rounds (3), each timing ``--steps`` steps of this code and then
of each reference, and reports the medians over rounds and this code's speed-up over each
(the peak memory is then the process's, PyTorch's included).
"""

from __future__ import annotations

if __name__ == "__main__":  # before NumPy loads: OpenBLAS picks its kernel once, when it loads
    from minirnnsearch import blas as _blas

    _blas.init()

import argparse
import cProfile
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from . import blas, decode, model
from .backend import Array, Backend, get_backend, to_host
from .data.batching import Batch, make_batch
from .data.vocab import EOS_ID
from .optim import clip_grad_norm, make_optimizer

PRESETS = {
    "small": dict(batch=64, src_len=20, tgt_len=20, emb=128, hidden=256, align=256, maxout=128,
                  vocab=8000),
    "paper": dict(batch=80, src_len=30, tgt_len=30, emb=620, hidden=1000, align=1000,
                  maxout=500, vocab=30000),
}


def train_flops(cfg: model.Config, B: int, S: int, T: int) -> int:
    """Floating-point operations of one training step, counting the matrix products only
    (2 per multiply-add); elementwise work (gates, tanh, softmax) is left out.

    Forward, per sentence batch (rnnsearch; the other variants skip the attention terms):
      encoder, 2 directions:  input  2 S B E 3H          recurrent  S (2 B H 2H + 2 B H H)
      s_0:                    2 B H H                    keys U_a h_j: 2 B S 2H A
      decoder:                input  2 T B E 3H          context 2 T B 2H 3H
                              recurrent T (2 B H 2H + 2 B H H)
      attention, per step:    q = W_a s: 2 B H A         scores v_a: 2 B S A   context: 2 B S 2H
      deep output:            2 T B (H + E + 2H) 2L      softmax W_o: 2 T B L V
    Backward: every product y = x W has two of the same size (dx and dW): twice the forward.
    """
    E, H, A, L, V = cfg.emb, cfg.hidden, cfg.align, cfg.maxout, cfg.tgt_vocab
    gru = 2 * B * H * 2 * H + 2 * B * H * H                    # one recurrent step
    fwd = 2 * (2 * S * B * E * 3 * H + S * gru) + 2 * B * H * H
    fwd += 2 * T * B * E * 3 * H + T * gru
    if cfg.variant == "rnnsearch":
        fwd += 2 * B * S * 2 * H * A + 2 * T * B * 2 * H * 3 * H
        fwd += T * (2 * B * H * A + 2 * B * S * A + 2 * B * S * 2 * H)
    else:  # the context projection for all steps is one product
        fwd += 2 * T * B * 2 * H * 3 * H
        if cfg.variant == "diagonal":
            fwd += 2 * B * T * S * 2 * H
    fwd += 2 * T * B * (H + E + 2 * H) * 2 * L + 2 * T * B * L * V
    return 3 * fwd


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


def best_kernel_gflops(kernel: str) -> float | None:
    """``matmul_gflops`` on NumPy in a child process with ``OPENBLAS_CORETYPE=kernel`` (the
    kernel is chosen when NumPy loads, so it cannot change in this process); None if it fails."""
    code = ("from minirnnsearch.backend import get_backend; from minirnnsearch.bench import "
            "matmul_gflops; print(matmul_gflops(get_backend('cpu')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, blas.VARIABLE: kernel})
    return float(out.stdout) if out.returncode == 0 else None


def peak(backend: Backend) -> dict:
    """sgemm GFLOP/s with the BLAS kernel in use and with the best one this CPU supports."""
    mm = matmul_gflops(backend)
    if backend.name != "numpy":
        return dict(blas_kernel=None, matmul_gflops=round(mm, 1), best_kernel=None,
                    best_matmul_gflops=round(mm, 1))
    in_use = blas.loaded()["kernel"]
    best = blas.best_kernel(blas.cpu_flags())
    best_mm: float | None = mm
    if best is not None and str(in_use).lower() != best.lower():
        best_mm = best_kernel_gflops(best)
    else:
        best = in_use
    return dict(blas_kernel=in_use, matmul_gflops=round(mm, 1), best_kernel=best,
                best_matmul_gflops=None if best_mm is None else round(best_mm, 1))


def median_step(step: Callable[[], None], n: int) -> float:
    """The median wall time of ``n`` calls of ``step``, in seconds."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def torch_steps(cfg: model.Config, host: Batch, params: dict[str, Array],
                lr: float) -> dict[str, Callable[[], None]]:
    """Training steps (forward, backward, clipping to norm 1, Adam at ``lr``) of the two
    PyTorch references on the same batch, in float32: ``user`` (nn.GRU, nn.GRUCell) and
    ``paper_gru`` (the paper's GRU from torch ops, starting from ``params``)."""
    import torch

    from . import reference_torch

    user = reference_torch.UserRNNsearch(cfg)
    src, tgt = torch.as_tensor(host.src), torch.as_tensor(host.tgt)
    src_mask, tgt_mask = torch.as_tensor(host.src_mask), torch.as_tensor(host.tgt_mask)
    paper = {k: torch.tensor(to_host(v), requires_grad=True) for k, v in params.items()}
    steps = {}
    for name, weights, loss_fn in (
        ("user", list(user.parameters()), lambda: user(src, src_mask, tgt, tgt_mask)),
        ("paper_gru", list(paper.values()),
         lambda: reference_torch.paper_loss(paper, cfg, host)),
    ):
        opt = torch.optim.Adam(weights, lr=lr)

        def step(opt=opt, weights=weights, loss_fn=loss_fn) -> None:
            opt.zero_grad()
            loss_fn().backward()
            torch.nn.utils.clip_grad_norm_(weights, 1.0)
            opt.step()

        steps[name] = step
    return steps


def run(args: argparse.Namespace) -> dict:
    load_start = os.getloadavg()[0]  # the machine may be shared: its 1-minute load, start and end
    backend = get_backend(args.device)
    cfg = model.Config(src_vocab=args.vocab, tgt_vocab=args.vocab, variant=args.variant,
                       emb=args.emb, hidden=args.hidden, align=args.align, maxout=args.maxout)
    rng = np.random.default_rng(0)
    B, S, T = args.batch, args.src_len, args.tgt_len
    # lengths S and T with </s>: S-1 and T-1 random words
    host = make_batch([list(rng.integers(4, args.vocab, S - 1)) for _ in range(B)],
                      [list(rng.integers(4, args.vocab, T - 1)) for _ in range(B)])
    batch = host.to(backend)
    params = model.init_params(cfg, backend, seed=0)
    opt = make_optimizer("adam", params)
    others = torch_steps(cfg, host, params, opt.lr) if args.compare == "torch" else {}

    def step() -> None:
        loss, grads = model.loss_and_grads(params, cfg, batch)
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads)
        to_host(loss)  # wait for the device

    for _ in range(args.warmup):
        step()
        for other in others.values():
            other()
    if args.profile:  # where the time of this code's steps goes, on stderr
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [step() for _ in range(args.steps)])
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    rounds: dict[str, list[float]] = {"ours": [], **{k: [] for k in others}}
    for _ in range(args.rounds if others else 1):  # interleaved: each round times all of them
        rounds["ours"].append(median_step(step, args.steps))
        for name, other in others.items():
            rounds[name].append(median_step(other, args.steps))
    step_s = statistics.median(rounds["ours"])

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
    sgemm = peak(backend)
    achieved = flops / step_s / 1e9
    best = sgemm["best_matmul_gflops"]
    result = dict(
        device=backend.name, variant=cfg.variant, batch=B, src_len=S, tgt_len=T, emb=cfg.emb,
        hidden=cfg.hidden, align=cfg.align, maxout=cfg.maxout, vocab=args.vocab,
        steps=args.steps, ms_per_step=round(1000 * step_s, 1),
        target_tokens_per_s=round(B * T / step_s, 1),
        decode_sentences_per_s=round(n_dec / decode_s, 2), beam=args.beam,
        peak_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        gflop_per_step=round(flops / 1e9, 2), achieved_gflops=round(achieved, 1), **sgemm,
        ratio=None if best is None else round(achieved / best, 3),
        load_avg=[round(load_start, 1), round(os.getloadavg()[0], 1)])
    if others:
        import torch

        result.update(torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
                      rounds=args.rounds,
                      ours_ms_per_round=[round(1000 * t, 1) for t in rounds["ours"]])
        for name in others:
            other_s = statistics.median(rounds[name])
            result.update({
                f"torch_{name}_ms_per_round": [round(1000 * t, 1) for t in rounds[name]],
                f"torch_{name}_ms_per_step": round(1000 * other_s, 1),
                f"torch_{name}_target_tokens_per_s": round(B * T / other_s, 1),
                f"speedup_vs_torch_{name}": round(other_s / step_s, 2)})
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=tuple(PRESETS), default="small")
    for name in ("batch", "src-len", "tgt-len", "emb", "hidden", "align", "maxout", "vocab"):
        ap.add_argument(f"--{name}", type=int, help="overrides the preset")
    ap.add_argument("--variant", default="rnnsearch", choices=model.VARIANTS)
    ap.add_argument("--steps", type=int, default=10, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--decode-sentences", type=int, default=32,
                    help="sentences decoded together (at most the batch)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    ap.add_argument("--compare", choices=("torch",),
                    help="also time the PyTorch references (pip install -e \".[compare]\")")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds with --compare")
    ap.add_argument("--profile", action="store_true",
                    help="first profile --steps steps (cProfile, on stderr), then time as usual")
    args = ap.parse_args(argv)
    if args.compare == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            print("error: --compare torch needs PyTorch: pip install -e \".[compare]\"",
                  file=sys.stderr)
            return 2
    print(blas.describe(), file=sys.stderr)
    for k, v in PRESETS[args.preset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
