"""Runs written by older commits of this repository (tests/fixtures/old_runs; its README.md says
which commit and command made each): today's code gives each the settings its commit trained
with, translates it as its commit did, and resumes it as its commit did, the same updates on
the same batches. Each is copied first: nothing writes into the fixtures."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from minirnnsearch import checkpoint, settings, traindata, training, translation
from minirnnsearch.data.corpus import builtin_corpus

FIXTURES = Path(__file__).parent / "fixtures" / "old_runs"
# the six files of the built-in corpus in name order, as each of the commits wrote it
CORPUS_SHA256 = "df357f93f967fd05ab9711ba724cea9964d34b1752938313834e289685e1228c"

SIZES = dict(variant="rnnsearch", band=0, emb=4, hidden=4, align=4, maxout=2, seed=1234,
             batch_size=16, max_len=50, pair="en-fr", dropout=0.0, subword=None, batch_tokens=0,
             lr_decay_patience=0, label_smoothing=0.0)
RECORDED = dict(preset="small", vocab_size=30, valid_size=5, clip=1.0, train_src=None,
                train_tgt=None, dev_src=None, dev_tgt=None)
# by fixture: the settings its commit trained with, and what a resume has to be told that the
# run does not record (its dev set's size)
OLD_RUNS = {
    "before-dropout": ({**SIZES, "init": "paper", "optimizer": "adadelta", "lr": 1.0,
                        "lr_decay": 1.0, "sort_pool": 20}, ["--valid-size", "5"]),
    "before-lr-decay": ({**SIZES, **RECORDED, "init": "paper", "optimizer": "adam", "lr": 0.003,
                         "lr_decay": 1.0, "sort_pool": 20}, []),
    "before-sort-pool": ({**SIZES, **RECORDED, "init": "paper", "optimizer": "adam", "lr": 0.003,
                          "lr_decay": 1.0, "sort_pool": 20}, []),
    "before-batch-tokens": ({**SIZES, **RECORDED, "init": "fan-in", "optimizer": "adam",
                             "lr": 0.003, "lr_decay": 0.5, "sort_pool": 0}, []),
}


@pytest.fixture(scope="module")
def corpus_home(tmp_path_factory):
    """A directory whose .cache/corpus holds today's built-in corpus, where train.py finds it."""
    home = tmp_path_factory.mktemp("home")
    builtin_corpus(home / traindata.DEFAULT_CORPUS_CACHE, seed=1234)
    return home


def copy_of(name, tmp_path):
    return Path(shutil.copytree(FIXTURES / name / "run", tmp_path / name))


def test_todays_builtin_corpus_is_the_one_the_old_runs_trained_on(corpus_home):
    files = sorted((corpus_home / traindata.DEFAULT_CORPUS_CACHE).glob("*/*"))
    assert len(files) == 6
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert digest == CORPUS_SHA256, "the built-in corpus changed: the old runs cannot resume"


@pytest.mark.parametrize("name", OLD_RUNS)
def test_an_old_run_gets_the_settings_its_commit_trained_with(name, tmp_path):
    _, _, meta = checkpoint.load_checkpoint(copy_of(name, tmp_path), "last")
    assert settings.run_settings(meta) == OLD_RUNS[name][0]


@pytest.mark.parametrize("name", OLD_RUNS)
def test_an_old_run_translates_as_its_commit_did(name, tmp_path, capsys):
    assert translation.main(["--model", str(copy_of(name, tmp_path)), "--device", "cpu",
                             "--quiet", "--input", str(FIXTURES / "in.en")]) == 0
    expected = (FIXTURES / name / "translated-by-its-commit.txt").read_text(encoding="utf-8")
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize("name", OLD_RUNS)
def test_an_old_run_resumes_as_its_commit_did(name, tmp_path, corpus_home, monkeypatch,
                                              capsys):
    run = copy_of(name, tmp_path)
    monkeypatch.chdir(corpus_home)
    assert training.main(["--resume", "--out", str(run), "--max-steps", "6", "--valid-every",
                          "2", "--device", "cpu", "--quiet", *OLD_RUNS[name][1]]) == 0
    err = capsys.readouterr().err
    assert f"resuming {run} at step 4" in err
    assert f"(--sort-pool {OLD_RUNS[name][0]['sort_pool']})" in err
    if OLD_RUNS[name][1]:
        assert "predates the record of --valid-size: not checked against the run" in err
    ours = json.loads((run / "log.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    theirs = json.loads((FIXTURES / name / "resumed-by-its-commit.jsonl").read_text(
        encoding="utf-8").splitlines()[-1])
    assert (ours["step"], ours["epoch"]) == (theirs["step"], theirs["epoch"]) == (6, 1)
    # the training loss of updates 5 and 6 says which batches they took, the dev loss where
    # they led; in float32, with the sums of this code and that commit's
    for key in ("loss", "dev_loss"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-6), key
    assert ours["dev_bleu"] == theirs["dev_bleu"]
    if "lr" in theirs:  # as --lr-decay left it
        assert ours["lr"] == theirs["lr"]


def test_what_an_old_run_does_not_record_stays_unrecorded_when_resumed(tmp_path, corpus_home,
                                                                       monkeypatch, capsys):
    """A run from before --vocab-size, --valid-size, ... were recorded, resumed: its new
    checkpoints do not record the command line's defaults as the run's, so a second resume
    given the run's true --vocab-size (30) is not refused as if it had trained with 30000."""
    run = copy_of("before-dropout", tmp_path)
    monkeypatch.chdir(corpus_home)
    common = ["--resume", "--out", str(run), "--valid-every", "2", "--device", "cpu", "--quiet",
              "--valid-size", "5"]
    assert training.main([*common, "--max-steps", "6"]) == 0
    _, _, meta = checkpoint.load_checkpoint(run, "last")
    assert meta["step"] == 6 and not set(settings.RECORDED_LATER) & set(meta)
    capsys.readouterr()
    assert training.main([*common, "--max-steps", "8", "--vocab-size", "30"]) == 0
    assert "predates the record of --vocab-size, --valid-size" in capsys.readouterr().err
    assert checkpoint.load_checkpoint(run, "last")[2]["step"] == 8
