"""train.py end to end on a tiny corpus: exact resume, the log, and every bad input."""

import dataclasses
import functools
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import sacrebleu
from helpers import small_corpus

from minirnnsearch import (
    backend,
    checkpoint,
    model,
    settings,
    traindata,
    trainer,
    training,
    translation,
)
from minirnnsearch.data import corpus as data_corpus
from minirnnsearch.data.batching import make_batch


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
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "7", "--resume")) == 0
    a, b = params_of(tmp_path / "a"), params_of(tmp_path / "b")
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    meta = checkpoint.load_checkpoint(tmp_path / "b", "last")[2]
    assert meta["step"] == 7


def test_train_with_settings_is_what_the_command_line_runs(corpus, tmp_path):
    """The Python API: the same checkpoints as train.py; a resume keeps the run's settings
    that the caller left at their defaults and refuses one it set to another value."""
    assert training.main(args(corpus, tmp_path / "cli", "--max-steps", "4")) == 0
    given, _ = training.parse(args(corpus, tmp_path / "api", "--max-steps", "4"))
    result = training.train(given)
    assert (result.updates, result.stop) == (4, "--max-steps 4 reached")
    assert result.settings == dataclasses.replace(
        given, **settings.CORPUS_DEFAULTS[settings.FILES])
    a, b = params_of(tmp_path / "cli"), params_of(tmp_path / "api")
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    more = training.train(training.Settings(out=str(tmp_path / "api"), resume=True,
                                            max_steps=6, device="cpu", quiet=True))
    assert more.updates == 6 and (more.settings.batch_size, more.settings.preset) == (8, "tiny")
    with pytest.raises(training.TrainingError, match="--seed 5: the run in .* keeps it"):
        training.train(training.Settings(out=str(tmp_path / "api"), resume=True, seed=5,
                                         device="cpu", quiet=True))


def test_resume_is_bitwise_exact_with_the_papers_settings(corpus, tmp_path):
    """A run with the paper's initialisation and pools (the defaults of older runs) is resumed
    without naming them, and keeps them."""
    assert training.main(args(corpus, tmp_path / "a", "--max-steps", "5",
                              "--init", "paper", "--sort-pool", "20")) == 0
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "2",
                              "--init", "paper", "--sort-pool", "20")) == 0
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "5", "--resume")) == 0
    assert training.main(args(corpus, tmp_path / "c", "--max-steps", "5")) == 0
    a, b, c = (params_of(tmp_path / r) for r in "abc")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert any(not np.array_equal(a[k], c[k]) for k in a)  # other batches than the default's
    meta = checkpoint.load_checkpoint(tmp_path / "b", "last")[2]
    assert (meta["config"]["init"], meta["sort_pool"]) == ("paper", 20)


def test_logged_training_loss_is_the_mean_over_the_validation_interval(corpus, tmp_path,
                                                                       monkeypatch):
    """A validation's "loss" in log.jsonl is the mean training loss of every update since the
    previous validation, not only of the updates since the last read (every LOG_EVERY): across
    a read, across an epoch's end (22 updates an epoch on this corpus: one in each interval) and for
    a stop between two validations."""
    losses, step = [], training.Trainer.train_step

    def recording(self, batch):
        loss, n_tokens = step(self, batch)
        losses.append(float(loss))
        return loss, n_tokens

    monkeypatch.setattr(training.Trainer, "train_step", recording)
    every = trainer.LOG_EVERY + 10  # a read at LOG_EVERY inside each interval
    assert training.main(args(corpus, tmp_path, "--valid-every", str(every),
                              "--max-steps", str(2 * every + 7))) == 0
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    ends = [every, 2 * every, 2 * every + 7]
    assert [r["step"] for r in lines] == ends
    assert [r["epoch"] for r in lines] == [2, 3, 4]  # ends at 22, 44, 66: one in each interval
    for r, start, end in zip(lines, [0, *ends[:-1]], ends, strict=True):
        assert r["loss"] == pytest.approx(np.mean(losses[start:end]), rel=1e-5)


def test_log_and_checkpoints(corpus, tmp_path, capsys):
    assert training.main(args(corpus, tmp_path, "--max-steps", "6")) == 0
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [3, 6]
    for r in lines:
        assert set(r) >= {"step", "epoch", "loss", "dev_loss", "dev_bleu", "tokens_per_s",
                          "elapsed", "valid_seconds"}
        assert np.isfinite(r["dev_loss"])  # tokens_per_s and elapsed: measured, not tested
    err = capsys.readouterr().err
    assert err.count("sacrebleu signature: nrefs:1|case:mixed|eff:no|tok:13a") == 1
    assert "sample:" in err and f"checkpoint {tmp_path / 'best'}" in err
    n_pairs = int(re.search(r"data: (\d+) training pairs", err).group(1))
    n, share = re.search(r"batches: (\d+) an epoch of up to 8 pairs, (\S+)% of their cells "
                         r"padding \(--sort-pool 0\)", err).groups()  # the default
    assert int(n) == -(-n_pairs // 8)
    assert 0 < float(share) < 50
    meta = checkpoint.load_checkpoint(tmp_path, "last")[2]
    assert (meta["config"]["init"], meta["sort_pool"]) == ("fan-in", 0)  # train.py's defaults
    p, _, meta = checkpoint.load_checkpoint(tmp_path, "best")
    cfg = model.Config.from_dict(meta["config"])
    assert {k: v.shape for k, v in p.items()} == model.param_shapes(cfg)
    assert meta["src_vocab"]["tokens"][:4] == ["<pad>", "<unk>", "<s>", "</s>"]


def test_training_reduces_the_loss(corpus, tmp_path):
    # the defaults under which this bound was set (appendix B.1's weights, pools of 20, no
    # dropout): from fan-in's N(0, 1) embeddings these 174 pairs are overfitted at once (dev
    # loss 4.27 -> 4.15 when written, the training loss 3.76 -> 2.64); whole-epoch batches gave
    # 4.72 -> 4.53
    assert training.main(args(corpus, tmp_path, "--max-steps", "60", "--valid-every", "30",
                              "--lr", "0.01", "--init", "paper", "--sort-pool", "20",
                              "--dropout", "0")) == 0
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
    with pytest.raises(SystemExit) as e:  # own files and a built-in pair: which one is meant?
        training.main(args(corpus, tmp_path / "r", "--pair", "en-de"))
    assert e.value.code == 2 and not (tmp_path / "r").exists()
    assert "--pair chooses a built-in corpus" in capsys.readouterr().err.splitlines()[-1]


def test_bad_resume(corpus, tmp_path, capsys):
    fails(args(corpus, tmp_path / "none", "--resume"), capsys, "no checkpoint 'last'")
    assert training.main(args(corpus, tmp_path / "r", "--max-steps", "3")) == 0
    npz = tmp_path / "r" / json.loads((tmp_path / "r" / "last.json").read_text())["npz"]
    good = npz.read_bytes()
    npz.write_bytes(good[:100])
    fails(args(corpus, tmp_path / "r", "--resume"), capsys, f"{npz}: corrupt or truncated")
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

    def exploding(params, cfg, batch, masks=None, label_smoothing=0.0):
        loss, grads = real(params, cfg, batch, masks, label_smoothing)
        return loss * float("nan"), {k: g * float("nan") for k, g in grads.items()}

    monkeypatch.setattr(model, "loss_and_grads", exploding)
    fails(args(corpus, tmp_path, "--resume", "--max-steps", "60"), capsys,
          "training loss became nan", "untouched")
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.npz")} == before


def test_ctrl_c_saves_last_and_resumes(corpus, tmp_path, capsys, monkeypatch):
    real, calls = model.loss_and_grads, []

    def interrupted(params, cfg, batch, masks=None, label_smoothing=0.0):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(params, cfg, batch, masks, label_smoothing)

    monkeypatch.setattr(model, "loss_and_grads", interrupted)
    assert training.main(args(corpus, tmp_path, "--max-steps", "20", "--valid-every", "100")) \
        == 130
    assert "saved" in capsys.readouterr().err
    assert checkpoint.load_checkpoint(tmp_path, "last")[2]["step"] == 4


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--batch-size", "0", "must be at least 1, got 0"),
    ("--hidden", "0", "must be at least 1, got 0"),
    ("--emb", "-8", "must be at least 1, got -8"),
    ("--lr", "-1", "must be more than 0, got -1"),
    ("--lr", "0", "must be more than 0, got 0"),
    ("--clip", "0", "must be more than 0, got 0"),
    ("--max-len", "0", "must be at least 1, got 0"),
    ("--vocab-size", "4", "must be at least 5 (the 4 special tokens and one word), got 4"),
    ("--epochs", "0", "must be at least 1, got 0"),
    ("--max-steps", "0", "must be at least 1, got 0"),
    ("--max-time", "-5", "must be more than 0, got -5"),
    ("--valid-every", "0", "must be at least 1, got 0"),
    ("--valid-size", "0", "must be at least 1, got 0"),
    ("--patience", "0", "must be at least 1, got 0"),
    ("--seed", "-1", "must be at least 0, got -1"),
    ("--lr-decay-patience", "-1", "must be at least 0, got -1"),
    ("--max-steps", "ten", "must be an integer, got 'ten'"),
    ("--lr", "nan", "must be a finite number, got 'nan'"),
    ("--dropout", "1", "must be in [0, 1), got 1"),
    ("--dropout", "-0.1", "must be in [0, 1), got -0.1"),
    ("--label-smoothing", "1", "must be in [0, 1), got 1"),
    ("--subword", "0", "must be at least 1, got 0"),
])
def test_bad_flags_get_one_line_from_argparse(corpus, tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as e:
        training.main(args(corpus, tmp_path / "r", flag, value))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"train.py: error: argument {flag}: {message}"
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_out_naming_a_file_is_refused(corpus, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    for out, message in ((tmp_path / "notes.txt", "is an existing file, not a directory"),
                         (tmp_path / "notes.txt" / "run", "(in ")):
        with pytest.raises(SystemExit) as e:
            training.main(args(corpus, out))
        assert e.value.code == 2
        last = capsys.readouterr().err.splitlines()[-1]
        assert last.startswith(f"train.py: error: argument --out: {tmp_path / 'notes.txt'}")
        assert message in last
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_sigterm_saves_last_like_ctrl_c_and_resumes(corpus, tmp_path, capsys, monkeypatch):
    """SIGTERM really delivered to this process at the 5th update: ``last`` holds step 4, the
    message says how to resume, exit status 143, the previous handler is back, and the run
    resumes from there."""
    real, calls = model.loss_and_grads, []

    def terminated(params, cfg, batch, masks=None, label_smoothing=0.0):
        calls.append(1)
        if len(calls) == 5:
            signal.raise_signal(signal.SIGTERM)
        return real(params, cfg, batch, masks, label_smoothing)

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(model, "loss_and_grads", terminated)
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "20",
                              "--valid-every", "100")) == 143
    err = capsys.readouterr().err
    assert (f"stopped by SIGTERM: saved checkpoint {tmp_path / 'b' / 'last'} at step 4; "
            f"continue with --resume --out {tmp_path / 'b'}") in err
    assert signal.getsignal(signal.SIGTERM) is before
    assert checkpoint.load_checkpoint(tmp_path / "b", "last")[2]["step"] == 4
    monkeypatch.undo()
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "5", "--resume")) == 0
    assert "resuming" in capsys.readouterr().err
    assert checkpoint.load_checkpoint(tmp_path / "b", "last")[2]["step"] == 5


@pytest.mark.parametrize(("sig", "status", "said"), [
    (signal.SIGTERM, 143, "stopped by SIGTERM: saved"),
    (signal.SIGINT, 130, "interrupted: saved"),
])
def test_signal_from_outside_saves_last(corpus, tmp_path, sig, status, said):
    """A training process sent SIGTERM (what SLURM, Kubernetes, ``timeout`` and systemd send)
    or SIGINT (Ctrl-C) by another process once it has validated: both save ``last``, say how to
    resume and exit with 128 + the signal's number."""
    out = tmp_path / "run"
    # the child starts from the signal handlers a shell gives (a test runner may ignore SIGINT)
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
            "from minirnnsearch.training import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen(
        [sys.executable, "-c", code,
         *args(corpus, out, "--max-time", "3", "--patience", "1000000")],
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "log.jsonl").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "no validation within 2 minutes"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert said in err and f"continue with --resume --out {out}" in err
    assert "Traceback" not in err
    assert checkpoint.load_checkpoint(out, "last")[2]["step"] >= 3


def test_stale_temporaries_of_dead_runs_are_removed_at_start(corpus, tmp_path, capsys):
    """What ``kill -9`` during a save leaves: temporaries named with the pid of a process that
    is gone are removed at the next start; one of a live process and other files stay."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        tmp_path.mkdir(exist_ok=True)
        dead = [tmp_path / f".last.npz.{ended.pid}.tmp", tmp_path / f".best.json.{ended.pid}.tmp"]
        kept = [tmp_path / f".last.npz.{alive.pid}.tmp", tmp_path / "notes.tmp",
                tmp_path / f".notes.txt.{ended.pid}.tmp", tmp_path / f"last.npz.{ended.pid}.tmp"]
        for p in dead + kept:
            p.write_bytes(b"PK\x03\x04 half")
        assert training.main(args(corpus, tmp_path, "--max-steps", "3")) == 0
        assert alive.poll() is None
    finally:
        alive.kill()
        alive.wait()
    assert not any(p.exists() for p in dead)
    assert all(p.exists() for p in kept)
    err = capsys.readouterr().err
    assert f"{tmp_path}: removed 2 temporary files of ended runs' unfinished saves" in err
    assert dead[0].name in err and dead[1].name in err


def test_the_last_epoch_ends_with_a_validation_and_both_checkpoints(corpus, tmp_path, capsys):
    """A run stopped by --epochs between two validations still validates and saves."""
    assert training.main(args(corpus, tmp_path, "--epochs", "1", "--valid-every", "1000",
                              "--batch-size", "40")) == 0
    assert "stopped: 1 epochs done" in capsys.readouterr().err
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["epoch"] == 1
    for name in ("best", "last"):
        assert checkpoint.load_checkpoint(tmp_path, name)[2]["step"] == lines[0]["step"]
    assert training.main(args(corpus, tmp_path, "--epochs", "1", "--resume",
                              "--batch-size", "40")) == 0
    assert "stopped: 1 epochs done. " + str(lines[0]["step"]) in capsys.readouterr().err


def test_odd_but_valid_text_trains_and_translates(corpus, tmp_path, capsys):
    """Input that always worked and must keep working: CRLF line ends, a leading
    byte-order mark, emoji, a NUL byte and a 100,000-word line are text like any other (the long
    pair is dropped by --max-len, the long input line cut with a warning)."""
    en = ["\ufeff" + "the cat 😀 sees it .", "I see\x00 it .", " ".join(["word"] * 100_000)]
    fr = ["le chat 😀 le voit .", "je le vois .", "mot"]
    for name, lines in (("odd.en", en), ("odd.fr", fr)):
        base = (corpus / name.replace("odd", "train")).read_text(encoding="utf-8")
        (tmp_path / name).write_bytes(("\r\n".join(lines) + "\r\n" + base).encode("utf-8"))
    odd = ["--train-src", str(tmp_path / "odd.en"), "--train-tgt", str(tmp_path / "odd.fr")]
    assert training.main(args(corpus, tmp_path / "run", "--max-steps", "2", *odd)) == 0
    assert "(1 longer than 50 dropped)" in capsys.readouterr().err
    (tmp_path / "in.en").write_bytes("\r\n".join(en).encode("utf-8") + b"\r\n")
    assert translation.main(["--model", str(tmp_path / "run"), "--device", "cpu", "--quiet",
                             "--beam", "2", "--input", str(tmp_path / "in.en")]) == 0
    out = capsys.readouterr()
    assert len(out.out.split("\n")) == 4  # three lines in, three out
    assert "in.en:3: 100000 tokens, cut to the trained maximum of 50" in out.err


def test_pair_en_de_trains_on_the_german_corpus_and_resume_keeps_it(tmp_path, monkeypatch):
    small = functools.partial(data_corpus.builtin_corpus, n_train=300, n_dev=10, n_test=10)
    monkeypatch.setattr(traindata, "builtin_corpus", small)
    monkeypatch.chdir(tmp_path)
    run = ["--preset", "tiny", "--batch-size", "8", "--device", "cpu", "--quiet", "--out", "r"]
    assert training.main([*run, "--pair", "en-de", "--max-steps", "2"]) == 0
    meta = json.loads((tmp_path / "r" / "last.json").read_text(encoding="utf-8"))
    assert meta["pair"] == "en-de" and "Haus" in meta["tgt_vocab"]["tokens"]
    assert training.main([*run, "--resume", "--max-steps", "3"]) == 0  # no --pair: the run's own
    meta = json.loads((tmp_path / "r" / "last.json").read_text(encoding="utf-8"))
    assert meta["pair"] == "en-de" and meta["step"] == 3


def test_resume_is_bitwise_exact_with_dropout(corpus, tmp_path):
    assert training.main(args(corpus, tmp_path / "a", "--max-steps", "6", "--dropout", "0.3")) == 0
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "3", "--dropout", "0.3")) == 0
    # the run's own dropout rate is kept on resume
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "6", "--resume")) == 0
    assert training.main(args(corpus, tmp_path / "c", "--max-steps", "6")) == 0
    a, b, c = (params_of(tmp_path / x) for x in "abc")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert not np.array_equal(a["W_o"], c["W_o"])                   # dropout changed training
    assert checkpoint.load_checkpoint(tmp_path / "b", "last")[2]["dropout"] == 0.3


def test_dropout_is_refused_for_the_cursors(corpus, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        training.main(args(corpus, tmp_path / "r", "--variant", "cursors", "--dropout", "0.2"))
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "train.py: error: --dropout is not implemented for --variant cursors")


def test_lr_and_dropout_left_unset_are_the_corpus_defaults(corpus, tmp_path, monkeypatch):
    """Adam's rate and dropout, not given, are ``CORPUS_DEFAULTS``' for the user's files or the
    built-in corpus; a given value wins; the cursors get no dropout and SGD its own rate. The
    checkpoint records the numbers, and a resume keeps them whatever the defaults are then."""
    def recorded(run):
        meta = checkpoint.load_checkpoint(run, "last")[2]
        return dict(lr=meta["lr"], dropout=meta["dropout"])

    files, builtin = (settings.CORPUS_DEFAULTS[k] for k in (settings.FILES, settings.BUILTIN))
    one = ("--max-steps", "1")
    assert training.main(args(corpus, tmp_path / "files", *one)) == 0
    assert recorded(tmp_path / "files") == files
    assert training.main(args(corpus, tmp_path / "given", *one, "--lr", "0.02",
                              "--dropout", "0.4")) == 0
    assert recorded(tmp_path / "given") == dict(lr=0.02, dropout=0.4)
    assert training.main(args(corpus, tmp_path / "cursors", *one, "--variant", "cursors")) == 0
    assert recorded(tmp_path / "cursors") == dict(lr=files["lr"], dropout=0.0)
    assert training.main(args(corpus, tmp_path / "sgd", *one, "--optimizer", "sgd")) == 0
    assert recorded(tmp_path / "sgd") == dict(lr=0.1, dropout=files["dropout"])

    monkeypatch.setitem(settings.CORPUS_DEFAULTS, settings.FILES, dict(lr=0.5, dropout=0.5))
    assert training.main(args(corpus, tmp_path / "files", "--resume", "--max-steps", "2")) == 0
    assert recorded(tmp_path / "files") == files

    small = functools.partial(data_corpus.builtin_corpus, n_train=300, n_dev=10, n_test=10)
    monkeypatch.setattr(traindata, "builtin_corpus", small)
    monkeypatch.chdir(tmp_path)
    assert training.main(["--preset", "tiny", "--batch-size", "8", "--device", "cpu", "--quiet",
                          "--out", "builtin", *one]) == 0
    assert recorded(tmp_path / "builtin") == builtin


def test_label_smoothing_trains_on_the_smoothed_loss_and_validates_on_the_plain_one(
        corpus, tmp_path, monkeypatch):
    """--label-smoothing 0.3: each update's loss (what the log's "loss" averages) is the
    smoothed loss of its batch at the parameters before it, and the log's dev loss is the plain
    negative log-likelihood of the dev set (``traindata.dev_loss``) at the validation's
    parameters, not the smoothed one; the checkpoint records 0.3, and a resume keeps it,
    bitwise as an unbroken run."""
    seen, step = [], training.Trainer.train_step

    def recording(self, batch):
        pairs = [self.corpus.train[k] for k in batch]
        b = make_batch([s for s, _ in pairs], [t for _, t in pairs])
        smoothed = float(model.loss(self.params, self.cfg, b, label_smoothing=0.3))
        plain = float(model.loss(self.params, self.cfg, b))
        loss, n_tokens = step(self, batch)
        seen.append((float(loss), smoothed, plain))
        return loss, n_tokens

    monkeypatch.setattr(training.Trainer, "train_step", recording)
    # without dropout, so that the loss recomputed here is the update's
    t = make_trainer(args(corpus, tmp_path / "a", "--max-steps", "3", "--label-smoothing", "0.3",
                          "--dropout", "0"), time.perf_counter)
    t.train()
    assert len(seen) == 3
    for loss, smoothed, plain in seen:
        assert loss == pytest.approx(smoothed, rel=1e-6) and abs(loss - plain) > 1e-3
    logged = json.loads((tmp_path / "a" / "log.jsonl").read_text().splitlines()[-1])
    assert logged["step"] == 3
    assert logged["loss"] == pytest.approx(np.mean([x[0] for x in seen]), rel=1e-5)
    dev = traindata.dev_loss(t.params, t.cfg, t.backend, t.corpus, 8)
    assert logged["dev_loss"] == pytest.approx(dev, rel=1e-6)
    smoothed_dev = 0.0
    for start in range(0, len(t.corpus.dev_src), 8):
        b = make_batch(t.corpus.dev_src[start : start + 8], t.corpus.dev_tgt[start : start + 8])
        smoothed_dev += float(model.loss(t.params, t.cfg, b, label_smoothing=0.3)) * b.n_tokens
    smoothed_dev /= sum(len(y) + 1 for y in t.corpus.dev_tgt)
    assert abs(logged["dev_loss"] - smoothed_dev) > 1e-3
    assert checkpoint.load_checkpoint(tmp_path / "a", "last")[2]["label_smoothing"] == 0.3
    monkeypatch.undo()
    assert training.main(args(corpus, tmp_path / "a", "--max-steps", "6", "--resume")) == 0
    assert training.main(args(corpus, tmp_path / "b", "--max-steps", "6",
                              "--label-smoothing", "0.3", "--dropout", "0")) == 0
    assert training.main(args(corpus, tmp_path / "c", "--max-steps", "6", "--dropout", "0")) == 0
    a, b, c = (params_of(tmp_path / x) for x in "abc")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert not np.array_equal(a["W_o"], c["W_o"])            # label smoothing changed training


def test_label_smoothing_is_refused_for_the_cursors(corpus, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        training.main(args(corpus, tmp_path / "r", "--variant", "cursors",
                           "--label-smoothing", "0.1"))
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "train.py: error: --label-smoothing is not implemented for --variant cursors")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("epochs", "max_steps", "stop"), [
    (1, 1000, "1 epochs done"), (2, 3, "--max-steps 3 reached")])
def test_the_progress_bar_counts_to_the_nearer_end(corpus, tmp_path, capsys, epochs, max_steps,
                                                   stop):
    """The bar's total is --max-steps or the end of --epochs, whichever comes first, so a run
    bounded by epochs alone has a total and an ETA too: it ends full, at its last update."""
    argv = [a for a in args(corpus, tmp_path, "--epochs", str(epochs), "--max-steps",
                            str(max_steps), "--batch-size", "40", "--valid-every", "1000")
            if a != "--quiet"]
    assert training.main(argv) == 0
    err = capsys.readouterr().err
    steps = checkpoint.load_checkpoint(tmp_path, "last")[2]["step"]
    assert f"stopped: {stop}. {steps} updates" in err
    assert "100%|" in err and f"| {steps}/{steps} [" in err


# -- resume: what a resumed run takes from the command line, and what the run fixes ------------

@pytest.fixture(scope="module")
def base_run(corpus, tmp_path_factory):
    """A run of two updates (``args`` and --max-steps 2), not to be changed by the tests."""
    out = tmp_path_factory.mktemp("base") / "run"
    assert training.main(args(corpus, out, "--max-steps", "2")) == 0
    return out


def files_of(run):
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def run_config(run):
    return checkpoint.load_checkpoint(run, "last")[2]["config"]


FILES_DEFAULTS = settings.CORPUS_DEFAULTS[settings.FILES]  # the base run's lr and dropout
FIXED = [  # option, a value other than the base run's, what the run has (None: from its config)
    ("--train-src", "dev.en", "train.en"), ("--train-tgt", "dev.fr", "train.fr"),
    ("--dev-src", "train.en", "dev.en"), ("--dev-tgt", "train.fr", "dev.fr"),
    ("--pair", "en-de", "its own data files"), ("--max-len", "20", "50"),
    ("--vocab-size", "100", "30000"), ("--subword", "50", "whole words"),
    ("--variant", "encdec", "rnnsearch"), ("--preset", "small", "tiny"),
    ("--emb", "7", None), ("--hidden", "7", None), ("--align", "7", None),
    ("--maxout", "7", None), ("--band", "2", "0"), ("--init", "paper", "fan-in"),
    ("--batch-size", "9", "8"), ("--batch-tokens", "40", "0"), ("--sort-pool", "20", "0"),
    ("--optimizer", "sgd", "adam"), ("--lr", "0.5", str(FILES_DEFAULTS["lr"])),
    ("--lr-decay", "1.0", "0.5"), ("--lr-decay-patience", "2", "0"), ("--clip", "2.0", "1.0"),
    ("--dropout", "0.1", str(FILES_DEFAULTS["dropout"])), ("--label-smoothing", "0.1", "0.0"),
    ("--valid-size", "5", "500"), ("--seed", "99", "1234"),
]


@pytest.mark.parametrize(("flag", "value", "have"), FIXED)
def test_a_resumed_run_refuses_another_value_of_a_fixed_option(corpus, base_run, capsys, flag,
                                                               value, have):
    if flag.endswith(("-src", "-tgt")):
        value, have = str(corpus / value), str((corpus / have).resolve())
    elif have is None:
        have = str(run_config(base_run)[flag[2:]])
    before = files_of(base_run)
    argv = args(corpus, base_run, "--resume", "--max-steps", "3") + [flag, value]
    assert training.main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"error: {flag} {value}: the run in {base_run} was trained with {have} and a resumed "
        "run keeps it; start a new run with another --out")
    assert err.count("error") == 1 and "Traceback" not in err
    assert files_of(base_run) == before


def test_every_option_is_taken_or_fixed_on_resume_and_help_says_which(base_run):
    """No option falls between the rules: each is taken from the command line on resume, or
    recorded by the run and checked (so a new option must be put in one or the other)."""
    ap = training.build_parser()
    fixed = settings.run_settings(checkpoint.load_checkpoint(base_run, "last")[2])
    assert set(vars(ap.parse_args([]))) == set(settings.TAKEN_ON_RESUME) | set(fixed)
    assert {flag[2:].replace("-", "_") for flag, _, _ in FIXED} == set(fixed)
    resume_help = " ".join(ap.format_help().split("--resume  ")[1].split())
    for dest in set(settings.TAKEN_ON_RESUME) - {"out", "resume"}:
        assert "--" + dest.replace("_", "-") in resume_help


def test_several_changed_options_are_one_line(corpus, base_run, capsys):
    argv = args(corpus, base_run, "--resume", "--seed", "5", "--lr", "0.5")
    assert training.main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: --lr 0.5, --seed 5: the run in {base_run} was trained with "
        f"{FILES_DEFAULTS['lr']}, 1234 and a resumed run keeps them; start a new run with "
        "another --out")


def test_only_options_given_count_and_the_runs_own_data_is_kept(corpus, base_run, tmp_path,
                                                                 monkeypatch):
    """A resume that names no option but --out takes every fixed setting from the run, its data
    files included (not the defaults: the built-in corpus, batch size 80, the small preset)."""
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    monkeypatch.chdir(tmp_path)  # the built-in corpus would be built here
    assert training.main(["--out", str(run), "--resume", "--max-steps", "3", "--quiet"]) == 0
    meta = checkpoint.load_checkpoint(run, "last")[2]
    assert meta["step"] == 3 and meta["batch_size"] == 8 and meta["preset"] == "tiny"
    assert meta["train_src"] == str((corpus / "train.en").resolve())
    assert not (tmp_path / ".cache").exists()


def resumed(base_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    return run


def log_steps(run):
    return [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()]


def test_a_resumed_run_takes_max_steps_valid_every_and_epochs(corpus, base_run, tmp_path,
                                                              capsys):
    run = resumed(base_run, tmp_path)
    assert log_steps(run) == [2]
    assert training.main(args(corpus, run, "--resume", "--max-steps", "5", "--valid-every",
                              "2")) == 0
    assert log_steps(run) == [2, 4, 5]  # the run's own --valid-every 3 would give 3, 5
    assert training.main(args(corpus, run, "--resume", "--epochs", "1", "--valid-every",
                              "1000")) == 0
    meta = checkpoint.load_checkpoint(run, "last")[2]
    assert "stopped: 1 epochs done" in capsys.readouterr().err
    assert (meta["epoch"], meta["pos"]) == (0, meta["step"]) and meta["step"] > 5


def test_a_resumed_run_takes_patience(corpus, base_run, tmp_path, monkeypatch, capsys):
    run = resumed(base_run, tmp_path)
    scripted_bleu(monkeypatch, [0.0] * 10)  # the first sets the schedule's best, then no better
    assert training.main(args(corpus, run, "--resume", "--patience", "2", "--valid-every",
                              "1", "--max-steps", "20")) == 0
    # the base run's validation at its stop (step 2, off its --valid-every) steers nothing
    assert "stopped: no better dev BLEU in 2 validations. 5 updates" in capsys.readouterr().err


def test_a_resumed_run_takes_device_and_quiet(corpus, base_run, tmp_path, capsys, monkeypatch):
    run = resumed(base_run, tmp_path)
    loud = [a for a in args(corpus, run, "--resume", "--max-steps", "3") if a != "--quiet"]
    assert training.main(loud) == 0
    assert "%|" in capsys.readouterr().err  # a progress bar, though the run was --quiet
    monkeypatch.setattr(backend, "_gpu_available", lambda: False)
    before = files_of(run)
    fails(args(corpus, run, "--resume", "--device", "gpu"), capsys, "--device gpu")
    assert files_of(run) == before


def make_trainer(argv, clock):
    """A Trainer made as ``main`` makes it, with its own clock."""
    settings, given = training.parse(argv)
    return training.Trainer(settings, clock=clock, given=given)


def test_max_time_counts_this_runs_minutes_on_the_clock(corpus, base_run, tmp_path, capsys):
    """With a clock on which each update takes a minute: --max-time 3 stops a new run after 3
    updates, and a resumed run 3 updates after it resumed; no real wait."""
    t = make_trainer(args(corpus, tmp_path / "new", "--max-time", "3"), lambda: 60.0 * t.step)
    assert t.train().stop == "--max-time 3 minutes reached"
    assert t.step == 3 and checkpoint.load_checkpoint(tmp_path / "new", "last")[2]["step"] == 3
    last = json.loads((tmp_path / "new" / "log.jsonl").read_text().splitlines()[-1])
    assert last["elapsed"] == 180  # before the validation, on the run's clock
    assert last["valid_seconds"] == 0  # the validation's own time: this clock stood still
    run = resumed(base_run, tmp_path)
    t = make_trainer(args(corpus, run, "--resume", "--max-time", "3"), lambda: 60.0 * t.step)
    assert t.train().stop == "--max-time 3 minutes reached" and t.step == 2 + 3


# -- the rules of the loop, each pinned ---------------------------------------------------------

def scripted_bleu(monkeypatch, scores):
    """sacrebleu.BLEU scoring the dev set ``scores[0]``, ``scores[1]``, ... at validations."""
    left = iter(scores)

    class Scripted:
        def __init__(self, **kwargs):
            pass

        def corpus_score(self, hyps, refs):
            return types.SimpleNamespace(score=next(left))

        def get_signature(self):
            return "scripted"

    monkeypatch.setattr(sacrebleu, "BLEU", Scripted)


def test_patience_stops_after_exactly_n_validations_without_a_better_bleu_and_best_is_the_best(
        corpus, tmp_path, monkeypatch, capsys):
    """Dev BLEU 1, 0.5, 2, 1, 2, 1.5, ... at updates 1, 2, 3, ...: the best is 2 at update 3
    (the later 2 is no better); with --patience 3, the run stops after validation 6, the third
    in a row without a better BLEU (the 0.5 at update 2 was followed by a better one)."""
    scripted_bleu(monkeypatch, [1.0, 0.5, 2.0, 1.0, 2.0, 1.5, *[0.0] * 10])
    fast = ("--valid-size", "3", "--valid-every", "1", "--lr-decay", "1")  # a constant rate:
    # the unscripted run below, to update 3, trains as the scripted one did
    assert training.main(args(corpus, tmp_path / "run", *fast, "--patience", "3",
                              "--max-steps", "15")) == 0
    assert "stopped: no better dev BLEU in 3 validations. 6 updates" in capsys.readouterr().err
    assert log_steps(tmp_path / "run") == [1, 2, 3, 4, 5, 6]
    best_params, _, best = checkpoint.load_checkpoint(tmp_path / "run", "best")
    last = checkpoint.load_checkpoint(tmp_path / "run", "last")[2]
    assert (best["step"], best["best_bleu"], best["bad_validations"]) == (3, 2.0, 0)
    assert (last["step"], last["best_bleu"], last["bad_validations"]) == (6, 2.0, 3)
    monkeypatch.undo()
    assert training.main(args(corpus, tmp_path / "three", *fast, "--max-steps", "3")) == 0
    for k, v in params_of(tmp_path / "three").items():  # best holds update 3's parameters
        np.testing.assert_array_equal(best_params[k], v, err_msg=k)


def test_a_dev_bleu_of_100_stops_the_run_with_best_at_that_validation(
        corpus, tmp_path, monkeypatch, capsys):
    """Dev BLEU 1, 100 at updates 1, 2: no later validation can be better, so the run stops
    after the second however much patience is left, with `best` at update 2; one below 100
    (99.99) does not stop it."""
    fast = ("--valid-size", "3", "--valid-every", "1", "--patience", "100", "--max-steps", "5")
    scripted_bleu(monkeypatch, [1.0, 100.0, 0.0, 0.0, 0.0])
    assert training.main(args(corpus, tmp_path / "run", *fast)) == 0
    assert "stopped: dev BLEU 100: no validation can be better. 2 updates" \
        in capsys.readouterr().err
    assert log_steps(tmp_path / "run") == [1, 2]
    assert checkpoint.load_checkpoint(tmp_path / "run", "best")[2]["step"] == 2
    scripted_bleu(monkeypatch, [1.0, 99.99, 0.0, 0.0, 0.0])
    assert training.main(args(corpus, tmp_path / "near", *fast)) == 0
    assert log_steps(tmp_path / "near") == [1, 2, 3, 4, 5]


def test_lr_decay_halves_the_rate_after_each_validation_without_a_better_bleu(
        corpus, tmp_path, monkeypatch):
    """Dev BLEU 1, 0.5, 2, 1, 2, 1.5 with --lr-decay 0.5: the rate halves after validations 2,
    4, 5 and 6 (each log line has the rate its interval trained with); the last checkpoint
    keeps the decayed rate, and a run resumed from it takes the rate and goes on as an unbroken
    run does."""
    scores = [1.0, 0.5, 2.0, 1.0, 2.0, 1.5]
    fast = ("--valid-size", "3", "--valid-every", "1", "--patience", "100", "--lr", "0.01",
            "--lr-decay", "0.5")
    scripted_bleu(monkeypatch, scores)
    assert training.main(args(corpus, tmp_path / "a", *fast, "--max-steps", "6")) == 0
    log = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in log] == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.00125]
    meta = checkpoint.load_checkpoint(tmp_path / "a", "last")[2]
    assert (meta["lr"], meta["lr_now"], meta["lr_decay"]) == (0.01, 0.000625, 0.5)
    scripted_bleu(monkeypatch, scores)
    assert training.main(args(corpus, tmp_path / "b", *fast, "--max-steps", "4")) == 0
    scripted_bleu(monkeypatch, scores[4:])
    assert training.main(args(corpus, tmp_path / "b", *fast, "--max-steps", "6",
                              "--resume")) == 0
    for k, v in params_of(tmp_path / "a").items():
        np.testing.assert_array_equal(params_of(tmp_path / "b")[k], v, err_msg=k)
    assert checkpoint.load_checkpoint(tmp_path / "b", "last")[2]["lr_now"] == 0.000625
    monkeypatch.undo()
    assert training.main(args(corpus, tmp_path / "c", *fast[:-2], "--lr-decay", "1",
                              "--max-steps", "6")) == 0  # a constant rate trains otherwise
    assert not np.array_equal(params_of(tmp_path / "c")["W_o"], params_of(tmp_path / "a")["W_o"])
    assert training.main(args(corpus, tmp_path / "b", *fast[:-2], "--lr-decay", "0.25",
                              "--max-steps", "7", "--resume")) == 2  # fixed by the run


def test_lr_decay_patience_waits_and_a_run_resumed_between_two_bad_validations_decays_as_one(
        corpus, tmp_path, monkeypatch):
    """Dev BLEU 1, 0.5, 0.4, 2, 1, 0.5 with --lr-decay-patience 1: the rate halves at the second
    validation in a row without a better BLEU, 3 and 6 (not 2, 3, 5, 6 as with 0). A run
    stopped at 5, between the two bad validations 5 and 6, records one bad validation since
    the last better one (4); resumed, it halves the rate at 6 and ends bit for bit as the
    unbroken run.
    Another --lr-decay-patience on resume is refused."""
    scores = [1.0, 0.5, 0.4, 2.0, 1.0, 0.5]
    fast = ("--valid-size", "3", "--valid-every", "1", "--patience", "100", "--lr", "0.01",
            "--lr-decay", "0.5", "--lr-decay-patience", "1")
    scripted_bleu(monkeypatch, scores)
    assert training.main(args(corpus, tmp_path / "a", *fast, "--max-steps", "6")) == 0
    log = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in log] == [0.01, 0.01, 0.01, 0.005, 0.005, 0.005]
    scripted_bleu(monkeypatch, scores)
    assert training.main(args(corpus, tmp_path / "b", *fast, "--max-steps", "5")) == 0
    meta = checkpoint.load_checkpoint(tmp_path / "b", "last")[2]
    assert (meta["bad_validations"], meta["lr_now"]) == (1, 0.005)
    assert meta["lr_decay_patience"] == 1
    scripted_bleu(monkeypatch, scores[5:])
    assert training.main(args(corpus, tmp_path / "b", *fast, "--max-steps", "6",
                              "--resume")) == 0
    assert_same_checkpoints(tmp_path / "a", tmp_path / "b")
    last = checkpoint.load_checkpoint(tmp_path / "b", "last")[2]
    assert (last["bad_validations"], last["lr_now"]) == (2, 0.0025)
    assert training.main(args(corpus, tmp_path / "b", *fast[:-1], "2", "--max-steps", "7",
                              "--resume")) == 2  # fixed by the run


def test_a_validation_at_a_stop_off_the_grid_saves_best_but_steers_nothing(
        corpus, tmp_path, monkeypatch, capsys):
    """--valid-every 2: dev BLEU 1 at update 2 (grid), 5 at the stop at update 3 (off the grid:
    `best` saved, the rate and the patience count untouched), then 2 at update 4 and 0 at 6
    on the grid: 2 beats the schedule's best (1) though not `best` (5), and only 0 halves the
    rate. A checkpoint of before ``schedule_best`` resumes with its best BLEU in its place."""
    fast = ("--valid-size", "3", "--valid-every", "2", "--patience", "100", "--lr", "0.01")
    scripted_bleu(monkeypatch, [1.0, 5.0])
    assert training.main(args(corpus, tmp_path / "r", *fast, "--max-steps", "3")) == 0
    meta = checkpoint.load_checkpoint(tmp_path / "r", "last")[2]
    assert (meta["best_bleu"], meta["schedule_best"], meta["bad_validations"],
            meta["lr_now"]) == (5.0, 1.0, 0, 0.01)
    assert checkpoint.load_checkpoint(tmp_path / "r", "best")[2]["step"] == 3
    scripted_bleu(monkeypatch, [2.0, 0.0])
    assert training.main(args(corpus, tmp_path / "r", *fast, "--max-steps", "6",
                              "--resume")) == 0
    meta = checkpoint.load_checkpoint(tmp_path / "r", "last")[2]
    assert (meta["best_bleu"], meta["schedule_best"], meta["bad_validations"],
            meta["lr_now"]) == (5.0, 2.0, 1, 0.005)
    assert checkpoint.load_checkpoint(tmp_path / "r", "best")[2]["step"] == 3
    js = tmp_path / "r" / "last.json"  # as written before schedule_best existed
    doc = json.loads(js.read_text())
    for k in ("schedule_best", "lr_decay_patience"):  # 0 in their place
        del doc[k]
    js.write_text(json.dumps(doc))
    scripted_bleu(monkeypatch, [4.0])  # below the best BLEU, 5: no better
    assert training.main(args(corpus, tmp_path / "r", *fast, "--max-steps", "8",
                              "--resume")) == 0
    meta = checkpoint.load_checkpoint(tmp_path / "r", "last")[2]
    assert (meta["schedule_best"], meta["bad_validations"], meta["lr_now"]) == (5.0, 2, 0.0025)


def whole_state(run, name="last"):
    params, opt, meta = checkpoint.load_checkpoint(run, name)
    position = {k: meta[k] for k in ("step", "epoch", "pos", "best_bleu", "schedule_best",
                                     "bad_validations")}
    return params, opt, position


def assert_same_checkpoints(run_a, run_b):
    """``last`` and ``best`` of the two runs hold the same arrays, bit for bit, and the same
    position and schedule record."""
    for name in ("last", "best"):
        a, b = whole_state(run_a, name), whole_state(run_b, name)
        for x, y in zip(a[:2], b[:2], strict=True):
            assert set(x) == set(y)
            for k in x:
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{name}: {k}")
        assert a[2] == b[2]


@pytest.fixture(scope="module")
def few_pairs(tmp_path_factory):
    """A corpus of a few batches per epoch, for runs of several epochs."""
    return small_corpus(tmp_path_factory.mktemp("few"), 100, 12, 10, seed=11)


@pytest.mark.parametrize("batching", [(), ("--batch-tokens", "60", "--sort-pool", "2")],
                         ids=["pairs", "tokens"])
def test_resume_across_epoch_boundaries_continues_the_whole_state(few_pairs, tmp_path,
                                                                  batching, capsys):
    """Runs stopped at the very end of the first epoch, inside the second and inside the third
    (each resume crossing an epoch's end) reach the state of an unbroken run: parameters,
    optimiser state and step count, epoch, position, best BLEU and bad validations, the log.
    Batches of --batch-tokens from pools of two --batch-size batches' pairs: epochs of unequal
    sizes."""
    corpus = few_pairs
    fast = ("--valid-size", "3", "--valid-every", "1", "--patience", "1000", *batching)
    assert training.main(args(corpus, tmp_path / "probe", *fast, "--max-steps", "30")) == 0
    size = "up to 60 tokens a side" if batching else "up to 8 pairs"
    assert re.search(rf"batches: \d+ an epoch of {size}, ", capsys.readouterr().err)
    epoch_at = [json.loads(x)["epoch"]  # the epoch (from 1) of each update, from the log
                for x in (tmp_path / "probe" / "log.jsonl").read_text().splitlines()]
    ends = [k + 1 for k in range(len(epoch_at) - 1) if epoch_at[k + 1] > epoch_at[k]]
    assert len(ends) >= 2 and ends[1] - ends[0] > 3  # the second stop inside the second epoch
    if batching:
        assert ends[1] - ends[0] != ends[0]  # epochs of unequal sizes
    stops = (ends[0], ends[0] + 3, ends[1] + 1)
    assert training.main(args(corpus, tmp_path / "a", *fast, "--max-steps",
                              str(stops[-1]))) == 0
    for k, stop in enumerate(stops):
        resume = ("--resume",) if k else ()
        assert training.main(args(corpus, tmp_path / "b", *fast, *resume, "--max-steps",
                                  str(stop))) == 0
        meta = checkpoint.load_checkpoint(tmp_path / "b", "last")[2]  # after batch stop - 1
        start = max([0, *(e for e in ends if e < stop)])
        assert (meta["epoch"], meta["pos"]) == (epoch_at[stop - 1] - 1, stop - start)
    assert_same_checkpoints(tmp_path / "a", tmp_path / "b")
    assert whole_state(tmp_path / "b")[2]["bad_validations"] > 0  # something to carry over

    def log(run):
        keep = ("step", "epoch", "loss", "dev_loss", "dev_bleu")
        return [{k: json.loads(x)[k] for k in keep}
                for x in (run / "log.jsonl").read_text().splitlines()]

    assert log(tmp_path / "a") == log(tmp_path / "b")


def test_clipping_inside_the_loop_bounds_the_update(corpus, tmp_path):
    """SGD with lr 1 moves the parameters by exactly the clipped gradient: its global L2 norm
    is --clip when the gradient is longer (the first update's is, by far, as --clip 1e6
    shows)."""
    def update_norm(clip):
        out = tmp_path / clip
        assert training.main(args(corpus, out, "--optimizer", "sgd", "--lr", "1", "--clip",
                                  clip, "--max-steps", "1", "--valid-size", "1")) == 0
        after, _, meta = checkpoint.load_checkpoint(out, "last")
        before = model.init_params(model.Config.from_dict(meta["config"]),
                                   backend.get_backend("cpu"), meta["seed"])
        return np.sqrt(sum(np.sum((after[k].astype(np.float64) - before[k]) ** 2)
                           for k in after))

    assert update_norm("1e6") > 10 * 0.002
    assert update_norm("0.002") == pytest.approx(0.002, rel=1e-4)


# -- a run directory: never replaced unasked, one run at a time, whole after any kill ---------

def test_a_new_run_never_replaces_a_run_unasked_and_overwrite_replaces_it(corpus, tmp_path,
                                                                          capsys):
    """A second new run into a trained run's directory (with --subword, whose model a new run
    would write first) stops before writing anything, with one line saying what is there and
    the ways on; so it does if `last` cannot be read, naming the files. --overwrite replaces the
    run's own files and no other; with --resume it is refused."""
    pytest.importorskip("sentencepiece")
    run, subword = tmp_path / "run", ("--subword", "400")
    assert training.main(args(corpus, run, "--max-steps", "3", *subword)) == 0
    (run / "notes.txt").write_text("mine\n")
    bleu = checkpoint.load_checkpoint(run, "last")[2]["best_bleu"]
    before = files_of(run)
    assert {"subword.model", "log.jsonl", "best.json", "last.json"} < set(before)
    capsys.readouterr()
    assert training.main(args(corpus, run, "--max-steps", "3", *subword)) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: {run} holds a run (step 3, best dev BLEU {bleu:.2f}); continue it with "
        "--resume, replace it with --overwrite, or choose another --out"]
    assert files_of(run) == before
    (run / "last.json").write_text("{not json")
    before = files_of(run)
    assert training.main(args(corpus, run, "--max-steps", "3", *subword)) == 2
    own = ", ".join(sorted(set(before) - {"notes.txt"}))
    assert capsys.readouterr().err.splitlines() == [
        f"error: {run} holds files of a run ({own}) without a readable checkpoint 'last' to "
        "continue; replace them with --overwrite, or choose another --out"]
    assert files_of(run) == before
    assert training.main(args(corpus, run, "--max-steps", "2", "--seed", "7", *subword,
                              "--overwrite")) == 0
    assert f"{run}: --overwrite removed the earlier run's {own}\n" in capsys.readouterr().err
    after = files_of(run)
    assert after["notes.txt"] == b"mine\n" and log_steps(run) == [2]
    assert checkpoint.load_checkpoint(run, "last")[2]["seed"] == 7
    assert sorted(after) == sorted(["notes.txt", "subword.model", "log.jsonl", "best.json",
                                    "last.json", *(checkpoint.read_meta(run, name)["npz"]
                                                   for name in ("best", "last"))])
    with pytest.raises(SystemExit) as e:
        training.main(args(corpus, run, "--resume", "--overwrite"))
    assert e.value.code == 2 and capsys.readouterr().err.splitlines()[-1] == (
        "train.py: error: --overwrite starts a new run and --resume continues one: give one "
        "of them")
    assert files_of(run) == after


def test_one_run_at_a_time_in_a_directory(corpus, tmp_path, capsys):
    """A training run holds its directory for its whole life: a second run there, new, with
    --overwrite or resumed, stops at once with one line naming the first's process and command
    line. Killed outright, the first lets it go: the run resumes."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c",
                             "import sys; from minirnnsearch.training import main; "
                             "sys.exit(main(sys.argv[1:]))",
                             *args(corpus, out, "--max-time", "3", "--patience", "1000000")],
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.json").exists():  # after its first validation
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        for extra in ((), ("--overwrite",), ("--resume",)):
            assert training.main(args(corpus, out, *extra)) == 2
            line = capsys.readouterr().err.splitlines()[-1]
            assert line.startswith(f"error: {out} is in use by process {proc.pid} "
                                   f"({sys.executable} -c ")
            assert line.endswith("; wait for it or choose another --out")
            assert proc.poll() is None and (out / "log.jsonl").exists()  # it goes on
    finally:
        proc.kill()
        proc.wait()
    assert training.main(args(corpus, out, "--resume", "--max-steps", "1")) == 0
    assert not (out / ".lock").exists()  # deleted when the run ends


# train.py in a child process, killed outright (SIGKILL) at POINT of the validation at STEP
KILL_AT = """
import json, os, signal, sys
from minirnnsearch import checkpoint, trainer, training
point, step = sys.argv[1], int(sys.argv[2])
append_line, save_checkpoint, replace = trainer.append_line, trainer.save_checkpoint, os.replace
saving = []  # the checkpoint being saved at STEP
def die():
    os.kill(os.getpid(), signal.SIGKILL)
def logged(path, line):
    append_line(path, line)
    if point == "after the log line" and json.loads(line)["step"] == step:
        die()
def saved(run_dir, name, params, opt_state, meta):
    saving[:] = [name] if meta["step"] == step else []
    npz = save_checkpoint(run_dir, name, params, opt_state, meta)
    if point == "between the two checkpoints" and saving:
        die()  # the first checkpoint of the validation saved, not the second
    return npz
def renamed(src, dst):
    replace(src, dst)
    if saving and point == f"between the renames of {saving[0]}" and str(dst).endswith(".npz"):
        die()  # the new npz in place, the json not yet
trainer.append_line, trainer.save_checkpoint, checkpoint.os.replace = logged, saved, renamed
sys.exit(training.main(sys.argv[3:]))
"""
CLOCK = ("elapsed", "tokens_per_s", "valid_seconds")  # what two runs of the same state differ in


@pytest.fixture(scope="module")
def unbroken(corpus, tmp_path_factory):
    """6 updates, validations at 2, 4 and 6."""
    out = tmp_path_factory.mktemp("unbroken") / "run"
    assert training.main(args(corpus, out, "--valid-every", "2", "--max-steps", "6")) == 0
    return out


def assert_same_run(a, b):
    """`best` and `last` of runs ``a`` and ``b`` the same, their json included (which names
    the npz by its SHA-256), the logs the same but for the clock, and no other file."""
    for name in ("best", "last"):
        assert checkpoint.load_checkpoint(a, name)[2] == checkpoint.load_checkpoint(b, name)[2]

    def log(run):
        return [{k: v for k, v in json.loads(x).items() if k not in CLOCK}
                for x in (run / "log.jsonl").read_text().splitlines()]

    assert log(a) == log(b)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())


@pytest.mark.parametrize(("point", "step"), [
    ("after the log line", 4),
    ("between the two checkpoints", 2),  # the first validation: `best` is saved too
    ("between the renames of last", 4),
    ("between the renames of best", 2),
])
def test_a_run_killed_at_any_moment_of_a_validation_resumes_as_the_unbroken_run(
        corpus, unbroken, tmp_path, capsys, point, step):
    """``kill -9`` right after a validation's log line, between its two checkpoints, or
    between the two renames of a checkpoint's save; then --resume: each validation is in the
    log once, and `best`, `last` and the log are those of the run never stopped."""
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILL_AT, point, str(step),
                           *args(corpus, run, "--valid-every", "2", "--max-steps", "6")],
                          stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert training.main(args(corpus, run, "--resume", "--valid-every", "2",
                              "--max-steps", "6")) == 0
    assert_same_run(unbroken, run)


def test_a_best_past_last_as_earlier_runs_left_it_is_not_kept(corpus, tmp_path, monkeypatch,
                                                              capsys):
    """Runs of before saved `best` before `last`: one killed between them has a `best` and a
    log line of a step that `last` has not reached. The resumed run drops both at its start
    (stopped before that step, it must not keep them) and saves them again, the same, when it
    gets there."""
    fast = ("--valid-every", "2", "--valid-size", "3")
    a, b, c = (tmp_path / x for x in "abc")
    for run, steps in ((a, 6), (b, 2), (c, 4)):
        scripted_bleu(monkeypatch, [1.0, 2.0, 3.0])  # better at every validation
        assert training.main(args(corpus, run, *fast, "--max-steps", str(steps))) == 0
    for old in b.glob("best.*"):  # b as a kill after c's `best` of step 4 would have left it
        old.unlink()
    for new in c.glob("best.*"):
        shutil.copy(new, b / new.name)
    with open(b / "log.jsonl", "a") as f:
        f.write((c / "log.jsonl").read_text().splitlines()[-1] + "\n")
    assert log_steps(b) == [2, 4] and checkpoint.load_checkpoint(b, "best")[2]["step"] == 4
    capsys.readouterr()
    make_trainer(args(corpus, b, *fast, "--resume"), time.perf_counter)
    assert not checkpoint.checkpoint_exists(b, "best") and log_steps(b) == [2]
    assert f"{b}: removed `best` of step 4, past `last` (step 2)" in capsys.readouterr().err
    scripted_bleu(monkeypatch, [2.0, 3.0])
    assert training.main(args(corpus, b, *fast, "--max-steps", "6", "--resume")) == 0
    assert_same_run(a, b)


def test_a_run_of_checkpoint_format_1_translates_and_resumes(corpus, base_run, tmp_path):
    """Runs saved by format version 1 (NAME.npz beside NAME.json), as long runs in progress
    are, translate and resume exactly; the resumed run saves version 2."""
    run = resumed(base_run, tmp_path)
    for name in ("best", "last"):
        doc = json.loads((run / f"{name}.json").read_text())
        (run / doc.pop("npz", f"{name}.npz")).rename(run / f"{name}.npz")
        (run / f"{name}.json").write_text(json.dumps({**doc, "format_version": 1}))
    assert translation.main(["--model", str(run), "--device", "cpu", "--quiet", "--beam", "2",
                             "--input", str(corpus / "dev.en")]) == 0
    assert training.main(args(corpus, run, "--resume", "--max-steps", "4")) == 0
    assert training.main(args(corpus, tmp_path / "unbroken", "--max-steps", "4")) == 0
    for k, v in params_of(tmp_path / "unbroken").items():
        np.testing.assert_array_equal(params_of(run)[k], v, err_msg=k)
    assert json.loads((run / "last.json").read_text())["format_version"] == 2
    assert not (run / "last.npz").exists()
