"""Run under ``mpiexec -n K`` by tests/test_distributed.py: one rank of a data-parallel job.

    python tests/mpi_worker.py train|fail|exit|kill|full|nan|sigterm|differ RANK CALL -- ARGS
    python tests/mpi_worker.py grads64 OUT_DIR

``train`` runs train.py (with ARGS) as it is; ``fail``, ``exit``, ``kill``, ``full``, ``nan`` and
``sigterm`` make rank RANK raise an exception, call ``sys.exit(3)``, send itself SIGKILL, lose
the room to write a file of more than 1000 bytes (RLIMIT_FSIZE: its next checkpoint fails with
EFBIG, as on a full disk), return a NaN loss, or send itself SIGTERM at its CALL-th gradient
computation; ``differ`` starts rank RANK from other parameters. ``grads64`` writes each rank's
float64 loss and gradients of two fixed global batches (one smaller than K), on NumPy and on
array_api_strict, to OUT_DIR/cpu<r>.npz and OUT_DIR/strict<r>.npz.
"""

import os
import resource
import signal
import sys

import numpy as np
from helpers import grads64_batches, grads64_config
from mpi4py import MPI

from minirnnsearch import distributed, model, training
from minirnnsearch.backend import get_backend, to_host

RANK = MPI.COMM_WORLD.Get_rank()


def grads64(out: str) -> None:
    group = distributed.init()
    for device in ("cpu", "strict"):  # strict: the path through host copies, Array API only
        backend = get_backend(device)
        params = model.init_params(grads64_config(), backend, seed=3, dtype="float64")
        arrays = {}
        for i, pairs in enumerate(grads64_batches()):
            loss, grads, n = distributed.loss_and_grads(group, params, grads64_config(), backend,
                                                        pairs)
            arrays.update({f"{i}/loss": to_host(loss), f"{i}/n": n},
                          **{f"{i}/{k}": to_host(g) for k, g in grads.items()})
        np.savez(os.path.join(out, f"{device}{group.rank}.npz"), **arrays)


def inject(mode: str, rank: int, call: int) -> None:
    if RANK != rank:
        return
    if mode == "differ":
        real_init = model.init_params

        def other_init(cfg, backend, seed=0, dtype="float32"):
            return real_init(cfg, backend, seed + 1, dtype)

        model.init_params = other_init
        return
    real, calls = model.loss_and_grads, []

    def faulty(params, cfg, batch, masks=None, label_smoothing=0.0):
        calls.append(1)
        loss, grads = real(params, cfg, batch, masks, label_smoothing)
        if len(calls) >= call and mode == "nan":
            return loss * float("nan"), grads
        if len(calls) == call and mode == "fail":
            raise RuntimeError("injected failure")
        if len(calls) == call and mode == "exit":
            sys.exit(3)
        if len(calls) == call and mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if len(calls) == call and mode == "full":
            resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
        if len(calls) == call and mode == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        return loss, grads

    model.loss_and_grads = faulty


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "grads64":
        grads64(sys.argv[2])
        sys.exit(0)
    if mode != "train":
        inject(mode, int(sys.argv[2]), int(sys.argv[3]))
    sys.exit(training.main(sys.argv[sys.argv.index("--") + 1 :]))
