"""The fastest BLAS kernel the CPU supports, chosen before NumPy loads.

NumPy's bundled OpenBLAS picks its kernels ("Haswell", "SkylakeX", ...) once, when it loads,
from its own CPU detection; on some processors that detection picks a slower kernel than the
CPU can run. ``choose_kernel`` reads the CPU's instruction-set flags and sets
``OPENBLAS_CORETYPE`` to the best kernel those flags support, never to one they do not (an
AVX-512 kernel on a CPU without AVX-512 dies with an illegal instruction: OpenBLAS does not check
a forced kernel), and never over a value the user has set. It only works if it runs before NumPy
is imported, so this module does not import NumPy, and importing the package calls ``init``
first (``minirnnsearch/__init__.py``), before any of its modules loads NumPy. ``describe`` then
says, once, what BLAS loaded (read with threadpoolctl).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import NamedTuple

VARIABLE = "OPENBLAS_CORETYPE"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# OpenBLAS x86-64 kernels, best first, with the CPU flags (as /proc/cpuinfo names them) that
# each one's code uses. Later Intel kernels (Cooperlake, SapphireRapids) add bfloat16 routines
# only; their float32 sgemm is the SkylakeX one, so the list stops there.
KERNELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("SkylakeX", frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl",
                            "avx2", "fma"})),
    ("Haswell", frozenset({"avx2", "fma"})),
    ("Sandybridge", frozenset({"avx"})),
)


class Choice(NamedTuple):
    """What ``choose_kernel`` did: the kernel OpenBLAS is told to use (None: its own detection)
    and why."""

    kernel: str | None
    reason: str


_choice = Choice(None, "OpenBLAS's own detection")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU in ``cpuinfo`` (Linux); empty if unreadable."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def best_kernel(flags: Iterable[str]) -> str | None:
    """The best OpenBLAS kernel whose required flags are all in ``flags``; None if none is
    (then OpenBLAS's own detection is left alone)."""
    have = set(flags)
    for name, needs in KERNELS:
        if needs <= have:
            return name
    return None


def choose_kernel(
    environ: MutableMapping[str, str], flags: Iterable[str], numpy_loaded: bool = False
) -> Choice:
    """Set ``OPENBLAS_CORETYPE`` in ``environ`` to ``best_kernel(flags)`` unless it is already
    set, even to an empty string (a user's or the machine's setting is kept), or NumPy is already
    loaded (then the variable would change nothing here, only in child processes)."""
    if VARIABLE in environ:
        return Choice(environ[VARIABLE] or None, f"{VARIABLE} set before start-up, kept")
    if numpy_loaded:
        return Choice(None, "NumPy was loaded first: OpenBLAS's own detection")
    kernel = best_kernel(flags)
    if kernel is None:
        return Choice(None, "no known kernel for this CPU's flags: OpenBLAS's own detection")
    environ[VARIABLE] = kernel
    return Choice(kernel, "the best kernel this CPU's flags support")


def thread_env(threads: int | None, blas_threads: int | None = None) -> dict[str, str]:
    """This process's environment for a child process, with the OpenMP, OpenBLAS and MKL
    threads (``THREAD_VARIABLES``) set to ``threads`` (None: as they are), and OpenBLAS's alone
    to ``blas_threads`` when given (a PyTorch child whose NumPy only makes batches: 1)."""
    env = dict(os.environ)
    if threads is not None:
        env.update({v: str(threads) for v in THREAD_VARIABLES})
    if blas_threads is not None:
        env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    return env


def init() -> Choice:
    """The package's first call, on import, before anything of it imports NumPy:
    ``choose_kernel`` on this process's environment and CPU, remembered for ``describe``."""
    global _choice
    _choice = choose_kernel(os.environ, cpu_flags(), "numpy" in sys.modules)
    return _choice


def loaded() -> dict[str, str | int | None]:
    """What BLAS NumPy loaded (threadpoolctl): library, version, kernel, threads."""
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl reads)
    from threadpoolctl import threadpool_info

    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return dict(library=lib.get("internal_api"), version=lib.get("version"),
                        kernel=lib.get("architecture"), threads=lib.get("num_threads"))
    return dict(library=None, version=None, kernel=None, threads=None)


def describe() -> str:
    """One line for start-up: the BLAS library, its kernel, threads, and why that kernel."""
    info = loaded()
    if info["library"] is None:
        return "BLAS: none found by threadpoolctl"
    return (f"BLAS: {info['library']} {info['version']}, kernel {info['kernel']}, "
            f"{info['threads']} threads ({_choice.reason})")
