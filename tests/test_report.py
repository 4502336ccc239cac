"""report.py: BLEU by source length (the paper's Figure 2), buckets and values against
sacrebleu called directly on hand-picked sentences."""

import pytest
import sacrebleu

from minirnnsearch.report import bleu_by_length, format_length_table


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
