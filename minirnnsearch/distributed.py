"""Data-parallel training over MPI: every process (rank) holds the whole model, takes its share of
each global batch, and the gradients are summed across ranks before the one shared update.

    mpiexec -n K python train.py ...        # K ranks; without mpiexec (or K = 1) nothing changes

Notation: K ranks, r the rank, n_r the real target tokens of rank r's share of the global batch,
N = sum_r n_r. ``model.loss_and_grads`` returns the mean per token of its own share, g_r, so

    g = sum_r (n_r / N) g_r          the mean per token over the whole global batch

is exactly what one process computes on the whole batch (up to the order of float additions).
The loss rides in the same buffer, so a NaN on any rank reaches every rank in the same step.

Engines, chosen by the arrays: NumPy gradients go through MPI's Allreduce on the host buffer;
CuPy gradients go GPU to GPU through NCCL (``cupy.cuda.nccl``), whose communicator is set up once
with a unique id broadcast over MPI; each rank uses GPU (local rank mod GPUs per machine). Any
other array (array_api_strict in the tests, CuPy without NCCL) is copied to the host for MPI.
No machine of this project has a GPU: the NCCL path follows CuPy's documented API and is untested.

mpi4py is imported only when a launcher says there are several ranks (the size variables of
MPICH/Intel MPI, Open MPI, MVAPICH) or ``MINIRNNSEARCH_MPI=1`` asks for it, so a plain run never
touches MPI. Under MPI only rank 0 prints; Ctrl-C and SIGTERM (mpiexec forwards both to every
rank) set a flag that all ranks agree on after each step, so they stop at the same step. A rank
that fails (an exception, ``sys.exit``, rank 0 unable to write a checkpoint) ends every rank at
once with one line naming it; one killed outright is named by mpiexec, by its process id.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from . import model
from .backend import Array, Backend, _gpu_available, backend_of, namespace, to_device, to_host
from .data.batching import make_batch
from .oserrors import describe

T = TypeVar("T")

# Environment variables in which launchers give the number of processes, first match wins:
# MPICH's and Intel MPI's Hydra (and Slurm's srun with PMI), Open MPI, MVAPICH.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
FORCE_VARIABLE = "MINIRNNSEARCH_MPI"
# seconds a failing rank waits between its last line and MPI_Abort, for mpiexec to forward it
FORWARD_S = 1.0


class RankError(RuntimeError):
    """Something every rank learns together (a rank's bad input, ranks that disagree); one line."""


def launched_size(environ: dict[str, str] | None = None) -> int:
    """The number of processes the launcher started, from its environment; 1 without one."""
    env = os.environ if environ is None else environ
    for var in SIZE_VARIABLES:
        if var in env:
            return int(env[var])
    return 1


def share(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous share [a, z) of n items: sizes differ by at most one, earlier
    ranks get the larger shares, and a rank gets nothing when there are fewer items than ranks.
    Contiguous, because a batch comes sorted by length: each share stays tightly padded."""
    q, extra = divmod(n, size)
    a = rank * q + min(rank, extra)
    return a, a + q + (rank < extra)


def shard(items: Sequence[T], rank: int, size: int) -> Sequence[T]:
    """Rank ``rank``'s contiguous share of ``items`` (see ``share``)."""
    a, z = share(len(items), rank, size)
    return items[a:z]


def fingerprint(arrays: dict[str, Array], *extra: Any) -> str:
    """SHA-256 of the arrays (by name, bytes on the host) and of ``extra``: equal on two ranks
    exactly when they hold the same state."""
    h = hashlib.sha256(repr(extra).encode())
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(to_host(arrays[k])).tobytes())
    return h.hexdigest()


class Local:
    """One process: every method leaves things as they are, so training runs as it always did."""

    rank, size = 0, 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def reduce(self, grads: dict[str, Array], loss: Array, weight: float) -> Array:
        """Replace ``grads`` in place by sum_r weight_r grads_r and return sum_r weight_r loss_r
        (weight_r = n_r / N); one rank: weight 1, nothing to do."""
        return loss

    def agree_stop(self, stop: str) -> str:
        """The stop reason of rank 0 for every rank (after a KeyboardInterrupt on any rank, a
        KeyboardInterrupt on every rank)."""
        return stop

    def from_root(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (a small Python object, e.g. a learning rate that
        rank 0's validations decided)."""
        return value

    def together(self, setup: Callable[[], T], errors: tuple[type[Exception], ...]) -> T:
        """``setup()`` on every rank; if it raises one of ``errors`` on any rank, RankError on
        every rank (so no rank waits for one that gave up)."""
        return setup()

    def check_same(self, what: str, fingerprint: Callable[[], str]) -> None:
        """RankError on every rank unless ``fingerprint()`` is the same on all ranks (one rank:
        not even computed)."""

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Around the whole run: see ``MPIGroup.session``."""
        yield


class MPIGroup(Local):
    """K processes launched by mpiexec, talking through mpi4py (and NCCL for CuPy arrays)."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.signalled = False
        self._nccl: Any = None

    def reduce(self, grads: dict[str, Array], loss: Array, weight: float) -> Array:
        g0 = next(iter(grads.values()))
        xp = namespace(g0)
        flat = xp.concat([xp.reshape(g, (-1,)) for g in grads.values()]
                         + [xp.reshape(xp.astype(loss, g0.dtype), (1,))]) * weight   # (P+1,)
        flat = self._allreduce_sum(flat)
        a = 0
        for g in grads.values():
            g[...] = xp.reshape(flat[a : a + g.size], g.shape)
            a += g.size
        return flat[a]

    def _allreduce_sum(self, flat: Array) -> Array:
        from mpi4py import MPI

        if isinstance(flat, np.ndarray):
            self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
            return flat
        if backend_of(flat).name == "cupy" and self._nccl_comm() is not None:
            import cupy
            from cupy.cuda import nccl

            dtype = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}[str(flat.dtype)]
            self._nccl.allReduce(flat.data.ptr, flat.data.ptr, flat.size, dtype, nccl.NCCL_SUM,
                                 cupy.cuda.get_current_stream().ptr)
            return flat
        host = np.array(to_host(flat))  # a writable copy
        self.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        return to_device(host, backend_of(flat))

    def _nccl_comm(self) -> Any:
        """The NCCL communicator, created on first use (collective: every rank reduces the same
        step); None, said once, when CuPy has no NCCL (then the host path is taken)."""
        if self._nccl is None:
            from cupy.cuda import nccl
            from mpi4py import MPI

            ok = self.comm.allreduce(bool(nccl.available), op=MPI.LAND)
            if not ok:
                if self.is_root:
                    print("distributed: NCCL is not available to CuPy on every rank; gradients "
                          "go through MPI on host copies", file=sys.__stderr__)
                self._nccl = False
            else:
                uid = self.comm.bcast(nccl.get_unique_id() if self.is_root else None, root=0)
                self._nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        return self._nccl or None

    def _allreduce_max_politely(self, flags: np.ndarray) -> np.ndarray:
        """MAX over ranks of small host ``flags``, waiting with sleeps (10 us, doubling up to
        1 ms) rather than MPI's busy polling: ranks wait here while rank 0 validates, and must
        not take its cores."""
        from mpi4py import MPI

        req = self.comm.Iallreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
        pause = 1e-5
        while not req.Test():
            time.sleep(pause)
            pause = min(2 * pause, 1e-3)
        return flags

    def agree_stop(self, stop: str) -> str:
        flags = np.array([int(self.signalled), int(self.is_root and bool(stop))], dtype=np.int32)
        signalled, root_stops = self._allreduce_max_politely(flags)
        if signalled:
            raise KeyboardInterrupt
        return self.comm.bcast(stop, root=0) if root_stops else ""

    def from_root(self, value: T) -> T:
        return self.comm.bcast(value, root=0)

    def together(self, setup: Callable[[], T], errors: tuple[type[Exception], ...]) -> T:
        try:
            result, error = setup(), None
        except errors as e:
            result, error = None, describe(e) if isinstance(e, OSError) else str(e)
        failed = [(r, e) for r, e in enumerate(self.comm.allgather(error)) if e is not None]
        if failed:
            if len(failed) == self.size and len({e for _, e in failed}) == 1:
                raise RankError(failed[0][1])
            raise RankError("; ".join(f"rank {r}: {e}" for r, e in failed))
        return result  # type: ignore[return-value]

    def check_same(self, what: str, fingerprint: Callable[[], str]) -> None:
        fps = self.comm.allgather(fingerprint())
        differ = [r for r, f in enumerate(fps) if f != fps[0]]
        if differ:
            raise RankError(f"{what} of rank(s) {', '.join(map(str, differ))} differ from rank "
                            "0's")

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Ranks other than 0 print nothing (rank 0 speaks for all, and first names the ranks'
        process ids, which is how mpiexec names a rank killed outright). Ctrl-C and SIGTERM set
        a flag that ``agree_stop`` turns into a KeyboardInterrupt on every rank at the same
        step. Any other exception on one rank (the others would wait for it forever in the next
        collective), ``sys.exit`` included, ends every rank with MPI_Abort after one line naming
        the rank: a failure of the system (rank 0 cannot write a checkpoint: the disk is full)
        is that line alone (``oserrors.describe``), a bug has its traceback first. Checkpoints
        stay good, since they are only ever renamed into place once complete."""
        def flag(signum: int, frame: Any) -> None:
            self.signalled = True

        pids = self.comm.gather(os.getpid(), root=0)
        if self.is_root:
            print(f"distributed: {self.size} ranks, process ids "
                  f"{', '.join(f'{pid} (rank {r})' for r, pid in enumerate(pids))}",
                  file=sys.stderr)
        previous = {s: signal.signal(s, flag) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with contextlib.ExitStack() as quiet:
                if not self.is_root:
                    devnull = quiet.enter_context(open(os.devnull, "w"))
                    quiet.enter_context(contextlib.redirect_stdout(devnull))
                    quiet.enter_context(contextlib.redirect_stderr(devnull))
                yield
        except KeyboardInterrupt:  # every rank at once (agree_stop)
            raise
        except OSError as e:
            self._abort(describe(e))
        except BaseException as e:
            traceback.print_exc(file=sys.__stderr__)
            self._abort(f"{type(e).__name__}: {e}")
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _abort(self, why: str) -> None:
        """Say which rank failed and why, in one line, and end every rank (MPI_Abort, exit
        status 1). The rank's stdout and stderr are closed first, and the launcher given a
        moment (``FORWARD_S``) to pass on what they hold: mpiexec kills every rank as soon as it
        learns of the abort, and drops output it has not forwarded yet. MPI's own report of
        the abort goes nowhere."""
        print(f"error on rank {self.rank} of {self.size}: {why}; stopping every rank",
              file=sys.__stderr__, flush=True)
        with contextlib.suppress(OSError, ValueError):
            sys.__stdout__.flush()
            devnull = os.open(os.devnull, os.O_WRONLY)
            for stream in (sys.__stdout__, sys.__stderr__):
                os.dup2(devnull, stream.fileno())
        time.sleep(FORWARD_S)
        self.comm.Abort(1)


def _use_local_gpu(comm: Any) -> None:
    """Give each rank on a machine its own GPU (local rank mod GPUs), before any array exists."""
    if not _gpu_available():
        return
    import cupy
    from mpi4py import MPI

    local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    cupy.cuda.Device(local_rank % cupy.cuda.runtime.getDeviceCount()).use()


def init() -> Local:
    """The process group of this run: ``Local`` for a plain run, ``MPIGroup`` when launched by
    mpiexec with more than one process (or MINIRNNSEARCH_MPI=1). A launch with several processes
    but without mpi4py stops with one line rather than training K unconnected copies."""
    forced = os.environ.get(FORCE_VARIABLE) == "1"
    if launched_size() <= 1 and not forced:
        return Local()
    try:
        from mpi4py import MPI
    except ImportError:
        raise SystemExit(f"error: launched as {launched_size()} processes, but mpi4py is not "
                         "installed: pip install -e \".[mpi]\"") from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        return Local()
    _use_local_gpu(comm)
    return MPIGroup(comm)


def loss_and_grads(group: Local, params: dict[str, Array], cfg: model.Config, backend: Backend,
                   pairs: Sequence[tuple[list[int], list[int]]],
                   masks: model.Masks | None = None, label_smoothing: float = 0.0
                   ) -> tuple[Array, dict[str, Array], int]:
    """The loss and gradients of the global batch ``pairs`` (source ids, target ids), computed
    by ``group``'s ranks together: this rank's share through ``model.loss_and_grads``, then the
    token-weighted sum over ranks (see the module docstring). Returns (mean loss per token, a 0-d
    array on the device; gradients; N, the global batch's real target tokens). Every rank gets
    the same result; with one rank this is ``model.loss_and_grads`` on the whole batch. The
    dropout ``masks`` (one row per pair of the global batch) are shared out with the pairs;
    ``label_smoothing`` goes to every rank's loss."""
    whole = make_batch([s for s, _ in pairs], [t for _, t in pairs])
    if group.size == 1:
        loss, grads = model.loss_and_grads(params, cfg, whole.to(backend), masks,
                                           label_smoothing)
        return loss, grads, whole.n_tokens
    mine = shard(pairs, group.rank, group.size)
    if mine:
        b = make_batch([s for s, _ in mine], [t for _, t in mine])
        a, z = share(len(pairs), group.rank, group.size)
        my_masks = None if masks is None else model.Masks(*(m[a:z, ...] for m in masks))
        loss, grads = model.loss_and_grads(params, cfg, b.to(backend), my_masks,
                                           label_smoothing)
        n = b.n_tokens
    else:  # fewer pairs than ranks: this rank adds nothing
        xp = namespace(next(iter(params.values())))
        grads = {k: xp.zeros_like(p) for k, p in params.items()}
        loss, n = xp.zeros_like(grads["b_o"][0]), 0                      # () zero
    return group.reduce(grads, loss, n / whole.n_tokens), grads, whole.n_tokens
