"""Checkpoints: exact round trip, every way a checkpoint can be bad, and atomic saves."""

import json

import numpy as np
import pytest

from minirnnsearch import checkpoint
from minirnnsearch.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def state(seed=0):
    rng = np.random.default_rng(seed)
    return ({"W_o": rng.normal(size=(3, 4)).astype(np.float32), "b_o": np.zeros(4, np.float32)},
            {"m/W_o": rng.normal(size=(3, 4)).astype(np.float32), "t": np.asarray(7)},
            {"step": 7, "config": {"hidden": 4}, "src_vocab": {"tokens": ["<pad>", "é"]}})


def test_round_trip_is_exact(tmp_path):
    params, opt, meta = state()
    save_checkpoint(tmp_path / "run", "best", params, opt, meta)
    p2, o2, m2 = load_checkpoint(tmp_path / "run", "best")
    assert set(p2) == set(params) and set(o2) == set(opt)
    for k in params:
        np.testing.assert_array_equal(p2[k], params[k])
        assert p2[k].dtype == params[k].dtype
    np.testing.assert_array_equal(o2["m/W_o"], opt["m/W_o"])
    assert {k: m2[k] for k in meta} == meta and m2["format_version"] == checkpoint.FORMAT_VERSION


def test_missing_directory_and_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere: no such run directory"):
        load_checkpoint(tmp_path / "nowhere")
    save_checkpoint(tmp_path, "last", *state())
    with pytest.raises(CheckpointError, match=r"no checkpoint 'best' \(there: last\)"):
        load_checkpoint(tmp_path, "best")


def test_truncated_npz(tmp_path):
    npz = save_checkpoint(tmp_path, "best", *state())
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"best\.npz: corrupt or truncated"):
        load_checkpoint(tmp_path)


def test_other_format_version(tmp_path):
    save_checkpoint(tmp_path, "best", *state())
    js = tmp_path / "best.json"
    doc = json.loads(js.read_text())
    doc["format_version"] = 0
    js.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="written by format version 0, this is version 1"):
        load_checkpoint(tmp_path)


def test_foreign_npz_and_json(tmp_path):
    np.savez(tmp_path / "best.npz", weights=np.ones(3))
    (tmp_path / "best.json").write_text("{}")
    with pytest.raises(CheckpointError, match="not a minirnnsearch checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "best.json").write_text("not json")
    with pytest.raises(CheckpointError, match=r"best\.json: unreadable"):
        load_checkpoint(tmp_path)


def test_pickled_object_arrays_are_refused(tmp_path):
    save_checkpoint(tmp_path, "best", *state())
    doc = json.loads((tmp_path / "best.json").read_text())
    np.savez(tmp_path / "best.npz", **{"param/x": np.array([{"a": 1}], dtype=object)})
    doc["npz_sha256"] = checkpoint._sha256(tmp_path / "best.npz")
    (tmp_path / "best.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path)


def test_mismatched_pair_is_detected(tmp_path):
    save_checkpoint(tmp_path, "best", *state(0))
    old_json = (tmp_path / "best.json").read_text()
    save_checkpoint(tmp_path, "best", *state(1))
    (tmp_path / "best.json").write_text(old_json)
    with pytest.raises(CheckpointError, match="does not match best.json"):
        load_checkpoint(tmp_path)


def test_interrupted_save_keeps_the_good_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, "last", *state(0))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "last", *state(1))
    monkeypatch.undo()
    params, _, _ = load_checkpoint(tmp_path, "last")
    np.testing.assert_array_equal(params["W_o"], state(0)[0]["W_o"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.npz"]
