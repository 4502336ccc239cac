"""Checkpoints: ``NAME.json`` (configuration, vocabularies, training position and whatever else
the caller puts in ``meta``, plus the format version, the name of the npz that holds the arrays
and its SHA-256) and that npz, ``NAME.<hash>.npz`` (``<hash>``: the first 16 hex digits of its
SHA-256; parameters ``param/<name>`` and optimiser state ``optim/<key>``, loaded with pickling
off).

A save can stop at any moment, a hard one (``kill -9``, a power cut) included, and leave a
checkpoint that loads: the old one or the new one, never a mix. The new npz is written in full
to a temporary (``.NAME.npz.<pid>.tmp``), flushed, fsynced and renamed to its own name beside
the old npz; then the new json, written the same way (``.NAME.json.<pid>.tmp``), is renamed
over the old json. That one rename is the moment the checkpoint changes from old to new, since
the json names its npz; only after it is the old npz deleted. What a stopped save leaves behind
(its temporaries, a new npz that no json names, an old one not yet deleted) is never loaded;
``remove_stale_temporaries`` deletes it when the next training run starts, and a later save of
NAME deletes every npz of NAME but its own. A failure (a full disk, a directory that is not
writable) or Ctrl-C before the json's rename leaves the old checkpoint and removes the save's
temporaries. Why a json naming its npz rather than one file holding both: the json stays a
file that people and the story read as it is; and since a single rename commits the pair, no
signal has to be held back during a save.

Format version 1, ``NAME.npz`` beside a json without ``npz`` (written by renaming the npz, then
the json: a hard stop between the two left a pair that does not load), is still read, so runs
saved by it resume and translate; their next save of NAME is of version 2 and deletes its
``NAME.npz``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .backend import Array, to_host
from .oserrors import (
    doing,
    make_dir,
    remove_quietly,
    temporary,
    temporary_of,
    write_synced,
)

FORMAT_VERSION = 2
READS = (1, 2)  # the format versions load_checkpoint reads
HASH_DIGITS = 16  # of the npz's SHA-256 in its name


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message is one line naming the path and why."""


# the npz files of a checkpoint NAME: NAME.<hash>.npz, or NAME.npz (format version 1)
_ARRAYS = re.compile(rf"(?P<name>.+?)(?:\.[0-9a-f]{{{HASH_DIGITS}}})?\.npz")


def _checkpoint_of(file: str) -> str | None:
    """The checkpoint whose npz ``file`` (a file name) would be, or None."""
    m = _ARRAYS.fullmatch(file)
    return None if m is None else m["name"]


def _arrays_files(run_dir: Path, name: str) -> list[Path]:
    """The npz files of checkpoint ``name`` in ``run_dir``, whichever json names them."""
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.iterdir() if _checkpoint_of(p.name) == name and p.is_file())


def is_checkpoint_file(file: str, name: str) -> bool:
    """Whether ``file`` (a file name) is one of checkpoint ``name``'s: ``NAME.json`` or an npz
    of NAME (not a temporary of a save)."""
    return file == f"{name}.json" or _checkpoint_of(file) == name


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


def _named_arrays(run_dir: Path, name: str) -> str | None:
    """The file name of the npz that ``NAME.json`` names (``NAME.npz`` in format version 1), or
    None if there is no such json or it cannot be read."""
    try:
        meta = read_meta(run_dir, name)
    except (CheckpointError, OSError):
        return None
    return meta.get("npz", f"{name}.npz")


def _unfinished(run_dir: Path, path: Path) -> bool:
    """Whether ``path`` is what a save that stopped left: a temporary of a checkpoint's npz or
    json whose process is gone, or an npz of checkpoint NAME that ``NAME.json`` does not name
    (written before a json that never came, or the old one of a save that stopped before
    deleting it). An npz beside a json that cannot be read is kept."""
    of = temporary_of(path.name)
    if of is not None:
        return of[0].endswith((".npz", ".json")) and not _process_exists(of[1])
    name = _checkpoint_of(path.name)
    if name is None or not (run_dir / f"{name}.json").is_file():
        return False
    named = _named_arrays(run_dir, name)
    return named is not None and named != path.name


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete what saves stopped outright (``kill -9``, a power cut) left in ``run_dir``, and
    return it: the temporaries ``save_checkpoint`` names ``.NAME.npz.<pid>.tmp`` and
    ``.NAME.json.<pid>.tmp``, only when process ``<pid>`` is gone (on this machine: a run
    directory shared by several machines is not supported); and the npz files of a checkpoint
    that its json does not name. Every other file stays, and so does one that cannot be
    deleted. Only for the run that holds the directory (``runlock``): a save in progress in
    another process has an npz that its json does not name yet."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    removed = []
    for path in sorted(run_dir.iterdir()):
        if not path.is_file() or not _unfinished(run_dir, path):
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return _sha256_of(f)


def _sha256_of(f: BinaryIO) -> str:
    """The SHA-256 of an open file, read from its start."""
    f.seek(0)
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def _open_arrays(run_dir: Path, name: str) -> tuple[dict[str, Any], Path, BinaryIO]:
    """(meta, npz path, the npz opened) of checkpoint ``name``. A save running beside this
    (training goes on while translate.py loads) may delete the npz the json named a moment
    ago: the json, read again, then names the new one. Once open, the npz stays readable."""
    for _ in range(3):
        meta = read_meta(run_dir, name)
        npz = run_dir / meta.get("npz", f"{name}.npz")
        try:
            with doing("read", npz):
                return meta, npz, open(npz, "rb")  # the caller closes it
        except FileNotFoundError:
            if read_meta(run_dir, name).get("npz") == meta.get("npz"):
                break  # not replaced by a save: missing
    raise CheckpointError(f"{npz}: missing, so checkpoint {name!r} is incomplete")


def _sync_dir(run_dir: Path) -> None:
    """Force the directory's entries (a rename) to disk, where the system can."""
    if os.name == "posix":
        with contextlib.suppress(OSError):  # some file systems cannot sync a directory
            fd = os.open(run_dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def save_checkpoint(run_dir: str | Path, name: str, params: dict[str, Array],
                    opt_state: dict[str, Array], meta: dict[str, Any]) -> Path:
    """Write checkpoint ``name`` in ``run_dir`` (created if missing): ``NAME.<hash>.npz``, then
    ``NAME.json`` renamed over the old one (the module's docstring says why that order); returns
    the npz's path. ``meta`` must be JSON-serialisable; ``format_version``, ``npz`` and
    ``npz_sha256`` are added to it. An OSError names the checkpoint, ``run_dir/NAME``."""
    run_dir = Path(run_dir)
    make_dir(run_dir)
    arrays = {f"param/{k}": to_host(v) for k, v in params.items()}
    arrays.update({f"optim/{k}": to_host(v) for k, v in opt_state.items()})
    js = run_dir / f"{name}.json"
    npz_tmp, js_tmp = temporary(run_dir / f"{name}.npz"), temporary(js)
    try:
        with doing("write checkpoint", run_dir / name):
            write_synced(npz_tmp, lambda f: np.savez(f, **arrays))
            sha = _sha256(npz_tmp)
            npz = run_dir / f"{name}.{sha[:HASH_DIGITS]}.npz"
            doc = {**meta, "format_version": FORMAT_VERSION, "npz": npz.name, "npz_sha256": sha}
            text = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
            write_synced(js_tmp, lambda f: f.write(text))
            os.replace(npz_tmp, npz)
            _sync_dir(run_dir)  # the npz is on disk before a json names it
            os.replace(js_tmp, js)  # the checkpoint is the new one from here
            _sync_dir(run_dir)
    finally:
        for tmp in (npz_tmp, js_tmp):
            remove_quietly(tmp)  # gone after a successful save
    for old in _arrays_files(run_dir, name):
        if old != npz:
            remove_quietly(old)  # the npz of the save before, or one a stopped save left
    return npz


def remove_checkpoint(run_dir: str | Path, name: str) -> None:
    """Delete checkpoint ``name`` from ``run_dir``: its json first (from then on there is no
    such checkpoint), then its npz files."""
    run_dir = Path(run_dir)
    js = run_dir / f"{name}.json"
    with doing("remove", js):
        js.unlink(missing_ok=True)
    for npz in _arrays_files(run_dir, name):
        with doing("remove", npz):
            npz.unlink()


def checkpoint_exists(run_dir: str | Path, name: str) -> bool:
    """Whether ``run_dir`` holds ``name.json`` and an npz of checkpoint ``name`` (not whether
    they load)."""
    run_dir = Path(run_dir)
    return (run_dir / f"{name}.json").is_file() and bool(_arrays_files(run_dir, name))


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def read_meta(run_dir: str | Path, name: str) -> dict[str, Any]:
    """The json of checkpoint ``name`` in ``run_dir`` (its meta, ``format_version`` and, from
    version 2, ``npz``), without reading its arrays. CheckpointError, one line naming the file,
    if it is not valid JSON, foreign, of a format version this code does not read, or names no
    npz of its own; OSError, marked as a failure to read it, if the system cannot."""
    js = Path(run_dir) / f"{name}.json"
    with doing("read", js):
        text = js.read_bytes()
    try:
        meta = json.loads(text.decode("utf-8"))
    except ValueError as e:  # bad JSON or bad UTF-8
        raise CheckpointError(f"{js}: unreadable ({_why(e)})") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise CheckpointError(f"{js}: not a minirnnsearch checkpoint (no format_version)")
    if meta["format_version"] not in READS:
        raise CheckpointError(f"{js}: written by format version {meta['format_version']}, "
                              f"this code reads versions {' and '.join(map(str, READS))}")
    npz = meta.get("npz", f"{name}.npz")
    if not (isinstance(npz, str) and _checkpoint_of(npz) == name):
        raise CheckpointError(f"{js}: not a minirnnsearch checkpoint (names no npz of "
                              f"{name!r}: {npz!r})")
    return meta


def load_checkpoint(run_dir: str | Path, name: str = "best"
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """(parameters, optimiser state, meta) of ``run_dir/name``, as NumPy arrays on the host.

    Raises CheckpointError, one line naming the path, if the directory or checkpoint is
    missing, either file is not valid JSON, truncated or foreign, the format version is not
    one this code reads, or the npz is not the one the json names (its SHA-256 differs); and
    OSError, marked as a failure to read the file (``oserrors.doing``), if the system cannot
    read one (or it vanished since the check).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory")
    js = run_dir / f"{name}.json"
    if not js.is_file():
        if _arrays_files(run_dir, name):
            raise CheckpointError(f"{js}: missing, so checkpoint {name!r} is incomplete")
        there = sorted(p.stem for p in run_dir.glob("*.json") if checkpoint_exists(run_dir, p.stem))
        raise CheckpointError(f"{run_dir}: no checkpoint {name!r} (there: "
                              f"{', '.join(there) if there else 'none'})")
    meta, npz, handle = _open_arrays(run_dir, name)
    with handle, doing("read", npz):
        try:
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise CheckpointError(f"{npz}: not a minirnnsearch checkpoint (one .npy array, "
                                      "not an npz archive)")
            with loaded as f:
                arrays = {k: f[k] for k in f.files}
        except (zipfile.BadZipFile, ValueError, EOFError, KeyError) as e:
            raise CheckpointError(f"{npz}: corrupt or truncated ({_why(e)})") from None
        fingerprint = _sha256_of(handle)
    params = {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}
    if not params:
        raise CheckpointError(f"{npz}: not a minirnnsearch checkpoint (no param/ arrays)")
    if meta.get("npz_sha256") != fingerprint:
        raise CheckpointError(f"{npz}: does not match {js.name} (fingerprint differs: the two "
                              "files were not written together)")
    opt = {k.removeprefix("optim/"): v for k, v in arrays.items() if k.startswith("optim/")}
    return params, opt, meta
