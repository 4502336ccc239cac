"""report.py: BLEU by source length (the paper's Figure 2), buckets and values against
sacrebleu called directly on hand-picked sentences; runs' dev BLEU curves from log.jsonl."""

import json

import pytest
import sacrebleu

from minirnnsearch import report
from minirnnsearch.data.io import DataError
from minirnnsearch.report import bleu_by_length, dev_curve, format_length_table


def words(n):
    return " ".join(f"w{k}" for k in range(n))


def test_bleu_by_length_buckets_and_scores():
    """Buckets of 10 source words, the upper bound inclusive (10 words is 0-10, 11 is 10-20),
    empty buckets left out (20-30 here), each bucket's corpus BLEU of its sentences alone."""
    srcs = [words(10), words(3), words(11), words(35), words(20), "", words(1)]
    refs = ["the cat sat on the mat today", "a dog runs in the big park",
            "we see the green house near the river", "they read old books every night",
            "she writes long letters to her friends", "yes", "I see it now and then"]
    hyps = ["the cat sat on the mat today", "a dog runs in the big park",
            "we see the green house by the sea", "nothing here matches at all sorry",
            "she writes letters to her old friends", "yes", "I see it now and then"]
    rows = bleu_by_length(hyps, refs, srcs)
    assert [(name, n) for name, n, _ in rows] == [("0-10", 4), ("10-20", 2), ("30-40", 1)]
    for (_, _, score), idx in zip(rows, ([0, 1, 5, 6], [2, 4], [3]), strict=True):
        want = sacrebleu.corpus_bleu([hyps[k] for k in idx], [[refs[k] for k in idx]]).score
        assert score == pytest.approx(want, abs=1e-9)
    assert rows[0][2] == pytest.approx(100.0) and rows[2][2] == 0.0
    assert 0.0 < rows[1][2] < 100.0
    table = format_length_table(rows).splitlines()
    assert table[0].split() == ["source", "words", "sentences", "BLEU"]
    assert table[2].split() == ["10-20", "2", f"{rows[1][2]:.2f}"]


def write_log(run, records):
    run.mkdir(parents=True)
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_dev_curve_reads_every_validation_and_names_a_bad_line(tmp_path):
    write_log(tmp_path / "a", [{"step": 500, "dev_bleu": 12.5, "loss": 3.0},
                               {"step": 1000, "dev_bleu": 20}])
    assert dev_curve(tmp_path / "a") == [(500, 12.5), (1000, 20.0)]
    bad = {"b": ([{"step": 500, "dev_bleu": 1.0}, {"step": 1000}], r":2: not a .*dev_bleu"),
           "c": ([{"step": 500.5, "dev_bleu": 1.0}], r":1: not a .*step 500.5"),
           "d": ([{"step": 500, "dev_bleu": float("nan")}], r":1: not a .*dev_bleu nan"),
           "e": ([{"step": 500, "dev_bleu": True}], r":1: not a .*dev_bleu True"),
           "f": ([{"step": 500, "dev_bleu": 1.0}, {"step": 1000, "dev_bleu": 2.0},
                  {"step": 500, "dev_bleu": 3.0}], r":3: update 500 after update 1000: the log "
                                                   r"of more than one run"),
           "g": ([], r": no validation in it")}
    for name, (records, message) in bad.items():
        write_log(tmp_path / name, records)
        with pytest.raises(DataError, match=f"{name}/log.jsonl{message}"):
            dev_curve(tmp_path / name)
    with pytest.raises(DataError, match="h/log.jsonl: no such file"):
        dev_curve(tmp_path / "h")


@pytest.mark.parametrize(("extra", "message"), [
    (["--label", "x"], "1 --label for 2 runs"),
    ([], "two runs with the same label (run, run)"),  # both directories are named run
    (["--label", "x", "--label", "x"], "two runs with the same label (x, x)"),
    (["--label", "x", "--label", "_y"], "starts with '_'"),
    (["--label", "x", "--label", "y", "--png", "dev.svg"], "--png dev.svg: name a .png file"),
])
def test_report_command_refuses_bad_labels_and_names(tmp_path, capsys, extra, message):
    runs = [str(tmp_path / "x" / "run"), str(tmp_path / "y" / "run")]
    with pytest.raises(SystemExit) as e:
        report.main([*runs, "--png", str(tmp_path / "dev.png"), *extra])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "dev.png").exists()


def test_report_command_prints_each_runs_best_and_draws_the_curves(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    write_log(tmp_path / "x" / "run", [{"step": 500, "dev_bleu": 10.0},
                                       {"step": 1000, "dev_bleu": 30.0},
                                       {"step": 1500, "dev_bleu": 25.0}])
    write_log(tmp_path / "y" / "run", [{"step": 250, "dev_bleu": 5.0}])
    png = tmp_path / "dev.png"
    runs = [str(tmp_path / "x" / "run"), str(tmp_path / "y" / "run")]
    assert report.main([*runs, "--png", str(png), "--label", "x", "--label", "y"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:3]]
    assert rows == [["x", "3", "1500", "30.00", "1000"], ["y", "1", "250", "5.00", "250"]]
    assert report.main([runs[0], str(tmp_path / "none"), "--png", str(tmp_path / "z.png")]) == 2
    assert capsys.readouterr().err.strip().endswith("none/log.jsonl: no such file")
    assert not (tmp_path / "z.png").exists()
