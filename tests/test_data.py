"""Tokenisation, vocabularies, reading parallel files (every bad-input case), lines as they
arrive on a pipe, batches."""

import os

import numpy as np
import pytest

from minirnnsearch.data import (
    EOS_ID,
    PAD_ID,
    UNK_ID,
    DataError,
    Vocab,
    detokenize,
    epoch_batches,
    filter_by_length,
    make_batch,
    padding_share,
    read_lines,
    read_parallel,
    tokenize,
)
from minirnnsearch.data.batching import cut
from minirnnsearch.data.io import arriving_lines


@pytest.mark.parametrize("text", [
    "l'Europe, c'est (très) bien...", "I see it.", "  two   spaces  ", "3.5 km/h — ok?!",
    "j'aime l'homme qu'il voit.", "naïve café_bar «guillemets»", "", "a-b-c", "x ￭ y",
])
def test_tokenize_round_trips(text):
    assert detokenize(tokenize(text)) == " ".join(text.split())


def test_tokenize_splits_punctuation_and_elision():
    assert tokenize("Je l'aime, vraiment.") == ["Je", "l'￭", "aime", "￭,", "vraiment", "￭."]


def test_vocab_build_is_deterministic_capped_and_round_trips():
    sents = [["b", "a", "c"], ["a", "b"], ["a", "d"]]
    v = Vocab.build(sents, max_size=6)
    assert v.tokens == ["<pad>", "<unk>", "<s>", "</s>", "a", "b"]  # a:3, b:2, c/d cut
    assert v.encode(["a", "d", "b"]) == [4, UNK_ID, 5]
    assert v.decode([4, 5, EOS_ID, 4]) == ["a", "b"]
    assert v.decode([2, 4, PAD_ID]) == ["a"]
    assert Vocab.from_dict(v.to_dict()) == v
    assert Vocab.build(list(reversed(sents)), 6) == v
    with pytest.raises(ValueError):
        Vocab(["a", "b"])


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_read_parallel_skips_and_counts_blank_pairs(tmp_path):
    src = write(tmp_path / "s", b"a b\n\nc\nd\n")
    tgt = write(tmp_path / "t", b"x\ny\n  \nz\n")
    pairs, skipped = read_parallel(src, tgt)
    assert pairs == [("a b", "x"), ("d", "z")] and skipped == 2


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.en: no such file"):
        read_parallel(tmp_path / "nope.en", tmp_path / "nope.fr")


def test_empty_file(tmp_path):
    src = write(tmp_path / "s.en", b"a\n")
    tgt = write(tmp_path / "t.fr", b"\n \n")
    with pytest.raises(DataError, match=r"t\.fr: empty file"):
        read_parallel(src, tgt)


def test_unequal_line_counts_name_both(tmp_path):
    src = write(tmp_path / "s.en", b"a\nb\nc\n")
    tgt = write(tmp_path / "t.fr", b"x\ny\n")
    with pytest.raises(DataError, match=r"s\.en has 3 lines but .*t\.fr has 2"):
        read_parallel(src, tgt)


def test_non_utf8_line_number(tmp_path):
    src = write(tmp_path / "s.en", b"a\nb\n")
    tgt = write(tmp_path / "t.fr", b"x\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"t\.fr:2: not valid UTF-8 \(byte 0xe9 at column 4\)"):
        read_parallel(src, tgt)
    with pytest.raises(DataError, match="is a directory"):
        read_lines(tmp_path)


def test_arriving_lines_come_in_groups_of_what_has_arrived():
    r, w = os.pipe()
    with open(r, "rb", buffering=0) as reader, open(w, "wb", buffering=0) as writer:
        writer.write(b"a\nb\r\nc\nd")  # d is not whole yet
        lines = arriving_lines(reader.fileno(), "<pipe>", 2)
        assert next(lines) == ["a", "b"]
        assert next(lines) == ["c"]  # what has arrived, without waiting for d
        writer.write(b"e\n\nlast")
        assert next(lines) == ["de", ""]
        writer.close()
        assert list(lines) == [["last"]]  # the end of the input ends the last line


def test_arriving_lines_number_a_bad_line_across_groups():
    r, w = os.pipe()
    with open(r, "rb", buffering=0) as reader:
        with open(w, "wb") as writer:
            writer.write(b"x\ny\nz\xe9\n")
        with pytest.raises(DataError, match=r"<pipe>:3: not valid UTF-8 \(byte 0xe9"):
            list(arriving_lines(reader.fileno(), "<pipe>", 1))


def test_make_batch_pads_and_masks():
    b = make_batch([[5, 6, 7], [8]], [[9], [10, 11]])
    np.testing.assert_array_equal(b.src, [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]])
    np.testing.assert_array_equal(b.src_mask, [[1, 1, 1, 1], [1, 1, 0, 0]])
    np.testing.assert_array_equal(b.tgt, [[9, EOS_ID, PAD_ID], [10, 11, EOS_ID]])
    assert b.n_tokens == 5 and b.src.dtype == np.int64 and b.tgt_mask.dtype == np.float32


def test_filter_by_length():
    pairs = [([1] * 3, [1] * 2), ([1] * 4, [1]), ([1], [1] * 5)]
    assert filter_by_length(pairs, 3) == [pairs[0]]


def test_epoch_batches_cover_everything_deterministically():
    rng = np.random.default_rng(0)
    lengths = [(int(a), int(b)) for a, b in rng.integers(1, 50, (1000, 2))]
    batches = epoch_batches(lengths, 8, seed=1, epoch=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert batches == epoch_batches(lengths, 8, seed=1, epoch=0)
    assert batches != epoch_batches(lengths, 8, seed=1, epoch=1)
    assert batches != epoch_batches(lengths, 8, seed=2, epoch=0)
    # sorted within chunks of 20 batches: each batch spans a narrow band of source lengths
    spread = np.mean([max(lengths[i][0] for i in b) - min(lengths[i][0] for i in b)
                      for b in batches])
    assert spread < 10  # a random batch of 8 would span ~35


def test_a_larger_sort_pool_pads_less_and_covers_everything():
    rng = np.random.default_rng(0)
    lengths = [(int(a), int(b)) for a, b in rng.integers(1, 50, (2000, 2))]
    shares = []
    for pool in (1, 20, 0):                           # 1: unsorted batches; 0: the whole epoch
        batches = epoch_batches(lengths, 8, seed=1, epoch=0, pool=pool)
        assert sorted(i for b in batches for i in b) == list(range(2000))
        assert batches == epoch_batches(lengths, 8, seed=1, epoch=0, pool=pool)
        shares.append(padding_share(lengths, batches))
    assert shares[0] > shares[1] > shares[2]
    whole = epoch_batches(lengths, 8, seed=1, epoch=0, pool=0)
    assert whole != epoch_batches(lengths, 8, seed=1, epoch=1, pool=0)  # shuffled batch order
    assert max(lengths[i][0] for i in whole[0]) - min(lengths[i][0] for i in whole[0]) <= 1
    assert epoch_batches(lengths, 8, 1, 0) == epoch_batches(lengths, 8, 1, 0, pool=20)


def test_padding_share_counts_the_cells_beyond_each_sentence():
    lengths = [(1, 4), (3, 4), (2, 1)]             # + </s>: source 2, 4, 3; target 5, 5, 2
    assert padding_share(lengths, [[0, 1], [2]]) == pytest.approx(2 / 23)
    assert padding_share(lengths, [[0, 1, 2]]) == pytest.approx(1 - 21 / 27)
    assert padding_share(lengths, []) == 0.0


def test_token_batches_fill_up_to_the_budget_and_cover_everything():
    """--batch-tokens: each batch of the sorted pool holds as many pairs as fit in the budget
    on both sides (pairs x (longest + </s>)), one more would not fit; a single pair longer than
    the budget is a batch of its own; short pairs go many to a batch, long ones few."""
    rng = np.random.default_rng(0)
    lengths = [(int(a), int(a) + int(d)) for a, d in zip(rng.integers(1, 50, 1000),
                                                           rng.integers(0, 4, 1000), strict=True)]
    lengths[7] = (80, 3)                                 # over the budget alone
    chunk = sorted(range(1000), key=lambda k: lengths[k])
    batches = cut(chunk, lengths, 8, tokens=64)
    assert [k for b in batches for k in b] == chunk
    cells = [len(b) * (max(max(lengths[k]) for k in b) + 1) for b in batches]
    assert all(c <= 64 for b, c in zip(batches, cells, strict=True) if len(b) > 1)
    assert [7] in batches
    for b, nxt in zip(batches, batches[1:], strict=False):
        assert (len(b) + 1) * (max(max(lengths[k]) for k in [*b, nxt[0]]) + 1) > 64
    assert min(len(b) for b in batches if max(lengths[b[-1]]) < 5) > max(
        len(b) for b in batches if min(lengths[b[0]]) > 30)
    assert cut(chunk, lengths, 8) == [chunk[a : a + 8] for a in range(0, 1000, 8)]
    for pool in (0, 2):
        epoch = epoch_batches(lengths, 8, seed=1, epoch=0, pool=pool, tokens=64)
        assert sorted(k for b in epoch for k in b) == list(range(1000))
        assert epoch == epoch_batches(lengths, 8, seed=1, epoch=0, pool=pool, tokens=64)
        assert padding_share(lengths, epoch) < padding_share(
            lengths, epoch_batches(lengths, 8, seed=1, epoch=0, pool=1))
