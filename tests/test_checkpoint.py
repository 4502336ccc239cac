"""Checkpoints: exact round trip, every way a checkpoint can be bad, and saves that stop
half-way."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from minirnnsearch import checkpoint, training
from minirnnsearch.backend import get_backend, to_host
from minirnnsearch.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    checkpoint_exists,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from minirnnsearch.optim import make_optimizer


def state(seed=0):
    """(params, optimiser state, meta) as a training run would save them."""
    rng = np.random.default_rng(seed)
    params = {"W_o": rng.normal(size=(3, 4)).astype(np.float32), "b_o": np.zeros(4, np.float32)}
    opt = make_optimizer("adadelta", params)
    opt.step(params, {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()})
    meta = {"step": 1, "config": {"hidden": 4}, "src_vocab": {"tokens": ["<pad>", "é"]},
            "best_bleu": -1.0}
    return params, opt.state_dict(), meta


def fails(path, reason, run_dir, name="best"):
    """load_checkpoint raises a one-line CheckpointError naming ``path`` and ``reason``."""
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*" + reason) as e:
        load_checkpoint(run_dir, name)
    assert "\n" not in str(e.value)


def assert_loads(run_dir, name, expected):
    params, opt, _ = load_checkpoint(run_dir, name)
    for k in expected[0]:
        np.testing.assert_array_equal(params[k], expected[0][k])


def test_round_trip_is_exact(tmp_path):
    params, opt, meta = state()
    npz = save_checkpoint(tmp_path / "runs" / "a", "best", params, opt, meta)
    assert npz == tmp_path / "runs" / "a" / "best.npz"
    assert checkpoint_exists(tmp_path / "runs" / "a", "best")
    assert not checkpoint_exists(tmp_path / "runs" / "a", "last")
    p2, o2, m2 = load_checkpoint(tmp_path / "runs" / "a", "best")
    assert set(p2) == set(params) and set(o2) == set(opt)
    for saved, loaded in ((params, p2), (opt, o2)):
        for k in saved:
            assert loaded[k].dtype == saved[k].dtype and isinstance(loaded[k], np.ndarray)
            np.testing.assert_array_equal(loaded[k], saved[k])
    assert {k: m2[k] for k in meta} == meta and m2["format_version"] == FORMAT_VERSION
    assert sorted(p.name for p in npz.parent.iterdir()) == ["best.json", "best.npz"]


def test_device_arrays_are_saved_and_training_continues_bitwise(tmp_path):
    """Parameters and Adam state on array_api_strict's device1: saved, loaded into a fresh
    optimiser, the next step equals the one the unbroken run takes."""
    b = get_backend("strict")
    rng = np.random.default_rng(0)
    params = {"W_a": b.asarray(rng.normal(size=(2, 3)), dtype="float32")}
    grad = {"W_a": b.asarray(rng.normal(size=(2, 3)), dtype="float32")}
    opt = make_optimizer("adam", params)
    opt.step(params, grad)
    save_checkpoint(tmp_path, "last", params, opt.state_dict(), {"step": 1})
    p2, o2, _ = load_checkpoint(tmp_path, "last")
    resumed = {k: b.asarray(v) for k, v in p2.items()}
    opt2 = make_optimizer("adam", resumed)
    opt2.load_state_dict({k: b.asarray(v) for k, v in o2.items()})
    opt.step(params, grad)
    opt2.step(resumed, grad)
    np.testing.assert_array_equal(to_host(resumed["W_a"]), to_host(params["W_a"]))


def test_missing_directory_empty_directory_and_missing_checkpoint(tmp_path):
    fails(tmp_path / "nowhere", "no such run directory", tmp_path / "nowhere")
    fails(tmp_path, r"no checkpoint 'best' \(there: none\)", tmp_path)
    save_checkpoint(tmp_path, "last", *state())
    fails(tmp_path, r"no checkpoint 'best' \(there: last\)", tmp_path)
    (tmp_path / "last.json").unlink()
    fails(tmp_path / "last.json", "missing, so checkpoint 'last' is incomplete", tmp_path, "last")


def test_truncated_npz(tmp_path):
    npz = save_checkpoint(tmp_path, "best", *state())
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    fails(npz, "corrupt or truncated", tmp_path)
    npz.write_bytes(b"")
    fails(npz, "corrupt or truncated", tmp_path)


def test_unreadable_or_foreign_json(tmp_path):
    save_checkpoint(tmp_path, "best", *state())
    js = tmp_path / "best.json"
    js.write_text("{not json")
    fails(js, "unreadable", tmp_path)
    js.write_bytes(b"\xff\xfe")
    fails(js, "unreadable", tmp_path)
    js.write_text("{}")
    fails(js, r"not a minirnnsearch checkpoint \(no format_version\)", tmp_path)


def test_other_format_version(tmp_path):
    save_checkpoint(tmp_path, "best", *state())
    js = tmp_path / "best.json"
    js.write_text(json.dumps({**json.loads(js.read_text()), "format_version": 0}))
    fails(js, "written by format version 0, this is version 1", tmp_path)


def replace_npz(tmp_path, write):
    """Put another file in place of best.npz, with a json fingerprint that matches it, so only
    the content of the npz is wrong."""
    save_checkpoint(tmp_path, "best", *state())
    npz, js = tmp_path / "best.npz", tmp_path / "best.json"
    with open(npz, "wb") as f:
        write(f)
    doc = json.loads(js.read_text())
    js.write_text(json.dumps({**doc, "npz_sha256": checkpoint._sha256(npz)}))
    return npz


def test_foreign_npz(tmp_path):
    npz = replace_npz(tmp_path, lambda f: np.savez(f, weights=np.ones(3)))
    fails(npz, r"not a minirnnsearch checkpoint \(no param/ arrays\)", tmp_path)
    npz = replace_npz(tmp_path, lambda f: np.save(f, np.ones(3)))
    fails(npz, "not a minirnnsearch checkpoint", tmp_path)


def test_pickled_object_arrays_are_refused(tmp_path):
    npz = replace_npz(tmp_path, lambda f: np.savez(f, **{"param/x": np.array([{}], object)}))
    fails(npz, "corrupt or truncated.*allow_pickle", tmp_path)


def test_mismatched_pair_is_detected(tmp_path):
    save_checkpoint(tmp_path, "best", *state(0))
    old_json = (tmp_path / "best.json").read_text()
    save_checkpoint(tmp_path, "best", *state(1))
    (tmp_path / "best.json").write_text(old_json)
    fails(tmp_path / "best.npz", "does not match best.json", tmp_path)


def interrupt_on_call(monkeypatch, target, attr, n):
    """Make ``target.attr`` raise KeyboardInterrupt on its n-th call (1-based), after
    the real call for savez so that a partial file exists, before it for os.replace."""
    real = getattr(target, attr)
    calls = []

    def patched(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            if attr == "savez":
                real(*args, **kwargs)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(target, attr, patched)


@pytest.mark.parametrize(("target", "attr", "n"), [
    (checkpoint.np, "savez", 2),        # while the second save writes its npz
    (checkpoint.os, "replace", 3),      # the second save's first rename
])
def test_interrupted_save_keeps_the_good_checkpoint(tmp_path, monkeypatch, target, attr, n):
    good = state(0)
    interrupt_on_call(monkeypatch, target, attr, n)
    save_checkpoint(tmp_path, "last", *good)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "last", *state(1))
    monkeypatch.undo()
    assert_loads(tmp_path, "last", good)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.npz"]


def test_unserialisable_meta_keeps_the_good_checkpoint(tmp_path):
    good = state(0)
    save_checkpoint(tmp_path, "best", *good)
    params, opt, meta = state(1)
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path, "best", params, opt, {**meta, "step": object()})
    assert_loads(tmp_path, "best", good)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "best.npz"]


@pytest.mark.parametrize(("sig", "handled", "raised"), [
    (signal.SIGINT, contextlib.nullcontext, KeyboardInterrupt),
    (signal.SIGTERM, training.sigterm_like_ctrl_c, training.Terminated),
])
def test_a_signal_between_the_two_renames_is_held_back(tmp_path, monkeypatch, sig, handled,
                                                       raised):
    """Ctrl-C, or SIGTERM under training's handler, right after the npz is renamed: the json is
    renamed too, then the signal's exception; every handler is as it was before."""
    save_checkpoint(tmp_path, "last", *state(0))
    real, before = os.replace, signal.getsignal(sig)

    def replace_then_signal(src, dst):
        real(src, dst)
        if str(dst).endswith(".npz"):
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(checkpoint.os, "replace", replace_then_signal)
    new = state(1)
    with pytest.raises(raised), handled():
        save_checkpoint(tmp_path, "last", *new)
    monkeypatch.undo()
    assert signal.getsignal(sig) is before
    assert_loads(tmp_path, "last", new)


def test_crash_between_the_two_renames_is_detected(tmp_path, monkeypatch):
    """A hard stop after the npz rename (simulated by the json rename failing) leaves a new npz
    beside the old json: refused by the fingerprint, never loaded as if they belonged together."""
    save_checkpoint(tmp_path, "last", *state(0))
    interrupt_on_call(monkeypatch, checkpoint.os, "replace", 2)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "last", *state(1))
    monkeypatch.undo()
    fails(tmp_path / "last.npz", "does not match last.json", tmp_path, "last")


# a child process saving `last` twice: the second save is stopped by `how` (what it sends itself)
SAVE_AND_DIE = """
import os, signal, sys
import numpy as np
from minirnnsearch import checkpoint
run, how = sys.argv[1], sys.argv[2]
def state(x):
    return {"W_o": np.full((2, 3), x, np.float32)}, {}, {"step": int(x)}
checkpoint.save_checkpoint(run, "last", *state(1))
real = os.replace
def replace(src, dst):
    if how == "kill -9" and str(dst).endswith(".npz"):
        os.kill(os.getpid(), signal.SIGKILL)  # both temporaries written, nothing renamed
    real(src, dst)
    if how == "SIGTERM" and str(dst).endswith(".npz"):
        os.kill(os.getpid(), signal.SIGTERM)  # default handler: ends the process
checkpoint.os.replace = replace
checkpoint.save_checkpoint(run, "last", *state(2))
print("not reached")
"""


def die_while_saving(run, how):
    """(pid, return code, stdout) of the child once it has ended."""
    proc = subprocess.Popen([sys.executable, "-c", SAVE_AND_DIE, str(run), how],
                            stdout=subprocess.PIPE, text=True)
    out = proc.communicate(timeout=120)[0]
    return proc.pid, proc.returncode, out


def test_sigterm_with_the_default_handler_ends_the_process_after_both_renames(tmp_path):
    _, code, out = die_while_saving(tmp_path, "SIGTERM")
    assert code == -signal.SIGTERM and "not reached" not in out
    params, _, meta = load_checkpoint(tmp_path, "last")
    assert meta["step"] == 2 and params["W_o"][0, 0] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.npz"]


def test_kill_9_during_a_save_leaves_temporaries_removed_later(tmp_path):
    pid, code, _ = die_while_saving(tmp_path, "kill -9")
    assert code == -signal.SIGKILL
    assert load_checkpoint(tmp_path, "last")[2]["step"] == 1  # the good checkpoint survives
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
    assert left == [f".last.json.{pid}.tmp", f".last.npz.{pid}.tmp"]
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.npz"]


def test_only_temporaries_of_ended_processes_are_removed(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        gone = [f".best.npz.{ended.pid}.tmp", f".best.json.{ended.pid}.tmp",
                f".my.run.npz.{ended.pid}.tmp"]
        kept = [f".best.npz.{alive.pid}.tmp",          # a live process's save in progress
                f".best.npz.{os.getpid()}.tmp",        # this process's own
                f".notes.txt.{ended.pid}.tmp",         # not a checkpoint's file
                f"best.npz.{ended.pid}.tmp", ".best.npz.tmp", f".best.npz.{ended.pid}",
                f".best.npz.{ended.pid}.tmp.bak", "best.npz", "notes.tmp"]
        for name in gone + kept:
            (tmp_path / name).write_bytes(b"x")
        (tmp_path / f".dir.npz.{ended.pid}.tmp").mkdir()  # not a file
        removed = remove_stale_temporaries(tmp_path)
        assert alive.poll() is None
    finally:
        alive.kill()
        alive.wait()
    assert sorted(p.name for p in removed) == sorted(gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*kept, f".dir.npz.{ended.pid}.tmp"])
    assert remove_stale_temporaries(tmp_path / "nowhere") == []
