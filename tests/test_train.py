"""train.py end to end on a tiny corpus: exact resume, the log, and every bad input."""

import json

import numpy as np
import pytest
from helpers import small_corpus

from minirnnsearch import backend, checkpoint, model, training


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return small_corpus(tmp_path_factory.mktemp("corpus"), 400, 12, 20, seed=11)


def args(corpus, out, *extra):
    return ["--train-src", str(corpus / "train.en"), "--train-tgt", str(corpus / "train.fr"),
            "--dev-src", str(corpus / "dev.en"), "--dev-tgt", str(corpus / "dev.fr"),
            "--preset", "tiny", "--batch-size", "8", "--valid-every", "3", "--device", "cpu",
            "--quiet", "--out", str(out), *extra]


def params_of(run, name="last"):
    return checkpoint.load_checkpoint(run, name)[0]


def test_resume_is_bitwise_exact(corpus, tmp_path):
    assert training.main(args(corpus, tmp_path / "a", "--max-steps", "7")) == 0
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "2")) == 0
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "4", "--resume")) == 0
    # the run's own settings win over the command line's on resume
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "7", "--resume",
                              "--seed", "99", "--lr", "0.5", "--batch-size", "3")) == 0
    a, b = params_of(tmp_path / "a"), params_of(tmp_path / "b")
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    meta = checkpoint.load_checkpoint(tmp_path / "b", "last")[2]
    assert meta["step"] == 7


def test_log_and_checkpoints(corpus, tmp_path, capsys):
    assert training.main(args(corpus, tmp_path, "--max-steps", "6")) == 0
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [3, 6]
    for r in lines:
        assert set(r) >= {"step", "epoch", "loss", "dev_loss", "dev_bleu", "tokens_per_s",
                          "elapsed"}
        assert np.isfinite(r["dev_loss"]) and r["tokens_per_s"] > 0
    err = capsys.readouterr().err
    assert err.count("sacrebleu signature: nrefs:1|case:mixed|eff:no|tok:13a") == 1
    assert "sample:" in err and str(tmp_path / "best.npz") in err
    p, _, meta = checkpoint.load_checkpoint(tmp_path, "best")
    cfg = model.Config.from_dict(meta["config"])
    assert {k: v.shape for k, v in p.items()} == model.param_shapes(cfg)
    assert meta["src_vocab"]["tokens"][:4] == ["<pad>", "<unk>", "<s>", "</s>"]


def test_training_reduces_the_loss(corpus, tmp_path):
    assert training.main(args(corpus, tmp_path, "--max-steps", "60", "--valid-every", "30",
                              "--lr", "0.01")) == 0
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["dev_loss"] < lines[0]["dev_loss"] - 0.3


def fails(argv, capsys, *patterns):
    assert training.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ")
    for p in patterns:
        assert p in err, err
    return err


def test_bad_data_files(corpus, tmp_path, capsys):
    fails(args(corpus, tmp_path / "r") + ["--train-src", str(tmp_path / "missing.en")], capsys,
          "missing.en: no such file")
    (tmp_path / "short.fr").write_text("un\ndeux\n", encoding="utf-8")
    fails(args(corpus, tmp_path / "r") + ["--train-tgt", str(tmp_path / "short.fr")], capsys,
          "short.fr has 2")
    (tmp_path / "bad.fr").write_bytes(b"ok\n" * 4 + b"\xff\xfe\n" + b"ok\n" * 375)
    fails(args(corpus, tmp_path / "r") + ["--dev-tgt", str(tmp_path / "bad.fr")], capsys,
          "bad.fr:5: not valid UTF-8")
    (tmp_path / "empty.en").write_text("", encoding="utf-8")
    fails(args(corpus, tmp_path / "r") + ["--dev-src", str(tmp_path / "empty.en")], capsys,
          "empty.en: empty file")
    fails(["--train-src", str(corpus / "train.en"), "--quiet"], capsys, "go together")


def test_bad_resume(corpus, tmp_path, capsys):
    fails(args(corpus, tmp_path / "none", "--resume"), capsys, "no checkpoint 'last'")
    assert training.main(args(corpus, tmp_path / "r", "--max-steps", "3")) == 0
    npz = tmp_path / "r" / "last.npz"
    good = npz.read_bytes()
    npz.write_bytes(good[:100])
    fails(args(corpus, tmp_path / "r", "--resume"), capsys, "last.npz: corrupt or truncated")
    npz.write_bytes(good)
    js = tmp_path / "r" / "last.json"
    doc = json.loads(js.read_text())
    js.write_text(json.dumps({**doc, "format_version": 99}))
    fails(args(corpus, tmp_path / "r", "--resume"), capsys, "format version 99")


def test_gpu_without_gpu(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(backend, "_gpu_available", lambda: False)
    fails(args(corpus, tmp_path) + ["--device", "gpu"], capsys, "--device gpu")


def test_nan_loss_stops_and_keeps_good_checkpoints(corpus, tmp_path, capsys, monkeypatch):
    assert training.main(args(corpus, tmp_path, "--max-steps", "3")) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.npz")}
    real = model.loss_and_grads

    def exploding(params, cfg, batch):
        loss, grads = real(params, cfg, batch)
        return loss * float("nan"), {k: g * float("nan") for k, g in grads.items()}

    monkeypatch.setattr(model, "loss_and_grads", exploding)
    fails(args(corpus, tmp_path, "--resume", "--max-steps", "60"), capsys,
          "training loss became nan", "untouched")
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.npz")} == before


def test_ctrl_c_saves_last_and_resumes(corpus, tmp_path, capsys, monkeypatch):
    real, calls = model.loss_and_grads, []

    def interrupted(params, cfg, batch):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(params, cfg, batch)

    monkeypatch.setattr(model, "loss_and_grads", interrupted)
    assert training.main(args(corpus, tmp_path, "--max-steps", "20", "--valid-every", "100")) \
        == 130
    assert "saved" in capsys.readouterr().err
    assert checkpoint.load_checkpoint(tmp_path, "last")[2]["step"] == 4
