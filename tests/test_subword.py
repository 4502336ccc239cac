"""Subword units: sentencepiece round trip, a subword run translating raw text to raw text,
its model kept on resume and checked against the checkpoint's fingerprint."""

import json
import sys

import pytest
from helpers import small_corpus

from minirnnsearch import checkpoint, training, translation
from minirnnsearch.data.io import DataError
from minirnnsearch.data.subword import SubwordSegmenter, segmenters, train_subword
from minirnnsearch.data.vocab import UNK, UNK_ID

pytest.importorskip("sentencepiece")

HARD = ["Zyxwvutsrq's «Bonjour», dit-il ! (vraiment?)",
        "Version 3.14159 du 2026-11-25 : 100% des fichiers, erreur %s.",
        "--strip-trailing-slashes  enlever les « / » → ✓ 漢字",
        "Don't   split\tthese   spaces;  x=y+z*2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return small_corpus(tmp_path_factory.mktemp("sw"), 300, 10, 10, seed=5)


@pytest.fixture(scope="module")
def seg(corpus, tmp_path_factory):
    lines = [*(corpus / "train.en").read_text().splitlines(),
             *(corpus / "train.fr").read_text().splitlines(),
             *(f"page {n} of {7 * n + 3}, line {n % 13}." for n in range(100))]
    d = tmp_path_factory.mktemp("model")
    record = train_subword(lines, d, 400)
    assert record["pieces"] == 400 and (d / record["file"]).is_file()
    return SubwordSegmenter(d / record["file"])


@pytest.mark.parametrize("text", HARD)
def test_round_trip_rare_words_digits_punctuation(seg, text):
    pieces = seg.encode(text)
    assert UNK not in pieces
    assert seg.decode(pieces) == " ".join(text.split())


def test_rare_words_in_pieces_digits_one_by_one_unseen_characters_as_bytes(seg):
    assert len(seg.encode("Zyxwvutsrq")) > 2
    assert [p.lstrip("▁") for p in seg.encode("2026") if p != "▁"] == ["2", "0", "2", "6"]
    assert any(p.startswith("<0x") for p in seg.encode("漢"))


def train_args(corpus, out, *extra):
    return ["--train-src", str(corpus / "train.en"), "--train-tgt", str(corpus / "train.fr"),
            "--dev-src", str(corpus / "dev.en"), "--dev-tgt", str(corpus / "dev.fr"),
            "--preset", "tiny", "--batch-size", "16", "--valid-every", "4", "--device", "cpu",
            "--quiet", "--subword", "400", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert training.main(train_args(corpus, out, "--max-steps", "8")) == 0
    return out


def test_subword_run_translates_raw_text_to_raw_text(run, capsys):
    tr = translation.Translator(run, device="cpu")
    assert tr.src_seg.kind == "subword"
    # a word no training sentence has (of letters the training text has) is spelt in known
    # pieces, not <unk>
    rare = tr.src_seg.encode("snorblet")
    assert len(rare) > 2 and UNK_ID not in tr.src_vocab.encode(rare), rare
    assert UNK_ID not in tr.src_vocab.encode(tr.src_seg.encode("The snorblet sees the houses."))
    src = ["The dog sees the cat.", "", "We buy them near the river."]
    results = tr.translate(src, beam=2)
    for line, hs in zip(src, results, strict=True):
        text, _, _, src_shown, _ = hs[0]
        assert "▁" not in text and "<0x" not in text and (text == "") == (line == "")
        if line:  # the detokenised output is the pieces decoded by the run's model
            assert src_shown[:-1] == tr.src_seg.encode(line)
    code = translation.main(["--model", str(run), "--device", "cpu", "--quiet", "--unk-replace",
                             "--input", "/dev/null"])
    assert code == 0
    assert "--unk-replace does nothing" in capsys.readouterr().err


def test_digits_and_unseen_characters_reach_the_model_as_known_pieces(run):
    tr = translation.Translator(run, device="cpu")
    for text in ("42", "Zebra", "漢"):
        pieces = tr.src_seg.encode(text)
        assert UNK_ID not in tr.src_vocab.encode(pieces), (text, pieces)


def test_resume_keeps_the_runs_subword_model(corpus, run, tmp_path):
    out = tmp_path / "r"
    assert training.main(train_args(corpus, out, "--max-steps", "4")) == 0
    before = (out / "subword.model").read_bytes()
    record = checkpoint.load_checkpoint(out, "last")[2]["subword"]
    assert training.main(train_args(corpus, out, "--max-steps", "8", "--resume",
                                    "--subword", "300")) == 2  # another model: a new run
    assert training.main(train_args(corpus, out, "--max-steps", "8", "--resume")) == 0
    assert (out / "subword.model").read_bytes() == before
    assert checkpoint.load_checkpoint(out, "last")[2]["subword"] == record


def test_swapped_subword_model_is_refused(corpus, run, tmp_path, capsys):
    out = tmp_path / "s"
    assert training.main(train_args(corpus, out, "--max-steps", "4")) == 0
    (out / "subword.model").write_bytes((run / "subword.model").read_bytes()[:-7] + b"garbage")
    meta = json.loads((out / "best.json").read_text())
    with pytest.raises(DataError, match="not the subword model this run was trained with"):
        segmenters(out, meta["subword"])
    capsys.readouterr()
    code = translation.main(["--model", str(out), "--device", "cpu", "--input", "/dev/null"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "SHA-256 differs" in err
    (out / "subword.model").unlink()
    with pytest.raises(DataError, match="missing; this run was trained with subword units"):
        segmenters(out, meta["subword"])


def test_too_many_pieces_is_one_line(corpus, tmp_path, capsys):
    code = training.main(train_args(corpus, tmp_path / "x", "--max-steps", "1",
                                    "--subword", "100000"))
    err = capsys.readouterr().err
    assert code == 2 and "--subword 100000: sentencepiece could not train" in err


def test_without_sentencepiece_the_error_says_how_to_install(corpus, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # import fails
    code = training.main(train_args(corpus, tmp_path / "y", "--max-steps", "1"))
    err = capsys.readouterr().err
    assert code == 2 and 'pip install -e ".[subword]"' in err and err.count("error:") == 1
