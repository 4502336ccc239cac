"""The story command: every variant, the two figures, and reuse of existing runs."""

from minirnnsearch import story


def test_story_trains_every_model_and_draws_both_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the built-in corpus is cached under ./.cache
    argv = ["--minutes", "1", "--test-size", "25", "--beam", "2", "--device", "cpu",
            "--out", "runs", "--figures", "figs",
            "--max-steps", "3", "--preset", "tiny", "--valid-size", "10", "--quiet"]  # train.py
    assert story.main(argv) == 0
    out = capsys.readouterr().out
    for label in story.LABELS.values():
        assert f"{label}: test BLEU" in out
    assert "source words  sentences   BLEU" in out and "RNNsearch alignment of:" in out
    for png in ("bleu_by_length.png", "alignment.png"):
        assert (tmp_path / "figs" / png).read_bytes()[:4] == b"\x89PNG"
    assert story.main(argv) == 0
    assert capsys.readouterr().err.count("reusing runs/") == len(story.ORDER)
