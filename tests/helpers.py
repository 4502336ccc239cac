"""Shared test helpers."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from minirnnsearch import checkpoint, model
from minirnnsearch.data.corpus import generate_pairs


def small_corpus(d: Path, n: int, max_words: int, n_dev: int, seed: int) -> Path:
    """train.en/fr and dev.en/fr in ``d`` from the built-in grammar, sentences of at most
    ``max_words`` English words, the last ``n_dev`` for dev. Returns ``d``."""
    pairs = [p for p in generate_pairs(n, seed=seed) if len(p[0].split()) <= max_words]
    for name, part in (("train", pairs[:-n_dev]), ("dev", pairs[-n_dev:])):
        (d / f"{name}.en").write_text("\n".join(e for e, _ in part) + "\n", encoding="utf-8")
        (d / f"{name}.fr").write_text("\n".join(f for _, f in part) + "\n", encoding="utf-8")
    return d


def grads64_batches() -> list[list[tuple[list[int], list[int]]]]:
    """Two global batches of (source ids, target ids): 5 pairs of unequal lengths, and 1 pair."""
    rng = np.random.default_rng(5)
    pairs = [(rng.integers(4, 20, rng.integers(1, 7)).tolist(),
              rng.integers(4, 20, rng.integers(1, 7)).tolist()) for _ in range(6)]
    return [pairs[:5], pairs[5:]]


def grads64_config() -> model.Config:
    return model.Config(src_vocab=20, tgt_vocab=20, emb=5, hidden=6, align=4, maxout=3)


def files_of(run: Path) -> dict[str, bytes]:
    """Every file of a run directory by name, with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def assert_kept(run: Path, before: dict[str, bytes]) -> None:
    """After a failure in ``run``: every file of ``before`` (``files_of``) is as it was, but
    log.jsonl, which may have gained lines; the checkpoints load; no temporary is left; and
    every line of log.jsonl is whole JSON."""
    now = files_of(run)
    assert [n for n in now if n.endswith(".tmp")] == []
    for name, data in before.items():
        if name != "log.jsonl":
            assert now[name] == data, f"{name} changed"
    for name in ("best", "last"):
        checkpoint.load_checkpoint(run, name)
    log = now["log.jsonl"]
    assert log.startswith(before["log.jsonl"]) and log.endswith(b"\n")
    for line in log.decode("utf-8").splitlines():
        json.loads(line)


HOLD = """
import sys, time
from minirnnsearch.runlock import RunLock
lock = RunLock(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


def hold_run(run: Path) -> subprocess.Popen:
    """A child process holding the run directory ``run`` (``runlock.RunLock``) until it is
    killed, returned once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "held\n"
    return proc
