"""Checkpoints: exact round trip, every way a checkpoint can be bad, and saves that stop
half-way."""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from minirnnsearch import checkpoint
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


def named_npz(run_dir, name):
    """The npz that checkpoint ``name``'s json names."""
    return run_dir / json.loads((run_dir / f"{name}.json").read_text())["npz"]


def test_round_trip_is_exact(tmp_path):
    params, opt, meta = state()
    npz = save_checkpoint(tmp_path / "runs" / "a", "best", params, opt, meta)
    assert npz == named_npz(tmp_path / "runs" / "a", "best")
    assert re.fullmatch(r"best\.[0-9a-f]{16}\.npz", npz.name)
    assert checkpoint_exists(tmp_path / "runs" / "a", "best")
    assert not checkpoint_exists(tmp_path / "runs" / "a", "last")
    p2, o2, m2 = load_checkpoint(tmp_path / "runs" / "a", "best")
    assert set(p2) == set(params) and set(o2) == set(opt)
    for saved, loaded in ((params, p2), (opt, o2)):
        for k in saved:
            assert loaded[k].dtype == saved[k].dtype and isinstance(loaded[k], np.ndarray)
            np.testing.assert_array_equal(loaded[k], saved[k])
    assert {k: m2[k] for k in meta} == meta and m2["format_version"] == FORMAT_VERSION
    assert m2["npz_sha256"].startswith(npz.name.split(".")[1])
    assert sorted(p.name for p in npz.parent.iterdir()) == sorted(["best.json", npz.name])


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
    npz = named_npz(tmp_path, "last")
    (tmp_path / "last.json").unlink()
    fails(tmp_path / "last.json", "missing, so checkpoint 'last' is incomplete", tmp_path, "last")
    save_checkpoint(tmp_path, "last", *state())
    npz.unlink()
    fails(npz, "missing, so checkpoint 'last' is incomplete", tmp_path, "last")


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
    fails(js, "written by format version 0, this code reads versions 1 and 2", tmp_path)


def replace_npz(tmp_path, write):
    """Put another file in place of best's npz, with a json fingerprint that matches it, so only
    the content of the npz is wrong."""
    npz, js = save_checkpoint(tmp_path, "best", *state()), tmp_path / "best.json"
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
    npz = save_checkpoint(tmp_path, "best", *state(0))
    npz.write_bytes(save_checkpoint(tmp_path / "other", "best", *state(1)).read_bytes())
    fails(npz, "does not match best.json", tmp_path)


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
    npz = save_checkpoint(tmp_path, "last", *good)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "last", *state(1))
    monkeypatch.undo()
    assert_loads(tmp_path, "last", good)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.json", npz.name])


def test_unserialisable_meta_keeps_the_good_checkpoint(tmp_path):
    good = state(0)
    good_npz = save_checkpoint(tmp_path, "best", *good)
    params, opt, meta = state(1)
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path, "best", params, opt, {**meta, "step": object()})
    assert_loads(tmp_path, "best", good)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["best.json", good_npz.name])


def test_a_stop_between_the_two_renames_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    """Ctrl-C after the new npz is renamed, before the json is: the json still names the old
    npz, which loads; the new npz, which no json names, goes with the next save."""
    good = state(0)
    old = save_checkpoint(tmp_path, "last", *good)
    interrupt_on_call(monkeypatch, checkpoint.os, "replace", 2)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "last", *state(1))
    monkeypatch.undo()
    assert_loads(tmp_path, "last", good)
    assert named_npz(tmp_path, "last") == old
    newer = save_checkpoint(tmp_path, "last", *state(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.json", newer.name])


def write_version_1(run_dir, name, params, opt, meta):
    """Checkpoint ``name`` as format version 1 wrote it: NAME.npz, and NAME.json with the
    npz's SHA-256 but no name of it."""
    npz = run_dir / f"{name}.npz"
    np.savez(npz, **{f"param/{k}": v for k, v in params.items()},
             **{f"optim/{k}": v for k, v in opt.items()})
    doc = {**meta, "format_version": 1, "npz_sha256": checkpoint._sha256(npz)}
    (run_dir / f"{name}.json").write_text(json.dumps(doc))


def test_a_checkpoint_of_format_version_1_loads_and_its_next_save_replaces_it(tmp_path):
    """Runs saved by format version 1 (NAME.npz beside NAME.json) load as they did, nothing of
    theirs counts as left over, and the next save of one checkpoint writes version 2 and deletes
    its NAME.npz, leaving the other checkpoint as it was."""
    good = state(0)
    for name in ("best", "last"):
        write_version_1(tmp_path, name, *good)
    assert checkpoint_exists(tmp_path, "last")
    assert_loads(tmp_path, "last", good)
    assert load_checkpoint(tmp_path, "last")[2]["format_version"] == 1
    assert remove_stale_temporaries(tmp_path) == []
    npz = save_checkpoint(tmp_path, "last", *state(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["best.json", "best.npz", "last.json", npz.name])
    assert load_checkpoint(tmp_path, "last")[2]["format_version"] == FORMAT_VERSION == 2
    assert_loads(tmp_path, "last", state(1))
    assert_loads(tmp_path, "best", good)


# a child process saving `last` twice, killed (SIGKILL) at `point` of the second save
SAVE_AND_DIE = """
import os, signal, sys
import numpy as np
from minirnnsearch import checkpoint
run, point = sys.argv[1], sys.argv[2]
def state(x):
    return {"W_o": np.full((2, 3), x, np.float32)}, {}, {"step": int(x)}
checkpoint.save_checkpoint(run, "last", *state(1))
real_replace, real_remove = os.replace, checkpoint.remove_quietly
def die():
    os.kill(os.getpid(), signal.SIGKILL)
def replace(src, dst):
    if point == "before the renames" and str(dst).endswith(".npz"):
        die()  # both temporaries written, nothing renamed
    real_replace(src, dst)
    if point == "between the renames" and str(dst).endswith(".npz"):
        die()  # the new npz in place beside the old, the json the old one
def remove_quietly(path):
    if point == "after the renames" and str(path).endswith(".npz"):
        die()  # the new json naming the new npz, the old npz not deleted yet
    real_remove(path)
checkpoint.os.replace = replace
checkpoint.remove_quietly = remove_quietly
checkpoint.save_checkpoint(run, "last", *state(2))
print("not reached")
"""


def child_npz(tmp_path, x):
    """The npz name of the child's checkpoint of step ``x`` (npz files are deterministic)."""
    return save_checkpoint(tmp_path / f"as-child-{x}", "last",
                           {"W_o": np.full((2, 3), x, np.float32)}, {}, {"step": x}).name


@pytest.mark.parametrize(("point", "step"), [
    ("before the renames", 1), ("between the renames", 1), ("after the renames", 2)])
def test_kill_9_at_any_moment_of_a_save_leaves_a_checkpoint_that_loads(tmp_path, point, step):
    """``kill -9`` at each moment of a save (before its renames, between them, before it
    deletes the old npz): the checkpoint loads, the old one until the json is renamed and the
    new one from then on; what the save left (its temporaries, an npz that no json names) is
    removed when the next run starts (``remove_stale_temporaries``), and nothing else."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", SAVE_AND_DIE, str(run), point],
                            stdout=subprocess.PIPE, text=True)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == -signal.SIGKILL and "not reached" not in out
    params, _, meta = load_checkpoint(run, "last")
    assert meta["step"] == step and params["W_o"][0, 0] == step
    assert meta["npz"] == child_npz(tmp_path, step)
    temporaries = [f".last.json.{proc.pid}.tmp", f".last.npz.{proc.pid}.tmp"]
    left = {"before the renames": temporaries,
            "between the renames": [temporaries[0], child_npz(tmp_path, 2)],
            "after the renames": [child_npz(tmp_path, 1)]}[point]
    assert sorted(p.name for p in run.iterdir()) == sorted(["last.json", meta["npz"], *left])
    assert sorted(p.name for p in remove_stale_temporaries(run)) == sorted(left)
    assert sorted(p.name for p in run.iterdir()) == sorted(["last.json", meta["npz"]])
    assert load_checkpoint(run, "last")[2]["step"] == step


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


def test_a_save_between_reading_the_json_and_opening_its_npz_is_followed(tmp_path, monkeypatch):
    """translate.py loading while training saves: the npz the json named a moment ago is gone,
    and the json, read again, names the new one."""
    old, new = state(0), state(1)
    save_checkpoint(tmp_path, "last", *old)
    stale = checkpoint.read_meta(tmp_path, "last")
    save_checkpoint(tmp_path, "last", *new)  # deletes the npz that ``stale`` names
    real, calls = checkpoint.read_meta, []

    def read_meta(run_dir, name):
        calls.append(name)
        return stale if len(calls) == 1 else real(run_dir, name)

    monkeypatch.setattr(checkpoint, "read_meta", read_meta)
    assert_loads(tmp_path, "last", new)
    assert len(calls) == 3  # the stale json, the check that it changed, the new one
    (tmp_path / json.loads((tmp_path / "last.json").read_text())["npz"]).unlink()
    calls.clear()
    fails(tmp_path, "missing, so checkpoint 'last' is incomplete", tmp_path, "last")
