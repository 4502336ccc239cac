"""Failures of the operating system under a run: one line naming the file, the operation and the
cause, never a traceback; and the ways of writing a file that leave nothing half-done behind.

Every command's ``main`` is wrapped in ``reports_os_errors``. An ``OSError`` that reaches it (a
full, read-only or over-quota file system, a directory that is not writable, a file-size limit,
a file that vanished between a check and its use, an input that cannot be read, a full stdout)
ends the command with one line on stderr and exit status 1 (``STATUS``):

    error: cannot write checkpoint runs/x/last: No space left on device
    error: cannot append to runs/x/log.jsonl: File too large
    error: cannot read data/train.en: Permission denied
    error: interrupted, but cannot write checkpoint runs/x/last: No space left on device

The operation and the file come from ``doing(operation, path)`` around the code that touches the
file: NumPy, matplotlib and sentencepiece write through file objects and lose the name, and a
checkpoint is written to a temporary whose name is not the one to show. An error outside any
``doing`` is named by its own file name(s). One raised while a Ctrl-C or SIGTERM is being
handled (the save on the way out) says so first. Python starts with SIGXFSZ ignored, so a
file-size limit (``ulimit -f``, RLIMIT_FSIZE) fails the write with EFBIG rather than killing the
process.

Writing so that a failure leaves the old state:
- ``write_atomic(path, data)``: the whole new file or the old one, never a mix, and no
  temporary left behind;
- ``append_line(path, line)``: one line appended whole or not at all (``log.jsonl``);
- ``make_dir(path)``: a directory and its parents.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

STATUS = 1  # the exit status of a command that the operating system failed


@contextlib.contextmanager
def doing(operation: str, path: str | Path) -> Iterator[None]:
    """Within: an OSError is marked as failing to ``operation`` ("write", "read", "append to",
    "create directory") the file ``path``, unless a ``doing`` inside marked it first (the
    innermost knows best). The error itself goes on, unchanged in type."""
    try:
        yield
    except OSError as e:
        if getattr(e, "operation", None) is None:
            e.operation = operation  # type: ignore[attr-defined]
            e.filename, e.filename2 = str(path), None
        raise


def _interruption(e: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or SIGTERM taking its path) that was being handled when ``e`` was raised."""
    seen: BaseException | None = e.__context__
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__context__
    return None


def describe(e: OSError) -> str:
    """One line: what could not be done to which file, and why (the system's own words)."""
    cause = e.strerror or " ".join(str(e).split()) or type(e).__name__
    operation = getattr(e, "operation", None)
    if e.filename is None:
        text = f"cannot {operation}: {cause}" if operation else cause
    else:
        where = str(e.filename) if e.filename2 is None else f"{e.filename} -> {e.filename2}"
        text = f"cannot {operation} {where}: {cause}" if operation else f"{where}: {cause}"
    interrupt = _interruption(e)
    if interrupt is not None:  # a signal's name for SIGTERM's path (training.Terminated)
        text = f"{f'stopped by {interrupt}' if str(interrupt) else 'interrupted'}, but {text}"
    return text


def _abandon_stdout() -> None:
    """After stdout failed, point it at /dev/null, so that the output it still holds does not
    fail again when Python flushes it on the way out."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


class _NamedStdout:
    """``sys.stdout`` as it was, with a failure to write it marked as one (``doing``)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        with doing("write", "<stdout>"):
            return self._stream.write(text)

    def flush(self) -> None:
        with doing("write", "<stdout>"):
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def reports_os_errors(main: Callable[..., int]) -> Callable[..., int]:
    """``main`` (a command, returning its exit status), with any OSError turned into one line
    on stderr (``describe``) and exit status ``STATUS``. Standard output is named in the line
    when it is what failed (a full disk under ``> file``), and flushed before returning, so
    that output still buffered is reported too."""

    @functools.wraps(main)
    def run(*args: Any, **kwargs: Any) -> int:
        try:
            with contextlib.redirect_stdout(_NamedStdout(sys.stdout)):
                status = main(*args, **kwargs)
                sys.stdout.flush()
            return status
        except OSError as e:
            print(f"error: {describe(e)}", file=sys.stderr, flush=True)
            _abandon_stdout()
            return STATUS

    return run


def temporary(path: Path) -> Path:
    """Where this process writes ``path`` before renaming it: ``.NAME.<pid>.tmp`` beside it."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def temporary_of(name: str) -> tuple[str, int] | None:
    """(NAME, pid) if ``name`` is a file name ``temporary`` gives, ``.NAME.<pid>.tmp``; else
    None."""
    m = re.fullmatch(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)\.tmp", name)
    return None if m is None else (m["name"], int(m["pid"]))


def write_synced(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write ``path`` with ``write(f)`` and force it to disk."""
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it is there; a failure to is not reported (this cleans up after
    another error, which is the one to report)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary beside ``path`` (``temporary``), force it to disk and
    rename it over ``path``: a failure or Ctrl-C leaves the old file (or none) and removes the
    temporary. A path that is a device, a pipe or a symbolic link (``/dev/stdout``) is written
    in place instead, since renaming would replace it."""
    path = Path(path)
    with doing("write", path):
        if path.is_symlink() or (path.exists() and not path.is_file()):
            path.write_bytes(data)
            return
        tmp = temporary(path)
        try:
            write_synced(tmp, lambda f: f.write(data))
            os.replace(tmp, path)
        finally:
            remove_quietly(tmp)  # gone after the rename


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` and a newline to ``path`` (created if missing), whole or not at all: the
    bytes go in one write on a descriptor opened for appending, and if that fails (a full disk
    may take part of a write) the file is cut back to its size before, so a reader never meets
    half a line."""
    data = memoryview((line + "\n").encode("utf-8"))
    with doing("append to", path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            try:
                while data:  # a short write is followed by one that raises the reason
                    data = data[os.write(fd, data):]
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


def make_dir(path: str | Path) -> None:
    """Create directory ``path`` and its parents, if missing."""
    with doing("create directory", path):
        Path(path).mkdir(parents=True, exist_ok=True)
