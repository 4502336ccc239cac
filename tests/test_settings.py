"""The run record alone: the fields of ``Settings`` are train.py's options, each with its
default, its check and its rule on resume; what older checkpoints imply; the refusals; and the
Python API's ``train`` checking settings as the command line does."""

import dataclasses
from pathlib import Path

import pytest
from helpers import small_corpus

from minirnnsearch import Settings, model, train, training
from minirnnsearch.checkpoint import read_meta
from minirnnsearch.data.batching import CHUNK_BATCHES
from minirnnsearch.settings import (
    RECORDED_LATER,
    TAKEN_ON_RESUME,
    TrainingError,
    conflict,
    refuse_changes,
    run_settings,
)

TAKEN = ("epochs", "max_steps", "max_time", "valid_every", "patience", "device", "quiet",
         "out", "resume", "overwrite")


def test_the_command_line_is_built_from_the_fields():
    ap = training.build_parser()
    assert Settings(**vars(ap.parse_args([]))) == Settings()
    assert list(vars(ap.parse_args([]))) == [f.name for f in dataclasses.fields(Settings)]
    assert training.parse([])[0] == Settings() and training.parse([])[1] == []


def test_every_field_has_its_rule_on_resume():
    assert set(TAKEN_ON_RESUME) == set(TAKEN)
    rules = {f.name: f.metadata["resume"] for f in dataclasses.fields(Settings)}
    assert set(rules.values()) == {"taken", "kept"}
    assert set(RECORDED_LATER) == {"preset", "vocab_size", "valid_size", "clip", "train_src",
                                   "train_tgt", "dev_src", "dev_tgt"}


def test_argv_parses_back_into_the_same_settings(tmp_path):
    s = Settings(train_src="a.en", train_tgt="a.fr", dev_src="b.en", dev_tgt="b.fr",
                 max_len=30, vocab_size=100, subword=500, variant="cursors", preset="tiny",
                 emb=8, init="paper", band=2, batch_tokens=400, sort_pool=20,
                 optimizer="adadelta", lr=0.7, lr_decay=0.25, lr_decay_patience=3, clip=0.5,
                 epochs=3, label_smoothing=0.15, max_steps=9, max_time=1.5, valid_every=4,
                 valid_size=7, patience=2, seed=5, device="cpu", out=str(tmp_path / "r"),
                 resume=True, quiet=True)
    parsed, given = training.parse(s.argv())
    assert parsed == s
    assert set(given) == set(s.changed())
    assert Settings().argv() == []


@pytest.mark.parametrize(("field", "value", "message"), [
    ("batch_size", 0, "batch_size: must be at least 1, got 0"),
    ("lr_decay", 1.5, "lr_decay: must be in (0, 1], got 1.5"),
    ("lr_decay_patience", -1, "lr_decay_patience: must be at least 0, got -1"),
    ("dropout", 1.0, "dropout: must be in [0, 1), got 1.0"),
    ("label_smoothing", 1.0, "label_smoothing: must be in [0, 1), got 1.0"),
    ("label_smoothing", -0.1, "label_smoothing: must be in [0, 1), got -0.1"),
    ("vocab_size", 4, "vocab_size: must be at least 5"),
    ("variant", "luong", "variant: 'luong' is not one of"),
    ("optimizer", "lion", "optimizer: 'lion' is not one of"),
])
def test_a_value_the_command_line_refuses_is_refused_by_the_settings(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        Settings(**{field: value})


def test_options_that_do_not_go_together():
    assert conflict(Settings(band=2), ["band"]) == "--band is for --variant cursors only"
    assert conflict(Settings(variant="cursors", band=2), ["variant", "band"]) == ""
    assert "not implemented" in conflict(Settings(variant="cursors", dropout=0.1), [])
    assert conflict(Settings(variant="cursors", label_smoothing=0.1), ["label_smoothing"]) == (
        "--label-smoothing is not implemented for --variant cursors")
    assert conflict(Settings(variant="encdec", label_smoothing=0.1), ["label_smoothing"]) == ""
    assert "--pair chooses" in conflict(Settings(train_src="a", pair="en-de"), ["pair"])
    assert conflict(Settings(train_src="a"), []) == ""  # the default pair, not given
    assert "give one of them" in conflict(Settings(resume=True, overwrite=True), [])
    assert conflict(Settings(resume=True, band=2), ["band"]) == ""  # the run decides


def test_train_refuses_them_before_touching_the_directory(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(TrainingError, match="--band is for --variant cursors only"):
        train(Settings(band=2, out=str(out), device="cpu"))
    assert not out.exists()


def oldest_meta():
    """The meta of a checkpoint as the first commits wrote it: no field added since."""
    cfg = model.Config.from_preset("tiny", src_vocab=10, tgt_vocab=12, variant="encdec")
    config = {k: v for k, v in cfg.to_dict().items() if k not in ("band", "init")}
    return dict(config=config, seed=7, batch_size=16, max_len=40, optimizer="adadelta",
                lr=None)


def test_older_checkpoints_imply_the_defaults_they_trained_with():
    run = run_settings(oldest_meta())
    assert run == dict(variant="encdec", band=0, init="paper", emb=32, hidden=64, align=64,
                       maxout=32, seed=7, batch_size=16, max_len=40, optimizer="adadelta",
                       lr=1.0, sort_pool=CHUNK_BATCHES, batch_tokens=0, lr_decay=1.0,
                       lr_decay_patience=0, pair="en-fr", dropout=0.0, label_smoothing=0.0,
                       subword=None)
    assert not set(RECORDED_LATER) & set(run)  # unrecorded, so never checked
    assert not set(TAKEN_ON_RESUME) & set(run)


def test_a_recorded_field_is_the_runs_own():
    meta = {**oldest_meta(), "lr": 0.5, "lr_decay": 0.5, "lr_decay_patience": 2,
            "sort_pool": 0, "pair": None, "subword": {"pieces": 300}, "preset": "tiny",
            "clip": 2.0, "train_src": "/d/a.en"}
    run = run_settings(meta)
    assert (run["lr"], run["lr_decay"], run["sort_pool"], run["pair"]) == (0.5, 0.5, 0, None)
    assert run["lr_decay_patience"] == 2
    assert (run["subword"], run["preset"], run["clip"], run["train_src"]) == (
        300, "tiny", 2.0, "/d/a.en")
    assert "vocab_size" not in run


def test_a_changed_kept_field_is_refused_in_one_line_and_a_taken_one_is_not(tmp_path, capsys):
    run = run_settings(oldest_meta())
    refuse_changes(Settings(seed=7, epochs=3, patience=1), ["seed", "epochs", "patience"], run,
                   tmp_path)
    with pytest.raises(TrainingError) as e:
        refuse_changes(Settings(seed=5, lr=0.5), ["seed", "lr"], run, tmp_path)
    assert str(e.value) == (f"--seed 5, --lr 0.5: the run in {tmp_path} was trained with 7, 1.0 "
                            "and a resumed run keeps them; start a new run with another --out")
    refuse_changes(Settings(vocab_size=30), ["vocab_size"], run, tmp_path)
    assert "predates the record of --vocab-size: not checked" in capsys.readouterr().err


def test_the_parser_keeps_argparse_one_line_errors(capsys):
    with pytest.raises(SystemExit):
        training.parse(["--band", "2"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "train.py: error: --band is for --variant cursors only")


def test_a_checkpoint_records_every_kept_field_as_the_run_had_it(tmp_path):
    """Every kept field set to a value that is neither its default nor what older checkpoints
    imply: a checkpoint's record gives each back (``run_settings``), so a field that
    ``Trainer.meta`` forgot to record would come back as its ``older`` value and fail here."""
    data = small_corpus(tmp_path, 300, 12, 10, seed=3)
    files = {f"{split}_{side}": str(data / f"{split}.{lang}") for split in ("train", "dev")
             for side, lang in (("src", "en"), ("tgt", "fr"))}
    s = Settings(**files, variant="encdec", preset="tiny", emb=8, hidden=8, align=8, maxout=4,
                 init="paper", vocab_size=200, max_len=30, seed=7, batch_size=16,
                 batch_tokens=300, sort_pool=3, optimizer="adam", lr=0.002, lr_decay=0.7,
                 lr_decay_patience=2, clip=2.0, dropout=0.1, label_smoothing=0.1, valid_size=7,
                 max_steps=2, valid_every=2, device="cpu", quiet=True, out=str(tmp_path / "run"))
    kept = [f for f in dataclasses.fields(Settings) if f.name not in TAKEN_ON_RESUME]
    for f in kept:
        assert getattr(s, f.name) != f.metadata["older"] or f.name in ("subword", "pair"), f.name
    train(s)
    recorded = run_settings(read_meta(tmp_path / "run", "last"))
    expected = {f.name: getattr(s, f.name) for f in kept}
    expected.update(pair=None, subword=None,  # its own files; whole words
                    **{k: str(Path(v).resolve()) for k, v in files.items()})
    assert recorded == expected
