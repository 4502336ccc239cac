"""Quality at equal time (``bench --compare torch --corpus DIR``): the corpus's files, and on a
tiny corpus with a tiny budget that the JSON line is consistent (both sides trained as asked,
with the same sizes, scored on the same references, each BLEU the one sacrebleu gives for the
hypotheses written), never which side wins."""

import json
import shutil

import pytest
import sacrebleu
from helpers import small_corpus

from minirnnsearch import settings
from minirnnsearch.bench import cli, quality
from minirnnsearch.data.io import DataError


def _corpus(d):
    small_corpus(d, 80, 8, 10, seed=3)
    for lang in ("en", "fr"):
        shutil.copy(d / f"dev.{lang}", d / f"test.{lang}")
    return d


def test_corpus_files_finds_the_pair_or_says_what_is_missing(tmp_path):
    d = _corpus(tmp_path)
    src, tgt, files = quality.corpus_files(d, None)
    assert (src, tgt) == ("en", "fr") and files["test_tgt"] == d / "test.fr"
    assert quality.corpus_files(d, "fr-en")[2]["train_src"] == d / "train.fr"
    with pytest.raises(DataError, match="train.de: no such file"):
        quality.corpus_files(d, "en-de")
    (d / "train.de").write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match="de, en, fr; name the two languages with --pair"):
        quality.corpus_files(d, None)


def test_corpus_needs_minutes_and_compare(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--corpus", "x", "--compare", "torch"])
    with pytest.raises(SystemExit):
        cli.main(["--corpus", "x", "--minutes", "1"])
    assert "--corpus and --minutes go together" in capsys.readouterr().err


def test_both_sides_trained_alike_and_scored_alike(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    (tmp_path / "corpus").mkdir()
    d = _corpus(tmp_path / "corpus")
    out = tmp_path / "cmp"
    argv = ["--compare", "torch", "--corpus", str(d), "--minutes", "1", "--max-steps", "2",
            "--emb", "4", "--hidden", "5", "--align", "6", "--maxout", "3", "--batch", "4",
            "--vocab", "30", "--out", str(out), "--threads", "1", "--device", "cpu"]
    assert cli.main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    refs = (d / "test.fr").read_text(encoding="utf-8").splitlines()
    assert got["test_sentences"] == len(refs) and got["pair"] == "en-fr"
    assert "tok:13a" in got["sacrebleu"]
    ours, theirs = got["ours"], got["torch"]
    assert ours["sizes"] == theirs["sizes"]
    assert ours["sizes"]["batch"] == 4 and ours["sizes"]["emb"] == 4
    assert ours["updates"] == theirs["updates"] == 2
    assert ours["epochs"] == theirs["epochs"] > 0  # same pairs, same batch size
    assert (ours["lr"], ours["dropout"]) == tuple(
        settings.CORPUS_DEFAULTS[settings.FILES][k] for k in ("lr", "dropout"))
    assert theirs["lr"] == quality.TORCH_LR
    assert theirs["torch_version"] == torch.__version__ and theirs["threads"] == 1
    assert set(ours["hypotheses"]) == {"greedy", "beam5"} and set(theirs["hypotheses"]) == {
        "greedy"}
    for side in (ours, theirs):
        for key, path in side["hypotheses"].items():
            hyps = open(path, encoding="utf-8").read().splitlines()
            assert len(hyps) == len(refs)
            bleu = sacrebleu.BLEU(tokenize="13a")  # as train.py and translate.py score
            assert side[f"bleu_{key}"] == round(bleu.corpus_score(hyps, [refs]).score, 2)
            assert got["sacrebleu"] == str(bleu.get_signature())
    assert cli.main(argv) == 2  # never over an earlier comparison's runs
    assert "holds an earlier comparison" in capsys.readouterr().err
