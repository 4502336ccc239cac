"""Checkpoints: ``NAME.npz`` (parameters and optimiser state, loaded with pickling off) and
``NAME.json`` (configuration, vocabularies, training position, format version, and the SHA-256
of the npz that ties the two together).

Each file is written to a temporary file in the same directory, flushed to disk, then renamed
over the old one, npz first: a crash or Ctrl-C at any moment leaves either the old pair, or a
new npz beside the old json, which the fingerprint exposes; never a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .backend import Array, to_host

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the path and the reason."""


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(run_dir: str | Path, name: str, params: dict[str, Array],
                    opt_state: dict[str, Array], meta: dict[str, Any]) -> Path:
    """Write ``run_dir/name.npz`` and ``run_dir/name.json`` atomically; returns the npz path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    arrays = {f"param/{k}": to_host(v) for k, v in params.items()}
    arrays.update({f"optim/{k}": to_host(v) for k, v in opt_state.items()})
    npz = run_dir / f"{name}.npz"
    _write_atomic(npz, lambda f: np.savez(f, **arrays))
    doc = {**meta, "format_version": FORMAT_VERSION, "npz_sha256": _sha256(npz)}
    _write_atomic(run_dir / f"{name}.json",
                  lambda f: f.write(json.dumps(doc, ensure_ascii=False).encode("utf-8")))
    return npz


def checkpoint_exists(run_dir: str | Path, name: str) -> bool:
    run_dir = Path(run_dir)
    return (run_dir / f"{name}.npz").is_file() and (run_dir / f"{name}.json").is_file()


def load_checkpoint(run_dir: str | Path, name: str = "best"
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """(parameters, optimiser state, meta) as host arrays; CheckpointError on any problem."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory")
    npz, js = run_dir / f"{name}.npz", run_dir / f"{name}.json"
    if not checkpoint_exists(run_dir, name):
        there = sorted(p.stem for p in run_dir.glob("*.npz") if checkpoint_exists(run_dir, p.stem))
        raise CheckpointError(f"{run_dir}: no checkpoint {name!r} (there: "
                              f"{', '.join(there) if there else 'none'})")
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{js}: unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise CheckpointError(f"{js}: not a minirnnsearch checkpoint (no format_version)")
    if meta["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{js}: written by format version {meta['format_version']}, this "
                              f"is version {FORMAT_VERSION}")
    try:
        with np.load(npz, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{npz}: corrupt or truncated ({type(e).__name__}: {e})") from None
    if meta.get("npz_sha256") != _sha256(npz):
        raise CheckpointError(f"{npz}: does not match {js.name} (fingerprint differs: the pair "
                              "was not written together)")
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    if not params:
        raise CheckpointError(f"{npz}: not a minirnnsearch checkpoint (no parameters in it)")
    opt = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    return params, opt, meta
