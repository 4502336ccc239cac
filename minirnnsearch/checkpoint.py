"""Checkpoints: ``NAME.npz`` (parameters ``param/<name>`` and optimiser state ``optim/<key>``,
loaded with pickling off) and ``NAME.json`` (configuration, vocabularies, training position and
whatever else the caller puts in ``meta``, plus the format version and the SHA-256 of the npz,
which ties the two files together).

Saving writes both files in full to temporary files in the run directory
(``.NAME.npz.<pid>.tmp``, ``.NAME.json.<pid>.tmp``), flushed and fsynced, and only then renames
them over the old pair, npz first, with Ctrl-C and SIGTERM held back between the two renames.
So a failure (a full disk, a directory that is not writable), Ctrl-C or SIGTERM while writing
leaves the old pair untouched and removes the temporaries, and only a hard
crash between the two renames can leave a new npz beside the old json, which the fingerprint
exposes on loading: a half-written or mismatched checkpoint is never loaded. A process killed
outright (``kill -9``) while writing leaves its temporaries behind; ``remove_stale_temporaries``
deletes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .backend import Array, to_host
from .oserrors import doing, make_dir, remove_quietly, temporary, write_synced

FORMAT_VERSION = 1
# held back while a checkpoint pair is renamed: Ctrl-C, and what schedulers send before a kill
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message is one line naming the path and why."""


# what oserrors.temporary makes of a checkpoint's files: .NAME.npz.<pid>.tmp, .NAME.json.<pid>.tmp
_TEMPORARY = re.compile(r"\..+\.(?:npz|json)\.(?P<pid>[0-9]+)\.tmp")


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` is running (this one included). Where that cannot be asked
    (not POSIX: there ``os.kill`` ends the process), every process counts as running."""
    if os.name != "posix" or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the temporaries that ``save_checkpoint`` left in ``run_dir`` when its process was
    killed outright, and return them: only files named as it names them
    (``.NAME.npz.<pid>.tmp``, ``.NAME.json.<pid>.tmp``) and only when process ``<pid>`` is gone
    (on this machine: a run directory shared by several machines is not supported). Every other
    file stays, and so does a temporary that cannot be deleted."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    removed = []
    for path in sorted(run_dir.iterdir()):
        m = _TEMPORARY.fullmatch(path.name)
        if m is None or not path.is_file() or _process_exists(int(m["pid"])):
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _replace_all(pairs: list[tuple[Path, Path]], run_dir: Path) -> None:
    """``os.replace(tmp, final)`` for each pair in order, then sync the directory entries.

    A Ctrl-C (SIGINT) or SIGTERM meanwhile is held back and replayed once all are renamed, so it
    cannot split the pair: the replayed signal then does what it would have done (raise
    KeyboardInterrupt, run the caller's handler, or end the process). (A Python-level handler
    rather than a signal mask: the OS may deliver the signal to any thread, tqdm's monitor
    thread for one.) Signal handlers belong to the main thread only.
    """
    held: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in HELD_SIGNALS:
            if signal.getsignal(sig) is not None:  # None: a handler set outside Python, kept
                previous[sig] = signal.signal(sig, lambda signum, frame: held.append(signum))
    try:
        for tmp, final in pairs:
            with doing("write", final):
                os.replace(tmp, final)
        if os.name == "posix":
            with contextlib.suppress(OSError):  # some file systems cannot sync a directory
                fd = os.open(run_dir, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            signal.raise_signal(held[0])  # as if it came now


def save_checkpoint(run_dir: str | Path, name: str, params: dict[str, Array],
                    opt_state: dict[str, Array], meta: dict[str, Any]) -> Path:
    """Write ``run_dir/name.npz`` and ``run_dir/name.json`` (creating ``run_dir``), replacing
    any old pair only once both new files are complete; returns the npz path. ``meta`` must be
    JSON-serialisable; ``format_version`` and ``npz_sha256`` are added to it."""
    run_dir = Path(run_dir)
    make_dir(run_dir)
    arrays = {f"param/{k}": to_host(v) for k, v in params.items()}
    arrays.update({f"optim/{k}": to_host(v) for k, v in opt_state.items()})
    npz, js = run_dir / f"{name}.npz", run_dir / f"{name}.json"
    npz_tmp, js_tmp = temporary(npz), temporary(js)
    try:
        with doing("write", npz):
            write_synced(npz_tmp, lambda f: np.savez(f, **arrays))
            doc = {**meta, "format_version": FORMAT_VERSION, "npz_sha256": _sha256(npz_tmp)}
        text = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
        with doing("write", js):
            write_synced(js_tmp, lambda f: f.write(text))
        _replace_all([(npz_tmp, npz), (js_tmp, js)], run_dir)
    finally:
        for tmp in (npz_tmp, js_tmp):
            remove_quietly(tmp)  # gone after a successful save
    return npz


def checkpoint_exists(run_dir: str | Path, name: str) -> bool:
    """Whether ``run_dir`` holds both ``name.npz`` and ``name.json`` (not whether they load)."""
    run_dir = Path(run_dir)
    return (run_dir / f"{name}.npz").is_file() and (run_dir / f"{name}.json").is_file()


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def load_checkpoint(run_dir: str | Path, name: str = "best"
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """(parameters, optimiser state, meta) of ``run_dir/name``, as NumPy arrays on the host.

    Raises CheckpointError, one line naming the path, if the directory or checkpoint is
    missing, either file is not valid JSON, truncated or foreign, the format version differs,
    or the two files were not written together; and OSError, marked as a failure to read the
    file (``oserrors.doing``), if the system cannot read one (or it vanished since the check).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory")
    npz, js = run_dir / f"{name}.npz", run_dir / f"{name}.json"
    if not checkpoint_exists(run_dir, name):
        if npz.is_file() or js.is_file():
            absent = js if npz.is_file() else npz
            raise CheckpointError(f"{absent}: missing, so checkpoint {name!r} is incomplete")
        there = sorted(p.stem for p in run_dir.glob("*.npz") if checkpoint_exists(run_dir, p.stem))
        raise CheckpointError(f"{run_dir}: no checkpoint {name!r} (there: "
                              f"{', '.join(there) if there else 'none'})")
    with doing("read", js):
        text = js.read_bytes()
    try:
        meta = json.loads(text.decode("utf-8"))
    except ValueError as e:  # bad JSON or bad UTF-8
        raise CheckpointError(f"{js}: unreadable ({_why(e)})") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise CheckpointError(f"{js}: not a minirnnsearch checkpoint (no format_version)")
    if meta["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{js}: written by format version {meta['format_version']}, "
                              f"this is version {FORMAT_VERSION}")
    with doing("read", npz):
        try:
            loaded = np.load(npz, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise CheckpointError(f"{npz}: not a minirnnsearch checkpoint (one .npy array, "
                                      "not an npz archive)")
            with loaded as f:
                arrays = {k: f[k] for k in f.files}
        except (zipfile.BadZipFile, ValueError, EOFError, KeyError) as e:
            raise CheckpointError(f"{npz}: corrupt or truncated ({_why(e)})") from None
        fingerprint = _sha256(npz)
    params = {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}
    if not params:
        raise CheckpointError(f"{npz}: not a minirnnsearch checkpoint (no param/ arrays)")
    if meta.get("npz_sha256") != fingerprint:
        raise CheckpointError(f"{npz}: does not match {js.name} (fingerprint differs: the two "
                              "files were not written together)")
    opt = {k.removeprefix("optim/"): v for k, v in arrays.items() if k.startswith("optim/")}
    return params, opt, meta
