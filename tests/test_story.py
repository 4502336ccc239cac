"""The story command: every variant on both pairs, the figures, and reuse of existing runs."""

import functools
import json

from minirnnsearch import story, training
from minirnnsearch.data import corpus


def test_story_trains_every_variant_on_both_pairs_and_draws_the_figures(tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.chdir(tmp_path)  # the built-in corpora are cached under ./.cache
    small = functools.partial(corpus.builtin_corpus, n_train=400, n_dev=20, n_test=30)
    monkeypatch.setattr(training, "builtin_corpus", small)
    monkeypatch.setattr(story, "builtin_corpus", small)
    argv = ["--pair", "both", "--minutes", "1", "--test-size", "25", "--beam", "2",
            "--device", "cpu", "--out", "runs", "--figures", "figs",
            "--max-steps", "3", "--preset", "tiny", "--valid-size", "10", "--quiet",  # train.py
            "--batch-size", "8", "--max-len", "30"]
    assert story.main(argv) == 0
    out = capsys.readouterr().out
    for pair in ("en-fr", "en-de"):
        for variant, label in story.LABELS.items():
            assert f"{pair} {label}: test BLEU" in out
            meta = json.loads((tmp_path / "runs" / pair / variant / "best.json").read_text())
            assert meta["pair"] == pair
        assert f"{pair} RNNsearch alignment of: {story.SENTENCES[pair]}" in out
        for png in (f"bleu_by_length-{pair}.png", f"alignment-{pair}.png"):
            assert (tmp_path / "figs" / png).read_bytes()[:4] == b"\x89PNG"
    assert "source words  sentences   BLEU" in out
    assert story.main(argv) == 0
    assert capsys.readouterr().err.count(": reusing runs/") == 2 * len(story.ORDER)
