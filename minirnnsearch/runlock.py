"""One run per directory at a time: a run holds ``RUN/.lock`` for its whole life.

``RunLock(run_dir)`` takes an exclusive lock on the file ``.lock`` in the run directory
(``fcntl.flock`` with ``LOCK_EX | LOCK_NB``: it never waits) and writes into it who holds it:
the process id, the host and the command line. A second process that asks for the same lock
gets ``RunInUse``, one line naming the holder:

    runs/x is in use by process 1234 (python train.py --out runs/x); wait for it or choose
    another --out

The lock belongs to the open file, so the kernel releases it when the process ends, however it
ends (``kill -9`` included): a lock is never stale, and a ``.lock`` left by a killed run is
simply taken by the next. On release the file is deleted while still locked, and the run
directory too if this lock created it and it is empty (a new run that stopped on bad input
leaves nothing behind). A lock taken on a file that its holder deleted meanwhile would hold
nothing, so after taking it, ``RunLock`` checks that the path still leads to the file it
locked, and starts again if not. POSIX only (``fcntl``); on a shared file system as far as its
locks go (NFS has them).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

from .oserrors import doing, make_dir

LOCK_FILE = ".lock"
COMMAND_CHARS = 200  # of the holder's command line, in the lock file and in the message


class RunInUse(RuntimeError):
    """The run directory is held by another process; the message is one line naming it."""


def _holder() -> dict[str, Any]:
    """This process, as the lock file records it (its command line on one line)."""
    command = " ".join(shlex.join(sys.orig_argv).split())
    if len(command) > COMMAND_CHARS:
        command = command[: COMMAND_CHARS - 3] + "..."
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command}


def _describe(text: bytes) -> str:
    """The holder that a lock file's ``text`` records, in words; "another process" while it
    has not written itself in yet (or wrote something else)."""
    try:
        holder = json.loads(text.decode("utf-8"))
        who = f"process {int(holder['pid'])}"
        if holder.get("host") != socket.gethostname():
            who += f" on {holder.get('host')}"
        return f"{who} ({holder['command']})" if holder.get("command") else who
    except (ValueError, TypeError, KeyError, AttributeError):
        return "another process"


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still leads to the open file ``fd``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


class RunLock:
    """The lock of one run directory, held from creation until ``release`` (or the end of a
    ``with`` block, or of the process)."""

    def __init__(self, run_dir: str | Path) -> None:
        """Take the lock of ``run_dir`` (created if missing), or raise RunInUse naming its
        holder; OSError, marked with the file, if the lock file cannot be made."""
        self.run_dir = Path(run_dir)
        self.created = not self.run_dir.exists()
        make_dir(self.run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = self._take()
        # who holds it, for the message of the next one: a courtesy, so a disk too full for
        # these few bytes does not stop the run (its first real write will say so)
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(_holder()).encode("utf-8") + b"\n", 0)

    def _take(self) -> int:
        """The lock file, open and locked by this process."""
        while True:
            with doing("write", self.path):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(os.pread(fd, 4096, 0))
                os.close(fd)
                raise RunInUse(f"{self.run_dir} is in use by {holder}; wait for it or choose "
                               "another --out") from None
            if _same_file(fd, self.path):
                return fd
            os.close(fd)  # its holder deleted it between our open and our lock: again

    def release(self) -> None:
        """Delete the lock file (and the run directory, if this lock created it and it is
        empty), then let the lock go; again: nothing."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        if self.created:
            with contextlib.suppress(OSError):  # not empty: the run wrote something
                self.run_dir.rmdir()
        os.close(self._fd)  # closing the file lets the lock go
        self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
