"""Where a training step's time goes on NumPy: by operation and by kind of work.

    python -m minirnnsearch.bench --preset small --profile --steps 5

prints on stderr one table of milliseconds per step, a row per *op* and a column per *kind*:

- an op is the innermost function of this package that made the NumPy call (``nn/``'s
  ``gru_step_forward``, ``attention_step_backward``, ``softmax_xent_forward``, ``maxout_*``,
  ``embedding_*``, the model's functions that hold the products before and after the loops,
  ``Adam._update``, ``clip_grad_norm``, ...); ``backend.py``'s helpers count in their caller
  (``scatter_add`` in ``embedding_backward``);
- the kinds: matrix products (``@``, matmul, tensordot, ...), transcendental functions (exp,
  log, tanh, power and their kin), other elementwise work (+ - * /, sqrt, maximum, where,
  comparisons), reductions (sum, max, argmax, ...), copies (indexing, concatenation, stacking,
  astype, scatter-add, and views such as reshape, which cost next to nothing), and Python: the
  time between NumPy calls, spent in the interpreter (the model's own lines, function calls)
  and in the little NumPy work this profiler cannot see (array creation such as ``xp.empty``,
  writes into arrays made that way).

How it measures. cProfile cannot see this work: NumPy's ufuncs (tanh, exp, +) and the ``@``
operator are not C functions in the profiler's sense, so their time lands in the calling
function's own time without a name, and ``{built-in method numpy...concatenate}`` times only
the dispatch stub. A proxy of the ``xp`` namespace would miss every operator (``a @ b``,
``a * b``). So the step runs on ``Timed`` arrays, an ``np.ndarray`` subclass that uses NumPy's
own override protocols: every ufunc call and operator (``__array_ufunc__``, NEP 13: ``@`` is the
matmul ufunc), every NumPy function (``__array_function__``, NEP 18) and every indexing
(``__getitem__``/``__setitem__``) on them is timed around the plain NumPy call on plain
arrays, classified, and charged to the op found on the call stack; a call's window includes
NumPy's own per-call work (parsing arguments, choosing the loop, allocating the result), so the
Python column is the interpreter's alone. Results of Timed arrays are
Timed, so parameters, batch and optimiser state made Timed once keep the whole step traced; the
model's code is the same, and the numbers computed are the same.

The profiler's own cost is kept out: its bookkeeping falls outside both the NumPy windows and
the gaps, and what remains in the gaps (Python's call into the override method, the views
unwrapped and wrapped) is measured per call on tiny arrays at the start (``calibrate``) and
subtracted, per op and kind of call, from the Python column. What is left is an estimate; the
bench prints the sum of the table beside the same step timed without the profiler, so the
reader sees how well the two agree. At the presets' shapes, where a NumPy call takes tens of
microseconds or more, they should be close; at tiny test shapes, where a call takes a
microsecond or two, the profiler's own cost is of the same size and the table overstates the
step several times over. On a busy machine the time the process spends descheduled lands in
whatever window or gap is open: profile alone, as for any timing.
"""

from __future__ import annotations

import functools
import math
import sys
import time
import types
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

KINDS = ("products", "transcendental", "elementwise", "reductions", "copies", "python")

_PRODUCTS = {"matmul", "vecdot", "matvec", "vecmat", "dot", "vdot", "inner", "outer",
             "tensordot", "einsum", "kron"}
_TRANSCENDENTAL = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logaddexp",
                   "logaddexp2", "tanh", "sinh", "cosh", "arctanh", "arcsinh", "arccosh", "sin",
                   "cos", "tan", "arctan", "arctan2", "arcsin", "arccos", "power", "float_power"}
_REDUCTIONS = {"sum", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "mean", "std",
               "var", "cumsum", "cumprod", "cumulative_sum", "cumulative_prod", "any", "all",
               "count_nonzero", "nansum", "nanmax", "nanmin"}
_ELEMENTWISE = {"where", "clip"}
# creation functions, which take no array to dispatch on: the namespace of a Timed array
# (``Timed.__array_namespace__``, what ``backend.namespace`` returns) gives Timed results
_CREATION = ("empty", "zeros", "ones", "full", "arange", "eye", "linspace", "asarray")
# charged to their caller: backend.py's helpers, and the bench's own modules (this one too)
_SKIPPED = ("minirnnsearch.backend", "minirnnsearch.bench.")
_ENTRIES = ("ufunc", "function", "index", "create")  # the ways in, each calibrated


def ufunc_kind(name: str, method: str) -> str:
    """The kind of ``np.<name>.<method>(...)`` (method "__call__" for a plain call)."""
    if method in ("reduce", "accumulate", "reduceat"):
        return "reductions"
    if method == "at":
        return "copies"  # np.add.at, the embedding gradient's scatter-add
    if name in _PRODUCTS:
        return "products"
    return "transcendental" if name in _TRANSCENDENTAL else "elementwise"


def matmul_flops(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Floating-point operations of ``x @ y`` for x of shape ``a``, y of shape ``b`` (2 per
    multiply-add, broadcast batch dimensions included; a 1-D operand as NumPy treats it)."""
    a = a if len(a) > 1 else (1, *a)
    b = b if len(b) > 1 else (*b, 1)
    return 2 * math.prod(np.broadcast_shapes(a[:-2], b[:-2])) * a[-2] * a[-1] * b[-1]


def function_kind(func: Callable) -> str:
    """The kind of a NumPy function that is not a ufunc (concat, sum, tensordot, ...)."""
    name = func.__name__
    if name in _PRODUCTS or getattr(func, "__module__", "").startswith("numpy.linalg"):
        return "products"
    if name in _REDUCTIONS:
        return "reductions"
    return "elementwise" if name in _ELEMENTWISE else "copies"


class Recorder:
    """Seconds and calls per (op, kind), and the Python gaps between NumPy calls per op."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.entries: dict[tuple[str, str], int] = defaultdict(int)  # (op, entry) -> calls
        self.flops: dict[str, int] = defaultdict(int)  # op -> FLOPs of its matmul calls
        self.last = time.perf_counter()  # when the previous NumPy call ended
        self._labels: dict[Any, str | None] = {}

    def label(self, frame: Any) -> str:
        """The op of a call made from ``frame``: its innermost named function in this package
        outside the skipped modules, as ``module.qualname`` without the package's name."""
        first = frame.f_code
        if first in self._labels and self._labels[first] is not None:
            return self._labels[first]  # called straight from an op: the same op every time
        while frame is not None:
            code = frame.f_code
            if code not in self._labels:
                module = frame.f_globals.get("__name__", "")
                own = (module.startswith("minirnnsearch.") and not module.startswith(_SKIPPED)
                       and not code.co_name.startswith("<"))
                name = getattr(code, "co_qualname", code.co_name)
                self._labels[code] = f"{module.removeprefix('minirnnsearch.')}.{name}" if own \
                    else None
            if self._labels[code] is not None:
                return self._labels[code]
            frame = frame.f_back
        return "(outside this package)"

    def record(self, entry: str, kind: str, start: float, t0: float, t1: float,
               flops: int = 0, depth: int = 2) -> None:
        """One NumPy call entered at ``start``, running from ``t0`` to ``t1``, doing ``flops``
        FLOPs in matrix products; charged to the function ``depth`` frames up (2: the caller
        of the hook that calls this)."""
        op = self.label(sys._getframe(depth))
        self.seconds[(op, "python")] += start - self.last
        self.seconds[(op, kind)] += t1 - t0
        self.calls[(op, kind)] += 1
        self.entries[(op, entry)] += 1
        self.flops[op] += flops

    def close(self, op: str = "(after the last NumPy call)") -> None:
        """Charge the time since the last NumPy call to ``op``."""
        self.seconds[(op, "python")] += time.perf_counter() - self.last


_active: Recorder | None = None


def _plain(x: Any) -> Any:
    """``x`` with every Timed array in it (also in lists and tuples) as a plain ndarray view."""
    if type(x) is Timed:
        return x.view(np.ndarray)
    if type(x) in (list, tuple):
        return type(x)([_plain(a) for a in x])
    return x


def _timed(x: Any) -> Any:
    """Plain ndarrays in a result (also in tuples and lists) as Timed views; others as they are."""
    if type(x) is np.ndarray:
        return x.view(Timed)
    if type(x) in (list, tuple):
        return type(x)([_timed(a) for a in x])
    return x


def _recorded(entry: str, kind: str, start: float, t0: float, t1: float, result: Any) -> Any:
    """Record one NumPy call of a hook (charged to the function that called the hook, three
    frames up) and hand back its result with plain ndarrays as Timed views."""
    if _active is not None:
        _active.record(entry, kind, start, t0, t1, depth=3)
    result = _timed(result)
    if _active is not None:
        _active.last = time.perf_counter()
    return result


def _creating(f: Callable) -> Callable:
    """``f``, a NumPy creation function, timed as a copy, its result Timed."""
    @functools.wraps(f)
    def create(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = f(*args, **kwargs)
        return _recorded("create", "copies", start, start, time.perf_counter(), result)
    return create


class _Namespace(types.ModuleType):
    """NumPy as the Array API namespace of Timed arrays: the same functions, with the creation
    functions (``_CREATION``) timed and returning Timed arrays. Named "numpy", so that
    ``backend.py`` takes its NumPy branches."""

    def __init__(self) -> None:
        super().__init__("numpy")
        for name in _CREATION:
            setattr(self, name, _creating(getattr(np, name)))

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


_NAMESPACE = _Namespace()


class Timed(np.ndarray):
    """An ndarray whose NumPy calls are timed into the active ``Recorder`` (see the module
    docstring). With no recorder active it still works, untimed."""

    __slots__ = ()  # no instance dict: its views cost no more than an ndarray's

    def __array_namespace__(self, *, api_version: str | None = None) -> Any:
        return _NAMESPACE

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _plain(out)
        args = [a.view(np.ndarray) if type(a) is Timed else a for a in inputs]
        call = ufunc if method == "__call__" else getattr(ufunc, method)
        t0 = time.perf_counter()
        result = call(*args, **kwargs)
        t1 = time.perf_counter()
        if _active is not None:
            flops = (matmul_flops(np.shape(args[0]), np.shape(args[1]))
                     if ufunc is np.matmul and method == "__call__" else 0)
            _active.record("ufunc", ufunc_kind(ufunc.__name__, method), start, t0, t1, flops)
        if out is not None:  # in place (a += b): the caller gets its own array back
            result = out[0] if len(out) == 1 else out
        else:
            result = _timed(result)
        if _active is not None:
            _active.last = time.perf_counter()
        return result

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any) -> Any:
        if not all(issubclass(t, np.ndarray) for t in types):
            return NotImplemented
        start = time.perf_counter()
        args, kwargs = _plain(args), {k: _plain(v) for k, v in kwargs.items()}
        t0 = time.perf_counter()
        result = func(*args, **kwargs)
        return _recorded("function", function_kind(func), start, t0, time.perf_counter(), result)

    def __getitem__(self, key: Any) -> Any:
        start = time.perf_counter()
        plain, key = self.view(np.ndarray), _plain(key)
        t0 = time.perf_counter()
        result = plain[key]
        return _recorded("index", "copies", start, t0, time.perf_counter(), result)

    def __setitem__(self, key: Any, value: Any) -> None:
        start = time.perf_counter()
        plain, key, value = self.view(np.ndarray), _plain(key), _plain(value)
        t0 = time.perf_counter()
        plain[key] = value
        t1 = time.perf_counter()
        if _active is not None:
            _active.record("index", "copies", start, t0, t1)
            _active.last = time.perf_counter()


def timed(a: Any) -> Any:
    """A Timed copy of a NumPy array (other values as they are)."""
    return np.array(a).view(Timed) if isinstance(a, np.ndarray) else a


def record(f: Callable[[], Any], n: int) -> Recorder:
    """Call ``f`` ``n`` times with a fresh recorder active; its raw seconds (not calibrated)."""
    global _active
    rec = Recorder()
    _active = rec
    try:
        for _ in range(n):
            f()
    finally:
        _active = None
    rec.close()
    return rec


def calibrate(calls: int = 2000, repeats: int = 7) -> dict[str, float]:
    """Seconds per call that the profiler adds to the gaps between NumPy calls, by way in
    (``_ENTRIES``), from ``calls`` calls on tiny arrays: the Timed calls' gaps and windows
    together less the same plain calls' whole time, each the least of ``repeats`` runs (the
    run least disturbed by other work on the machine)."""
    p = np.ones(2, dtype=np.float32)
    t = p.view(Timed)
    ways: dict[str, tuple[Callable, Callable]] = {
        "ufunc": (lambda: -p, lambda: -t),
        "function": (lambda: np.reshape(p, (2,)), lambda: np.reshape(t, (2,))),
        "index": (lambda: p[1:], lambda: t[1:]),
        "create": (lambda: np.empty(2), lambda: _NAMESPACE.empty(2))}

    def loop(f: Callable) -> None:
        for _ in range(calls):
            f()

    out = {}
    for entry, (plain_f, timed_f) in ways.items():
        plain, timed = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            loop(plain_f)
            plain.append(time.perf_counter() - t0)
            timed.append(sum(record(functools.partial(loop, timed_f), 1).seconds.values()))
        out[entry] = max(0.0, (min(timed) - min(plain)) / calls)
    return out


def table(rec: Recorder, steps: int, overhead: dict[str, float]
          ) -> dict[str, dict[str, float]]:
    """Milliseconds per step, op -> kind -> ms (every kind present, ``python`` less the
    profiler's calibrated cost per call), ops ordered by their total, largest first."""
    ops: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(KINDS, 0.0))
    for (op, kind), s in rec.seconds.items():
        ops[op][kind] += 1000 * s / steps
    for (op, entry), n in rec.entries.items():
        ops[op]["python"] -= 1000 * overhead[entry] * n / steps
    for row in ops.values():
        row["python"] = max(0.0, row["python"])
    return dict(sorted(ops.items(), key=lambda kv: -sum(kv[1].values())))


def calls_per_step(rec: Recorder, steps: int) -> dict[str, float]:
    """NumPy calls per step by op."""
    n: dict[str, float] = defaultdict(float)
    for (op, _), c in rec.calls.items():
        n[op] += c / steps
    return n


def gflop_per_step(rec: Recorder, steps: int) -> dict[str, float]:
    """GFLOP per step in matmul calls (``@``, np.matmul) by op."""
    return {op: f / steps / 1e9 for op, f in rec.flops.items()}


def by_kind(ops: dict[str, dict[str, float]]) -> dict[str, float]:
    """Milliseconds per step by kind, summed over the ops."""
    return {k: sum(row[k] for row in ops.values()) for k in KINDS}


def format_table(ops: dict[str, dict[str, float]], calls: dict[str, float],
                 gflop: dict[str, float], plain_ms: float | None = None,
                 analytic_gflop: float | None = None) -> str:
    """The op-by-kind table with each op's NumPy calls and its products' GFLOP/s, a total row,
    the kinds' shares, and when given the step timed without the profiler and the analytic
    FLOP count (``steps.train_flops``), as text."""
    total = sum(sum(row.values()) for row in ops.values())
    width = max([24, *(len(op) for op in ops)])
    head = (f"{'op (ms per step)':<{width}} {'calls':>6} " +
            " ".join(f"{k[:11]:>11}" for k in KINDS) + f" {'total':>9} {'share':>6} "
            f"{'GFLOP/s':>8}")

    def rate(g: float, ms: float) -> str:
        return f"{g / ms * 1000:>8.1f}" if g and ms else f"{'':>8}"

    lines = [head, "-" * len(head)]
    for op, row in ops.items():
        t = sum(row.values())
        lines.append(f"{op:<{width}} {calls.get(op, 0):>6.0f} " +
                     " ".join(f"{row[k]:>11.2f}" for k in KINDS) +
                     f" {t:>9.2f} {t / total:>6.1%} " + rate(gflop.get(op, 0.0), row["products"]))
    kinds = by_kind(ops)
    products_gflop = sum(gflop.values())
    lines += ["-" * len(head),
              f"{'total':<{width}} {sum(calls.values()):>6.0f} " +
              " ".join(f"{kinds[k]:>11.2f}" for k in KINDS) + f" {total:>9.2f} {1:>6.0%} " +
              rate(products_gflop, kinds["products"]),
              "by kind: " + ", ".join(f"{k} {kinds[k] / total:.1%}" for k in KINDS),
              f"GFLOP/s: of the matrix products alone (their FLOPs over their time); "
              f"{products_gflop:.3f} GFLOP per step in matmul calls" +
              ("" if analytic_gflop is None else
               f" (the analytic count, train_flops: {analytic_gflop:.3f}; it counts some "
               "products that this code does elementwise)")]
    if plain_ms is not None:
        lines.append(f"the table sums to {total:.1f} ms per step; the same step timed without "
                     f"the profiler: {plain_ms:.1f} ms")
    return "\n".join(lines)
