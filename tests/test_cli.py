"""The argument types of every command line: what each accepts, and argparse's one-line error
naming the flag for what it refuses."""

import argparse

import pytest

from minirnnsearch import cli, gradcheck, story
from minirnnsearch.bench import cli as bench_cli
from minirnnsearch.data import vocab


@pytest.mark.parametrize(("helper", "text", "value"), [
    (cli.positive_int, "1", 1),
    (cli.positive_int, " 80 ", 80),
    (cli.non_negative_int, "0", 0),
    (cli.beam_size, "1", 1),
    (vocab.vocab_size, "5", 5),
    (cli.int_at_least(3), "3", 3),
    (cli.positive_float, "1e-4", 1e-4),
    (cli.non_negative_float, "0", 0.0),
    (cli.probability, "0", 0.0),
    (cli.probability, "0.999", 0.999),
])
def test_accepted(helper, text, value):
    assert helper(text) == value


@pytest.mark.parametrize(("helper", "text", "message"), [
    (cli.positive_int, "0", "must be at least 1, got 0"),
    (cli.positive_int, "-3", "must be at least 1, got -3"),
    (cli.positive_int, "2.5", "must be an integer, got '2.5'"),
    (cli.positive_int, "", "must be an integer, got ''"),
    (cli.non_negative_int, "-1", "must be at least 0, got -1"),
    (cli.beam_size, "0", "must be at least 1 (1 = greedy), got 0"),
    (vocab.vocab_size, "4", "must be at least 5 (the 4 special tokens and one word), got 4"),
    (cli.positive_float, "0", "must be more than 0, got 0"),
    (cli.positive_float, "-1", "must be more than 0, got -1"),
    (cli.positive_float, "nan", "must be a finite number, got 'nan'"),
    (cli.positive_float, "inf", "must be a finite number, got 'inf'"),
    (cli.positive_float, "1e999", "must be a finite number, got '1e999'"),
    (cli.positive_float, "fast", "must be a number, got 'fast'"),
    (cli.non_negative_float, "-0.5", "must be at least 0, got -0.5"),
    (cli.probability, "1", "must be in [0, 1), got 1"),
    (cli.probability, "-0.1", "must be in [0, 1), got -0.1"),
])
def test_refused(helper, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        helper(text)
    assert str(e.value) == message


def test_output_paths(tmp_path):
    (tmp_path / "file").write_text("x")
    assert cli.output_dir(str(tmp_path / "new" / "run")) == str(tmp_path / "new" / "run")
    assert cli.output_dir(str(tmp_path)) == str(tmp_path)
    with pytest.raises(argparse.ArgumentTypeError, match="file is an existing file, not a dir"):
        cli.output_dir(str(tmp_path / "file"))
    with pytest.raises(argparse.ArgumentTypeError, match=r"file \(in .*file/run\) is an exist"):
        cli.output_dir(str(tmp_path / "file" / "run"))
    assert cli.output_file(str(tmp_path / "file")) == str(tmp_path / "file")
    assert cli.output_file(str(tmp_path / "new.txt")) == str(tmp_path / "new.txt")
    with pytest.raises(argparse.ArgumentTypeError, match="is a directory, not a file"):
        cli.output_file(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match=r"new \(for .*out.txt\) is not a dir"):
        cli.output_file(str(tmp_path / "new" / "out.txt"))


def test_argparse_names_the_flag_in_one_line(capsys):
    ap = argparse.ArgumentParser(prog="prog")
    ap.add_argument("--hidden", type=cli.positive_int)
    with pytest.raises(SystemExit) as e:
        ap.parse_args(["--hidden", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "prog: error: argument --hidden: must be at least 1, got 0"
    assert "Traceback" not in err


@pytest.mark.parametrize(("main", "argv", "line"), [
    (bench_cli.main, ["--steps", "0"], "argument --steps: must be at least 1, got 0"),
    (bench_cli.main, ["--warmup", "-1"], "argument --warmup: must be at least 0, got -1"),
    (bench_cli.main, ["--hidden", "0"], "argument --hidden: must be at least 1, got 0"),
    (bench_cli.main, ["--vocab", "4"],
     "argument --vocab: must be at least 5 (the 4 special tokens and one word), got 4"),
    (bench_cli.main, ["--beam", "0"], "argument --beam: must be at least 1 (1 = greedy), got 0"),
    (bench_cli.main, ["--decode-sentences", "0"],
     "argument --decode-sentences: must be at least 1, got 0"),
    (story.main, ["--minutes", "0"], "argument --minutes: must be more than 0, got 0"),
    (story.main, ["--beam", "0"], "argument --beam: must be at least 1 (1 = greedy), got 0"),
    (story.main, ["--test-size", "0"], "argument --test-size: must be at least 1, got 0"),
    (gradcheck.main, ["--threshold=-1e-6"],
     "argument --threshold: must be more than 0, got -1e-6"),
    (gradcheck.main, ["--seed", "-2"], "argument --seed: must be at least 0, got -2"),
])
def test_every_command_refuses_bad_numbers_before_work(main, argv, line, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    out = capsys.readouterr()
    assert out.err.splitlines()[-1].endswith(f": error: {line}")
    assert out.out == ""  # no benchmark, training or check ran


def test_story_refuses_an_existing_file_as_its_figures_directory(tmp_path, capsys):
    (tmp_path / "docs").write_text("mine\n")
    with pytest.raises(SystemExit):
        story.main(["--figures", str(tmp_path / "docs"), "--out", str(tmp_path / "runs")])
    assert "argument --figures: " in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
