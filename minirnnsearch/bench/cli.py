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
import sys

from .. import blas, distributed, model
from ..backend import get_backend
from ..cli import (
    beam_size,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
)
from ..data.io import DataError
from ..data.vocab import vocab_size
from ..oserrors import reports_os_errors
from . import against_torch, ranks, steps

PRESETS = {
    "small": dict(batch=64, src_len=20, tgt_len=20, emb=128, hidden=256, align=256, maxout=128,
                  vocab=8000),
    "paper": dict(batch=80, src_len=30, tgt_len=30, emb=620, hidden=1000, align=1000,
                  maxout=500, vocab=30000),
}


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
    # one side of --compare torch, in the child process that times it
    ap.add_argument("--side", choices=against_torch.SIDES, help=argparse.SUPPRESS)
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
        print(json.dumps(against_torch.time_side(args)))
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
            return ranks.launch_ranks(args, argv)  # and, inside mpiexec, the branch below
        result = ranks.run_ranks(args)
        if result is not None:
            print(json.dumps(result))
        return 0
    if args.compare == "torch":
        try:
            print(json.dumps(against_torch.compare_torch(args)))
        except against_torch.SideError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    results = steps.run(args)
    for r in results:
        print(json.dumps(r), flush=True)
    if len(results) > 1:
        first = results[0]["ms_per_step"]
        print(json.dumps({"ms_per_step_over_" + results[0]["variant"]:
                          {r["variant"]: round(r["ms_per_step"] / first, 2) for r in results}}))
    return 0

