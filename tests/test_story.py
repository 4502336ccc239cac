"""The story command: every variant on both pairs under a budget in updates, its record and
table, the figures, reuse of existing runs, --retrain and --resume, and runs never trained over
by accident."""

import functools
import json
import re
import sys
from pathlib import Path

import pytest
from helpers import hold_run
from PIL import Image

from minirnnsearch import model, story, traindata
from minirnnsearch.data import corpus
from minirnnsearch.data.batching import epoch_batches

TINY = ["--test-size", "25", "--beam", "2", "--device", "cpu", "--out", "runs",
        "--figures", "figs", "--max-steps", "3", "--valid-every", "2", "--valid-size", "10",
        "--preset", "tiny", "--quiet", "--batch-size", "8", "--max-len", "30"]  # last: train.py


@pytest.fixture
def small_corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the built-in corpora are cached under ./.cache
    small = functools.partial(corpus.builtin_corpus, n_train=400, n_dev=20, n_test=30)
    monkeypatch.setattr(traindata, "builtin_corpus", small)
    monkeypatch.setattr(story, "builtin_corpus", small)
    return tmp_path


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def last_npz(run):
    """The bytes of the npz that ``run``'s last checkpoint names."""
    return (run / json.loads((run / "last.json").read_text())["npz"]).read_bytes()


def test_story_trains_every_variant_on_both_pairs_and_draws_the_figures(small_corpus, capsys):
    assert story.main(["--pair", "both", *TINY]) == 0
    captured = capsys.readouterr()
    out = captured.out
    # train.py's own last word on each run, in ORDER: "stopped: <why>. <n> updates, ..."
    stopped = re.findall(r"stopped: (.*)\. (\d+) updates", captured.err)
    assert len(stopped) == 2 * len(story.ORDER)
    kept = [int(n) for n in re.findall(r"data: (\d+) training pairs", captured.err)]
    for p, pair in enumerate(("en-fr", "en-de")):
        results = (small_corpus / "runs" / pair / "results.md").read_text()
        for v, (variant, label) in enumerate(story.LABELS.items()):
            run = small_corpus / "runs" / pair / variant
            assert json.loads((run / "best.json").read_text())["pair"] == pair
            record = json.loads((run / "story.json").read_text())
            why, updates = stopped[p * len(story.ORDER) + v]
            per_epoch = len(epoch_batches([(1, 1)] * kept[p * len(story.ORDER) + v], 8, 0, 0))
            assert (record["stop"], record["updates"]) == (why, int(updates))
            assert record["stop"] == "--max-steps 3 reached"
            last = json.loads((run / "last.json").read_text())
            assert record["updates"] == last["step"] == 3
            # the paper's initialisation and batches, whatever train.py's defaults are
            assert (last["config"]["init"], last["sort_pool"]) == ("paper", 20)
            assert record["epochs"] == pytest.approx(3 / per_epoch)
            assert "--max-time" not in record["train_argv"]  # no budget in minutes
            assert len(record["load_start"]) == len(record["load_end"]) == 3
            log = lines(run / "log.jsonl")
            assert [r["step"] for r in log] == [2, 3]
            assert {(r["valid_every"], r["patience"]) for r in log} == {(2, story.PATIENCE)}
            bleu = re.search(rf"{pair} {re.escape(label)}: test BLEU (\S+) on", out).group(1)
            row = [x for x in results.splitlines() if x.startswith(f"| {label} |")]
            assert len(row) == 1 and row[0] in out            # printed as written
            assert row[0].startswith(f"| {label} | 3 | 0.1 | --max-steps 3 reached | "
                                     f"{record['minutes']:.1f} | ")
            assert row[0].endswith(f" | {bleu} |")
        figures = small_corpus / "figs"
        for png in (f"bleu_by_length-{pair}.png", f"alignment-{pair}.png"):
            assert (figures / png).read_bytes()[:4] == b"\x89PNG"
        with Image.open(figures / f"four-contexts-{pair}.png") as im:
            titles = im.text["Description"].split("\n")
            assert story.SENTENCES[pair] in im.text["Title"]
        bleus = re.findall(rf"{pair} .*: test BLEU (\S+) on", out)
        assert [t for t in titles if t.startswith("test BLEU")] == [
            f"test BLEU {b}" for b in bleus]
        assert titles[1] == "no alignment" and "p(a_i = j | y" in titles[4]
        assert f"{pair} RNNsearch alignment of: {story.SENTENCES[pair]}" in out
    assert "source words  sentences   BLEU" in out
    first = (small_corpus / "runs" / "en-de" / "results.md").read_text()
    assert story.main(["--pair", "both", *TINY]) == 0
    assert capsys.readouterr().err.count(": reusing runs/") == 2 * len(story.ORDER)
    assert (small_corpus / "runs" / "en-de" / "results.md").read_text() == first


def test_reuse_without_a_record_and_retrain(small_corpus, capsys):
    assert story.main([*TINY, "--test-size", "3"]) == 0
    run = small_corpus / "runs" / "en-fr" / "diagonal"
    (run / "story.json").unlink()                     # as a run from before the records
    assert story.main([*TINY, "--test-size", "3"]) == 0
    captured = capsys.readouterr()
    assert "diagonal: reusing runs/en-fr/diagonal (no story.json" in captured.err
    label = story.LABELS["diagonal"]
    assert f"| {label} | – | – | not recorded (no story.json) |" in captured.out
    assert story.main([*TINY, "--retrain", "--patience", "5", "--test-size", "3",
                       "--minutes", "5"]) == 0
    assert "reusing" not in capsys.readouterr().err
    record = json.loads((run / "story.json").read_text())
    assert record["updates"] == 3 and "--max-time 5.0" in " ".join(record["train_argv"])
    log = lines(run / "log.jsonl")                    # replaced, not appended to
    assert [(r["step"], r["patience"]) for r in log] == [(2, 5), (3, 5)]


def test_resume_continues_an_interrupted_run_exactly(small_corpus, capsys):
    args = [*TINY, "--test-size", "3", "--max-steps", "6"]
    assert story.main(args) == 0                      # every model to 6 updates, unbroken
    run = small_corpus / "runs" / "en-fr" / "rnnsearch"
    unbroken = last_npz(run), lines(run / "log.jsonl")
    # the same model stopped at 4 updates, as by Ctrl-C: a checkpoint, no record
    assert story.main([*args, "--retrain", "--max-steps", "4"]) == 0
    (run / "story.json").unlink()
    assert story.main(args) == 0                      # without --resume: reused as it is
    assert json.loads((run / "last.json").read_text())["step"] == 4
    capsys.readouterr()
    assert story.main([*args, "--resume"]) == 0
    captured = capsys.readouterr()
    assert "rnnsearch: resuming runs/en-fr/rnnsearch" in captured.err
    assert captured.err.count(": reusing runs/") == len(story.ORDER) - 1  # the others kept
    assert last_npz(run) == unbroken[0]  # as if never interrupted
    log = lines(run / "log.jsonl")
    assert [r["step"] for r in log] == [r["step"] for r in unbroken[1]] == [2, 4, 6]
    assert [r["dev_bleu"] for r in log] == [r["dev_bleu"] for r in unbroken[1]]
    record = json.loads((run / "story.json").read_text())
    assert (record["updates"], record["resumed_at"]) == (6, 4)
    assert record["earlier_minutes"] == pytest.approx(log[1]["elapsed"] / 60)
    assert record["minutes"] > record["earlier_minutes"]
    label = story.LABELS["rnnsearch"]
    assert f"| {label} | 6 | " in captured.out
    assert "| --max-steps 6 reached (resumed at 4) |" in captured.out


def test_a_run_stopped_before_its_first_validation_is_not_trained_over(small_corpus, capsys,
                                                                       monkeypatch):
    """A model interrupted before its first validation (a `last`, no `best`, no record) is
    neither reused nor trained again from scratch: train.py refuses its directory, keeping
    its files, and names the ways on; a run held by another process is refused, naming it; and
    --resume continues the run once it is free."""
    real, calls = model.loss_and_grads, []

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(model, "loss_and_grads", interrupted)
    assert story.main([*TINY, "--test-size", "3"]) == 130
    monkeypatch.setattr(model, "loss_and_grads", real)
    run = Path("runs") / "en-fr" / "encdec"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert "best.json" not in before and "last.json" in before
    capsys.readouterr()
    assert story.main([*TINY, "--test-size", "3"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {run} holds a run (step 1, no validation yet); continue it with --resume, "
        "replace it with --overwrite, or choose another --out")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    holder = hold_run(run)
    try:
        assert story.main([*TINY, "--test-size", "3", "--resume"]) == 2
        assert capsys.readouterr().err.splitlines()[-1].startswith(
            f"error: {run} is in use by process {holder.pid} ({sys.executable} -c ")
    finally:
        holder.kill()
        holder.wait()
    assert story.main([*TINY, "--test-size", "3", "--resume"]) == 0
    assert "encdec: resuming runs/en-fr/encdec" in capsys.readouterr().err
    assert json.loads((run / "story.json").read_text())["resumed_at"] == 1


def test_story_settings_give_the_storys_own_and_then_train_py_options():
    """Every setting the story chooses counts as given, defaults included (a resumed run checks
    them against its own), and train.py's options given to the story win over them."""
    args = story.build_parser().parse_args(["--device", "cpu"])
    settings, given = story.story_settings("en-fr", "rnnsearch", Path("runs/x"), args,
                                           ["--init", "fan-in", "--seed", "3"])
    assert (settings.init, settings.seed, settings.sort_pool) == ("fan-in", 3, 20)
    assert (settings.epochs, settings.max_steps, settings.max_time) == (story.MAX_STEPS,) * 2 + (
        None,)
    assert {"pair", "variant", "lr_decay", "init", "sort_pool", "seed"} <= set(given)
    assert "band" not in given and "max_time" not in given and len(set(given)) == len(given)
    cursors, given = story.story_settings("en-de", "cursors", Path("runs/y"), story.build_parser(
        ).parse_args(["--band", "2", "--minutes", "5"]), [])
    assert (cursors.band, cursors.max_time) == (2, 5.0) and {"band", "max_time"} <= set(given)
