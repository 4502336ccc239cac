"""translate.py on a briefly trained run: order, empty lines, n-best, BLEU by length,
attention pictures, <unk> replacement, and bad input; on random weights, each output line is its
input line translated alone, and standard input on a pipe left open is answered line by line as
it arrives, as a file's lines are translated."""

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import small_corpus

from minirnnsearch import checkpoint, model, training, translation
from minirnnsearch.data.vocab import SPECIALS, UNK_ID, Vocab
from minirnnsearch.decode import Hypothesis


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = small_corpus(tmp_path_factory.mktemp("tr"), 300, 10, 10, seed=3)
    assert training.main(["--train-src", str(d / "train.en"), "--train-tgt", str(d / "train.fr"),
                          "--dev-src", str(d / "dev.en"), "--dev-tgt", str(d / "dev.fr"),
                          "--preset", "tiny", "--batch-size", "16", "--max-steps", "20",
                          "--valid-every", "20", "--max-len", "12", "--device", "cpu",
                          "--quiet", "--out", str(d / "run")]) == 0
    return d


def translate(run, capsys, *argv):
    code = translation.main(["--model", str(run / "run"), "--device", "cpu", "--quiet", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_translates_in_order_keeping_empty_lines(run, tmp_path, capsys):
    src = ["I see it.", "", "The dog sees the cat.", "", "We see them."]
    (tmp_path / "in.en").write_text("\n".join(src) + "\n", encoding="utf-8")
    code, out, _ = translate(run, capsys, "--input", str(tmp_path / "in.en"), "--beam", "3")
    assert code == 0
    lines = out.split("\n")[:-1]
    assert len(lines) == 5 and lines[1] == "" and lines[3] == ""
    assert all(lines[k] for k in (0, 2, 4))
    code, out1, _ = translate(run, capsys, "--input", str(tmp_path / "in.en"), "--beam", "3",
                              "--batch-size", "1", "--output", str(tmp_path / "out.fr"))
    assert (tmp_path / "out.fr").read_text(encoding="utf-8") == out


@pytest.fixture(scope="module")
def random_run(tmp_path_factory):
    """A run directory with random weights, N(0, 0.7^2), no training: unlike a briefly trained
    model, it translates every sentence differently. Words: sa..st and ta..tt."""
    cfg = model.Config(src_vocab=24, tgt_vocab=24, emb=8, hidden=12, align=10, maxout=6)
    rng = np.random.default_rng(0)
    params = {k: rng.normal(0.0, 0.7, s).astype(np.float32)
              for k, s in model.param_shapes(cfg).items()}
    vocab = {side: Vocab([*SPECIALS, *(f"{side}{chr(97 + k)}" for k in range(20))]).to_dict()
             for side in "st"}
    run = tmp_path_factory.mktemp("random") / "run"
    checkpoint.save_checkpoint(run, "best", params, {}, dict(
        config=cfg.to_dict(), src_vocab=vocab["s"], tgt_vocab=vocab["t"], max_len=50))
    return run


def test_each_output_line_is_its_input_line_translated_alone(random_run, tmp_path, capsys):
    """Sentences of very different lengths, decoded in batches sorted by length: output k is
    input k's translation (the unsort), greedy and beam, by Translator and by translate.py."""
    rng = np.random.default_rng(1)
    lines = [" ".join(f"s{chr(97 + k)}" for k in rng.integers(0, 20, n))
             for n in (1, 30, 3, 45, 0, 2, 12, 7)]
    tr = translation.Translator(random_run, device="cpu")
    for beam in (1, 3):
        alone = [tr.translate([line], beam=beam)[0][0][0] for line in lines]
        assert len(set(alone)) == len(lines)  # all different, so a wrong order shows
        together = tr.translate(lines, beam=beam, batch_size=3)
        assert [hs[0][0] for hs in together] == alone
    (tmp_path / "in").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert translation.main(["--model", str(random_run), "--device", "cpu", "--input",
                             str(tmp_path / "in"), "--beam", "3", "--batch-size", "2",
                             "--quiet"]) == 0
    assert capsys.readouterr().out == "".join(a + "\n" for a in alone)


def test_nbest_format(run, tmp_path, capsys):
    (tmp_path / "in.en").write_text("I see it.\nThe dog sees the cat.\n", encoding="utf-8")
    code, out, _ = translate(run, capsys, "--input", str(tmp_path / "in.en"), "--beam", "4",
                             "--nbest", "3")
    rows = [line.split(" ||| ") for line in out.strip().split("\n")]
    assert [r[0] for r in rows] == ["0", "0", "0", "1", "1", "1"]
    for i in (0, 3):
        scores = [float(r[2]) for r in rows[i : i + 3]]
        assert scores == sorted(scores, reverse=True)


def test_ref_prints_bleu_and_length_table_and_plot(run, tmp_path, capsys):
    code, _, err = translate(run, capsys, "--input", str(run / "dev.en"), "--ref",
                             str(run / "dev.fr"), "--plot-lengths", str(tmp_path / "fig2.png"))
    assert code == 0
    assert "BLEU = " in err and "nrefs:1|case:mixed|eff:no|tok:13a" in err
    assert "source words  sentences   BLEU" in err and "0-10" in err
    assert (tmp_path / "fig2.png").read_bytes()[:4] == b"\x89PNG"


def test_attention_heatmap_and_pngs(run, tmp_path, capsys):
    (tmp_path / "in.en").write_text("The green house.\n", encoding="utf-8")
    code, _, err = translate(run, capsys, "--input", str(tmp_path / "in.en"), "--show-attention",
                             "--attention-png", str(tmp_path / "att"))
    assert code == 0
    assert "[0] The green house." in err and any(c in err for c in "░▒▓█")
    assert (tmp_path / "att" / "00000.png").read_bytes()[:4] == b"\x89PNG"


def test_unk_replacement_takes_the_most_attended_source_word(run):
    tr = translation.Translator(run / "run", device="cpu")
    known = tr.tgt_vocab.tokens[5]
    att = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.0, 0.0, 1.0]])
    h = Hypothesis([UNK_ID, 5], -1.0, -1.0, att)
    text, _, _, _, shown = tr._finish(h, ["Zorglub", "Blorf"], unk_replace=True)
    assert shown == ["Blorf", known, "</s>"]
    assert tr._finish(h, ["Zorglub", "Blorf"], unk_replace=False)[4][0] == "<unk>"


def test_long_line_is_cut_with_a_warning(run, tmp_path, capsys):
    (tmp_path / "in.en").write_text("ok .\n" + "the cat " * 20 + "\n", encoding="utf-8")
    code, out, err = translate(run, capsys, "--input", str(tmp_path / "in.en"))
    assert code == 0 and len(out.split("\n")) == 3
    assert "in.en:2: 40 tokens, cut to the trained maximum of 12" in err


def fails(run, capsys, *argv, model=None):
    code = translation.main(["--model", str(model or run / "run"), "--device", "cpu", *argv])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and err.startswith("error: ")
    return err


def test_bad_input(run, tmp_path, capsys):
    assert "nowhere: no such run directory" in fails(run, capsys, "--input", str(run / "dev.en"),
                                                     model=tmp_path / "nowhere")
    (tmp_path / "bad.en").write_bytes(b"fine\nnot \xc3\x28 fine\n")
    assert "bad.en:2: not valid UTF-8" in fails(run, capsys, "--input", str(tmp_path / "bad.en"))
    (tmp_path / "ref.fr").write_text("un\n", encoding="utf-8")
    assert "ref.fr has 1 lines but" in fails(run, capsys, "--input", str(run / "dev.en"),
                                             "--ref", str(tmp_path / "ref.fr"))
    assert "--nbest 3 is more than --beam 2" in fails(run, capsys, "--beam", "2", "--nbest", "3")


def test_foreign_checkpoints(run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(run / "run", other)
    js = other / "best.json"
    doc = json.loads(js.read_text(encoding="utf-8"))
    js.write_text(json.dumps({**doc, "format_version": 99}), encoding="utf-8")
    assert "format version 99" in fails(run, capsys, "--input", str(run / "dev.en"), model=other)
    doc["tgt_vocab"]["tokens"] = doc["tgt_vocab"]["tokens"][:-1]
    js.write_text(json.dumps(doc), encoding="utf-8")
    assert "do not match the model's" in fails(run, capsys, "--input", str(run / "dev.en"),
                                               model=other)


@pytest.mark.parametrize(("argv", "line"), [
    (["--beam", "0"], "argument --beam: must be at least 1 (1 = greedy), got 0"),
    (["--nbest", "0"], "argument --nbest: must be at least 1, got 0"),
    (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["--alpha", "-1"], "argument --alpha: must be at least 0, got -1"),
    (["--alpha", "inf"], "argument --alpha: must be a finite number, got 'inf'"),
])
def test_bad_numbers_get_one_line_from_argparse(run, capsys, argv, line):
    with pytest.raises(SystemExit) as e:
        translation.main(["--model", str(run / "run"), "--device", "cpu", *argv])
    assert e.value.code == 2
    out = capsys.readouterr()
    assert out.err.splitlines()[-1] == f"translate.py: error: {line}"
    assert out.out == "" and "Traceback" not in out.err


def test_output_paths_that_cannot_be_written_are_refused(run, tmp_path, capsys):
    (tmp_path / "figs").write_text("mine\n")
    for argv, said in ((["--output", str(tmp_path)], "is a directory, not a file"),
                       (["--output", str(tmp_path / "no" / "out.fr")], "is not a directory"),
                       (["--attention-png", str(tmp_path / "figs")], "is an existing file")):
        with pytest.raises(SystemExit) as e:
            translation.main(["--model", str(run / "run"), "--device", "cpu", *argv])
        assert e.value.code == 2
        assert said in capsys.readouterr().err.splitlines()[-1]


ROOT = Path(__file__).resolve().parent.parent
WAIT = 120  # seconds for an answer: a bound for a hung test, not a speed (the child loads NumPy)


@contextlib.contextmanager
def child(model, *argv):
    """translate.py in a child process on the CPU, reading a pipe that stays open until the
    test closes it; killed on the way out."""
    with subprocess.Popen([sys.executable, str(ROOT / "translate.py"), "--model", str(model),
                           "--device", "cpu", *argv],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}) as proc:
        try:
            yield proc
        finally:
            proc.kill()


def send(proc, text):
    proc.stdin.write(text.encode("utf-8"))
    proc.stdin.flush()


def answers(proc, n):
    """The next ``n`` lines on the child's stdout, with its stdin still open: failing if they
    have not come within WAIT seconds, or if more come."""
    got, end = b"", time.monotonic() + WAIT
    while got.count(b"\n") < n:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))
        assert ready, f"not {n} lines in {WAIT} s with stdin still open, only {got!r}"
        chunk = os.read(proc.stdout.fileno(), 1 << 16)
        assert chunk, f"stdout closed: {proc.stderr.read().decode()}"
        got += chunk
    assert got.count(b"\n") == n
    return got.decode("utf-8").split("\n")[:-1]


def words_lines(lengths, seed):
    """Lines of random_run's source words, all translated differently."""
    rng = np.random.default_rng(seed)
    return [" ".join(f"s{chr(97 + k)}" for k in rng.integers(0, 20, n)) for n in lengths]


def test_a_line_on_a_pipe_left_open_is_answered(random_run):
    with child(random_run, "--beam", "3") as proc:
        send(proc, "sa sb sc\n")
        assert len(answers(proc, 1)[0].split()) > 0
        send(proc, "sd se\n")
        assert len(answers(proc, 1)[0].split()) > 0
        proc.stdin.close()
        assert proc.wait(WAIT) == 0 and proc.stdout.read() == b""


def test_lines_arriving_in_pieces_are_answered_in_order_as_from_a_file(random_run, tmp_path,
                                                                       capsys):
    """Whole lines are answered as they come, cut anywhere; the answers are in input order,
    the same as --input's for the same lines; a long line's warning names its line number
    among all the lines read."""
    lines = words_lines((2, 9, 1, 55, 4, 0, 6), seed=2)
    (tmp_path / "in").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert translation.main(["--model", str(random_run), "--device", "cpu", "--input",
                             str(tmp_path / "in"), "--beam", "3", "--batch-size", "2",
                             "--quiet"]) == 0
    expected = capsys.readouterr().out.split("\n")[:-1]
    assert len(set(expected)) == len(lines)
    with child(random_run, "--beam", "3", "--batch-size", "2") as proc:
        half = len(lines[1]) // 2
        send(proc, lines[0] + "\n" + lines[1][:half])
        assert answers(proc, 1) == expected[:1]
        send(proc, lines[1][half:] + "\n" + lines[2] + "\n" + lines[3] + "\n" + lines[4][:3])
        assert answers(proc, 3) == expected[1:4]
        send(proc, lines[4][3:] + "\n" + lines[5] + "\n" + lines[6][:2])
        assert answers(proc, 2) == expected[4:6]
        # the last line, without a newline, ends with the input
        out, err = proc.communicate(lines[6][2:].encode("utf-8"), timeout=WAIT)
        assert proc.returncode == 0
        assert out.decode("utf-8").split("\n")[:-1] == expected[6:]
        assert "<stdin>:4: 55 tokens, cut to the trained maximum of 50" in err.decode()


def test_on_stdin_output_and_nbest_grow_by_line_and_ref_scores_at_the_end(random_run, tmp_path):
    lines = words_lines((3, 5), seed=4)
    (tmp_path / "ref").write_text("ta tb\ntc\n", encoding="utf-8")
    out = tmp_path / "out"
    out.write_text("an old file\n", encoding="utf-8")
    with child(random_run, "--beam", "3", "--nbest", "2", "--output", str(out), "--ref",
               str(tmp_path / "ref")) as proc:
        for n, line in enumerate(lines):
            send(proc, line + "\n")
            end = time.monotonic() + WAIT
            while len(out.read_text(encoding="utf-8").splitlines()) < 2 * (n + 1):
                assert time.monotonic() < end, f"line {n + 1} not in --output in {WAIT} s"
                time.sleep(0.05)
        rows = [r.split(" ||| ") for r in out.read_text(encoding="utf-8").splitlines()]
        assert [r[0] for r in rows] == ["0", "0", "1", "1"]
        stdout, err = proc.communicate(timeout=WAIT)  # closes stdin: the input ends
        assert proc.returncode == 0 and stdout == b""
        assert "BLEU = " in err.decode() and "source words  sentences   BLEU" in err.decode()


def test_ctrl_c_while_waiting_for_input_ends_quietly(random_run):
    with child(random_run) as proc:
        send(proc, "sa\n")
        assert len(answers(proc, 1)) == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(WAIT) == 128 + signal.SIGINT
        assert "Traceback" not in proc.stderr.read().decode()
