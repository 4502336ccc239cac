"""The run directory: its files, who holds it, and what a new or resumed run does with what it
finds there.

One run directory holds the checkpoints ``best`` (the best dev BLEU) and ``last`` (the latest
state, for a resume), each a json and the npz it names (``checkpoint``), ``log.jsonl`` (one line
per validation) and with subword units the subword model. A run holds its directory for its
whole life (``runlock``: a second run there is refused, naming the first), and a new run
refuses a directory that holds a run, before writing anything, unless it overwrites (which
removes that run's files, ``run_files``, first). At start-up, checkpoint temporaries left by
runs killed outright are removed (``prepare_out``); a resumed run first makes its log and
`best` agree with `last` (``agree_with_last``).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .checkpoint import (
    CheckpointError,
    is_checkpoint_file,
    read_meta,
    remove_checkpoint,
    remove_stale_temporaries,
)
from .data.subword import MODEL_FILE
from .oserrors import doing, make_dir, write_atomic
from .runlock import RunLock
from .settings import Settings, TrainingError

CHECKPOINTS = ("best", "last")
LOG = "log.jsonl"  # one line per validation


def run_files(out: Path) -> list[Path]:
    """The files of a run in ``out``, train.py's own: the checkpoints ``best`` and ``last`` (each
    its json and npz files), log.jsonl and subword.model. What a new run refuses to write over
    and what --overwrite removes; never another file (a user's notes, the story's story.json,
    the lock, a temporary: ``prepare_out`` removes those of checkpoints once their process has
    ended)."""
    if not out.is_dir():
        return []

    def of_the_run(file: str) -> bool:
        return (any(is_checkpoint_file(file, name) for name in CHECKPOINTS)
                or file in (LOG, MODEL_FILE))

    return sorted(p for p in out.iterdir() if p.is_file() and of_the_run(p.name))


def held_run(out: Path, files: list[Path]) -> str:
    """Why a new run refuses ``out``, which holds the run files ``files``, and the ways on: the
    run's step and best dev BLEU from its ``last`` checkpoint, or the files if it cannot be
    read."""
    try:
        meta = read_meta(out, "last")
        bleu = (f"best dev BLEU {meta['best_bleu']:.2f}" if meta["best_bleu"] >= 0
                else "no validation yet")
        return (f"{out} holds a run (step {meta['step']}, {bleu}); continue it with --resume, "
                "replace it with --overwrite, or choose another --out")
    except (CheckpointError, OSError, KeyError, TypeError, ValueError):
        return (f"{out} holds files of a run ({', '.join(p.name for p in files)}) without a "
                "readable checkpoint 'last' to continue; replace them with --overwrite, or "
                "choose another --out")


def claim(settings: Settings, root: bool = True) -> contextlib.AbstractContextManager[Any]:
    """The run directory ``settings.out``, held for the run (``RunLock``; under MPI by rank 0,
    the ``root``, and the other ranks hold nothing) before anything is written in it: RunInUse
    if another process holds it. Then a new run (not ``resume``) refuses a directory that holds
    a run (TrainingError, ``held_run``), or with ``overwrite`` removes that run's files
    (``run_files``). Returns the lock, to release when the run ends."""
    if not root:
        return contextlib.nullcontext()
    out = Path(settings.out)
    lock = RunLock(out)
    try:
        files = [] if settings.resume else run_files(out)
        if files and not settings.overwrite:
            raise TrainingError(held_run(out, files))
        for path in files:
            with doing("remove", path):
                path.unlink()
        if files:
            print(f"{out}: --overwrite removed the earlier run's "
                  f"{', '.join(p.name for p in files)}", file=sys.stderr)
    except BaseException:
        lock.release()
        raise
    return lock


def prepare_out(out: Path) -> None:
    """The run directory, without the temporaries of ended runs' unfinished saves."""
    make_dir(out)
    stale = remove_stale_temporaries(out)
    if stale:
        print(f"{out}: removed {len(stale)} temporary files of ended runs' unfinished "
              f"saves ({', '.join(p.name for p in stale)})", file=sys.stderr)


def agree_with_last(out: Path, step: int, best_bleu: float,
                    save_best: Callable[[], None]) -> None:
    """On a resume, before it writes anything else: the log and `best` made to agree with
    `last`, the state the run resumes from (its ``step``; its ``best_bleu`` is the authority;
    ``save_best`` saves `best` from it).

    A validation appends its log line first, then saves `last`, then `best` if it is better
    (``Trainer.train``). A run stopped outright between these (``kill -9``, a power cut, a full
    disk) leaves a log line, and maybe a `best`, that `last` does not know of, and the
    resumed run does that validation again. So the log keeps only its lines of steps up to
    `last`'s (rewritten whole, ``write_atomic``): each validation is in it once, as in a run
    never stopped. If `last` has a better dev BLEU than `best` (a stop between the two
    saves), `last` is the step of the best, and `best` is saved from it, as the unbroken run
    saved it. A `best` of a step past `last`'s, which runs of before this order left (they
    saved `best` first), is deleted: it would not belong to a resumed run stopped before that
    step, and one that gets there saves it again, the same. Why trim rather than order the
    writes: a log line written after `last` would be lost by a stop between the two, since
    the resumed run does not validate that step again; written first, it can always be
    dropped and done again."""
    log = out / LOG
    if log.is_file():
        with doing("read", log):
            lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for n, line in enumerate(lines, 1) if _step_of(log, line, n) <= step]
        if len(kept) < len(lines):
            write_atomic(log, "".join(kept).encode("utf-8"))
            print(f"{log}: dropped the lines of {len(lines) - len(kept)} validation(s) "
                  f"past step {step}, `last`'s; this run does them again", file=sys.stderr)
    try:
        best = read_meta(out, "best")
    except FileNotFoundError:
        best = None
    except (CheckpointError, OSError):
        return  # a `best` that cannot be read is left as it is: nothing to compare
    if best is not None and best["step"] > step:
        remove_checkpoint(out, "best")
        print(f"{out}: removed `best` of step {best['step']}, past `last` (step "
              f"{step}): this run saves it again if it gets there", file=sys.stderr)
    elif best_bleu > (-1.0 if best is None else best["best_bleu"]):
        save_best()
        print(f"{out}: saved `best` of step {step} from `last`, which a stop "
              "between the two had left without it", file=sys.stderr)


def _step_of(log: Path, line: str, n: int) -> int:
    """The step of line ``n`` of the log; TrainingError if it is not a validation's."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        raise TrainingError(f"{log}:{n}: not a validation's line (no step); "
                            "mend or remove it, then resume") from None
