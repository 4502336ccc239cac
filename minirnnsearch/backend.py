"""The array namespace ``xp`` and the device, and the few operations the Array API lacks.

All model code is written once against the Array API standard and finds its namespace from its
arguments (``namespace(x)``), so the same lines run on

- NumPy on the CPU,
- CuPy on one GPU (imported lazily, only when asked for or when ``auto`` finds a GPU),
- array_api_strict on its simulated device ``device1`` in the tests: it refuses NumPy-only
  functions, implicit conversion to NumPy and mixing arrays of two devices, which are exactly
  the mistakes CuPy punishes.

What the standard lacks lives here, one function each with one branch per backend:
``scatter_add`` (embedding gradients), ``add_at_columns`` (the softmax gradient's -1 at each
target), ``topk`` (beam search), ``apply_inplace`` (an elementwise function written into its
argument, where the standard has no ``out=``), ``to_device`` / ``to_host`` (moving arrays),
and random numbers made on the host with NumPy and moved once: initialisation
(``Backend.asarray``) and dropout masks (``dropout_mask``), so every backend sees the same
numbers for the same seed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

Array = Any  # an array of whichever namespace is in use


class DeviceError(RuntimeError):
    """The requested device cannot be used (for example ``--device gpu`` without a GPU)."""


@dataclass(frozen=True)
class Backend:
    """An array namespace and the device its arrays live on."""

    name: str  # "numpy" | "cupy" | "strict"
    xp: ModuleType
    device: Any

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """Move a host (NumPy) array or nested list to this backend's device, one copy."""
        return to_device(a, self, dtype)

    def dtype(self, name: str) -> Any:
        """The namespace's dtype called ``name`` ("float32", "float64", "int64", ...)."""
        return getattr(self.xp, name)


def namespace(x: Array) -> ModuleType:
    """The Array API namespace of ``x``: numpy, array_api_strict, or for CuPy arrays
    array_api_compat's ``cupy`` wrapper, which gives CuPy's functions the standard's signatures
    (``device=`` on creation functions and the like)."""
    xp = x.__array_namespace__()
    if xp.__name__ == "cupy":
        from array_api_compat import cupy as xp
    return xp


def _kind(xp: ModuleType) -> str:
    """numpy, cupy or strict: which implementation a backend-specific function takes."""
    return {"numpy": "numpy", "array_api_compat.cupy": "cupy", "cupy": "cupy"}.get(
        xp.__name__, "strict")


def _gpu_available() -> bool:
    try:
        import cupy
    except ImportError:
        return False
    # is_available() returns False without a GPU and never raises (CuPy 14).
    return bool(cupy.is_available())


def get_backend(device: str = "auto", *, quiet: bool = False) -> Backend:
    """Pick the backend for ``device``: ``auto``, ``cpu``, ``gpu`` or ``strict`` (tests).

    ``auto`` takes the GPU through CuPy when one is there and otherwise falls back to NumPy,
    saying so in one line on stderr (unless ``quiet``). ``gpu`` without a usable GPU raises
    :class:`DeviceError` with the reason.
    """
    if device == "cpu":
        return Backend("numpy", np, "cpu")
    if device == "strict":
        import array_api_strict

        return Backend("strict", array_api_strict, array_api_strict.Device("device1"))
    if device in ("gpu", "auto"):
        if _gpu_available():
            import cupy
            from array_api_compat import cupy as xp

            return Backend("cupy", xp, cupy.cuda.Device())
        if device == "gpu":
            try:
                import cupy  # noqa: F401
            except ImportError:
                raise DeviceError(
                    "--device gpu: CuPy is not installed; install it with "
                    "pip install -e \".[gpu]\" (CUDA 12) or use --device cpu"
                ) from None
            raise DeviceError("--device gpu: CuPy found no usable CUDA GPU; use --device cpu")
        if not quiet:
            print("device auto: no GPU found, falling back to NumPy on the CPU", file=sys.stderr)
        return Backend("numpy", np, "cpu")
    raise DeviceError(f"unknown device {device!r}: choose auto, cpu or gpu")


def to_device(a: Any, backend: Backend, dtype: Any = None) -> Array:
    """Copy host data ``a`` (NumPy array, list, scalar) to ``backend``'s device."""
    if isinstance(dtype, str):
        dtype = backend.dtype(dtype)
    if backend.name == "numpy":
        return np.asarray(a, dtype=dtype)
    if backend.name == "strict":
        return backend.xp.asarray(np.asarray(a), dtype=dtype, device=backend.device)
    return backend.xp.asarray(a, dtype=dtype)


def dropout_mask(backend: Backend, shape: tuple[int, ...], p: float, rng: np.random.Generator,
                 dtype: Any = "float32") -> Array:
    """An inverted-dropout mask on ``backend``'s device: each entry 1/(1-p) with probability
    1-p, else 0 (so its mean is 1 and a model that never drops needs no rescaling). Drawn on
    the host from ``rng`` and moved once: the Array API standard has no random numbers."""
    keep = rng.random(shape) >= p
    return backend.asarray(keep * (1.0 / (1.0 - p)), dtype=dtype)


def to_host(x: Array) -> np.ndarray:
    """Copy an array of any backend to a NumPy array on the host (waits for the GPU)."""
    if isinstance(x, np.ndarray):
        return x
    xp = namespace(x)
    name = _kind(xp)
    if name == "cupy":
        import cupy

        return cupy.asnumpy(x)
    if name == "strict":
        return np.asarray(x.to_device(xp.Device("CPU_DEVICE")))
    return np.asarray(x)


def scatter_add(a: Array, idx: Array, v: Array) -> Array:
    """``a[idx[k]] += v[k]`` for every k, repeated indices summed; returns ``a``.

    a (V,D), idx (N,) integer, v (N,D). Used for embedding gradients. ``a[idx] += v`` would
    silently keep only one of each repeated index on every backend, so it is never used.
    """
    xp = namespace(a)
    name = _kind(xp)
    if name == "numpy":
        np.add.at(a, idx, v)
        return a
    if name == "cupy":
        import cupy

        cupy.add.at(a, idx, v)  # atomic adds on the GPU
        return a
    # Array API standard only: a one-hot (N,V) matrix, so dE = onehot^T @ v.
    vocab = a.shape[0]
    onehot = xp.astype(
        idx[:, None] == xp.arange(vocab, dtype=idx.dtype, device=a.device)[None, :], v.dtype
    )
    a += onehot.T @ v
    return a


def add_at_columns(a: Array, cols: Array, v: Array) -> Array:
    """``a[n, cols[n]] += v[n]`` for every row n; returns ``a`` (updated in place where the
    backend can). a (N,V), cols (N,) integer, v (N,). One column per row, so no index repeats."""
    xp = namespace(a)
    if _kind(xp) != "strict":
        a[xp.arange(a.shape[0], device=a.device), cols] += v
        return a
    onehot = cols[:, None] == xp.arange(a.shape[1], dtype=cols.dtype, device=a.device)[None, :]
    return a + xp.where(onehot, v[:, None], xp.zeros_like(a))


def apply_inplace(f: Any, x: Array) -> Array:
    """``f(x)`` for an elementwise function of the namespace (``xp.exp``, ``xp.tanh``), written
    into ``x`` itself on NumPy (``f(x, out=x)``: no fresh (N,V) array to allocate and fault
    in); the reference, a fresh ``f(x)``, everywhere else (the standard has no ``out=``).
    Returns the result: callers use it and treat ``x`` as consumed."""
    if _kind(namespace(x)) == "numpy":
        return f(x, out=x)
    return f(x)


def backend_of(x: Array) -> Backend:
    """The backend an array lives on (to make more arrays beside it)."""
    xp = namespace(x)
    return Backend(_kind(xp), xp, x.device)


def topk(x: Array, k: int) -> tuple[Array, Array]:
    """The k largest entries of each row of x (N,M), largest first: values (N,k), indices (N,k).
    The standard has no top-k; NumPy and CuPy use a partial sort, others a full argsort."""
    xp = namespace(x)
    k = min(k, x.shape[1])
    if _kind(xp) != "strict":
        if _kind(xp) == "numpy":
            lib = np
        else:
            import cupy as lib
        part = lib.argpartition(-x, k - 1, axis=1)[:, :k]               # (N,k) unordered
        vals = lib.take_along_axis(x, part, axis=1)
        order = lib.argsort(-vals, axis=1)                              # k entries: cheap
        return lib.take_along_axis(vals, order, axis=1), lib.take_along_axis(part, order, axis=1)
    idx = xp.argsort(x, axis=1, descending=True, stable=True)[:, :k]    # (N,k)
    return xp.take_along_axis(x, idx, axis=1), idx
