"""Training: ``train(Settings(...))`` from Python, ``train.py`` (``main``) from the command line.

    from minirnnsearch.training import Settings, train
    result = train(Settings(preset="tiny", max_steps=30, valid_every=10, out="runs/tiny"))

The command line is built from the fields of ``Settings`` (``build_parser``: one flag per
field, its default and help) and parses into them; a resumed run checks the options given
against the run's (``settings.py``). The jobs of a run are in their own modules: ``rundir``
(the run directory: its lock, refusal, ``--overwrite``, the log trimmed on resume),
``traindata`` (the corpus), ``schedule`` (plateau, decay, patience) and ``trainer`` (the loop).
Ctrl-C and SIGTERM both save ``last`` and say how to resume (exit status 130 and 143).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import fields
from typing import TypeVar

from . import distributed
from .backend import DeviceError
from .checkpoint import CheckpointError
from .data.io import DataError
from .oserrors import reports_os_errors
from .rundir import claim
from .runlock import RunInUse
from .settings import Settings, TrainingError, conflict, flag
from .trainer import Result, Terminated, Trainer

T = TypeVar("T")
ONE_LINE = (DataError, CheckpointError, DeviceError, TrainingError, RunInUse)  # "error: ..."


@contextlib.contextmanager
def sigterm_like_ctrl_c() -> Iterator[None]:
    """Within: SIGTERM (what SLURM, Kubernetes, ``timeout`` and systemd send before killing)
    raises ``Terminated``, as Ctrl-C raises KeyboardInterrupt. The previous handler is back on
    the way out. As Python does for SIGINT, a SIGTERM the process was started ignoring stays
    ignored; and signal handlers belong to the main thread: elsewhere this changes nothing."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN):
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_parser() -> argparse.ArgumentParser:
    """train.py's parser: one option per field of ``Settings``, in its group, with its default,
    help, type and choices."""
    ap = argparse.ArgumentParser(
        prog="train.py",
        description="Train RNNsearch (Bahdanau et al. 2014). With no arguments: the built-in "
                    "English->French corpus and the small model.")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in fields(Settings):
        m = f.metadata
        group = groups.get(m["group"]) or groups.setdefault(
            m["group"], ap.add_argument_group(m["group"]))
        if f.default is False:
            group.add_argument(flag(f.name), action="store_true", help=m["help"])
            continue
        options = {k: m[k] for k in ("type", "choices", "metavar") if m[k] is not None}
        group.add_argument(flag(f.name), default=f.default, help=m["help"], **options)
    return ap


def given_options(ap: argparse.ArgumentParser, argv: list[str] | None) -> list[str]:
    """The options (argparse dests) that ``argv`` gives, not left to their defaults: parsed
    again into a namespace whose every attribute is preset, which argparse then leaves alone
    unless the option is there."""
    unset = object()
    probe = argparse.Namespace(**dict.fromkeys(vars(ap.parse_args(argv)), unset))
    return [k for k, v in vars(ap.parse_args(argv, namespace=probe)).items() if v is not unset]


def parse(argv: list[str] | None = None, base: Settings | None = None
          ) -> tuple[Settings, list[str]]:
    """The settings of a train.py command line (over ``base``'s instead of the defaults, if
    given) and the options it gives; a bad value or two options that do not go together end it
    as argparse does (usage, one line, status 2)."""
    ap = build_parser()
    if base is not None:
        ap.set_defaults(**dataclasses.asdict(base))
    settings = Settings(**vars(ap.parse_args(argv)))
    given = given_options(ap, argv)
    problem = conflict(settings, given)
    if problem:
        ap.error(problem)
    return settings, given


def train(settings: Settings, given: Collection[str] | None = None) -> Result:
    """Train as train.py does with these settings; the result when a rule stopped the run.

    A new run refuses a directory that holds a run (unless ``overwrite``); with ``resume``, the
    run in ``settings.out`` continues with its own settings: the fields in ``given`` (default:
    those that differ from their defaults) are checked against the run's, and the result's
    ``settings`` are the run's. Raises TrainingError (a bad combination, a NaN loss, a refusal),
    DataError, CheckpointError, DeviceError or RunInUse, each one line; KeyboardInterrupt (Ctrl-C,
    or ``Terminated`` for SIGTERM) after saving ``last``."""
    given = settings.changed() if given is None else given
    problem = conflict(settings, given)
    if problem:
        raise TrainingError(problem)
    group = distributed.init()
    with sigterm_like_ctrl_c(), group.session():
        return _train(settings, given, group)


def _train(settings: Settings, given: Collection[str], group: distributed.Local) -> Result:
    """The run, with its directory held for its life; under MPI every rank sets up together."""
    errors = (*ONE_LINE, OSError)
    with group.together(lambda: claim(settings, group.is_root), errors):
        trainer = group.together(lambda: Trainer(settings, group, given=given), errors)
        return trainer.train()


def status(call: Callable[[], T]) -> tuple[int, T | None]:
    """``call()`` as a command runs it: (0, its value), or the exit status of its end: 2 after
    an error's one line on stderr, 130 after Ctrl-C, 128 + the signal's number after SIGTERM."""
    try:
        return 0, call()
    except (*ONE_LINE, distributed.RankError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2, None
    except Terminated as e:
        return 128 + e.signum, None  # 143, as if the signal had ended the process
    except KeyboardInterrupt:
        return 128 + signal.SIGINT, None  # 130


@reports_os_errors  # a failure of the system (full disk, unwritable --out): one line, status 1
def main(argv: list[str] | None = None) -> int:
    return run(argv)[0]


def run(argv: list[str] | None = None) -> tuple[int, Result | None]:
    """What ``main`` does: its exit status, and the result when the run ended by a rule."""
    settings, given = parse(argv)
    group = distributed.init()
    # SIGTERM like Ctrl-C; under MPI the session's own handlers take both signals over (every
    # rank sets a flag and all stop after the same step)
    with sigterm_like_ctrl_c(), group.session():  # under MPI: only rank 0 prints
        return status(lambda: _train(settings, given, group))
