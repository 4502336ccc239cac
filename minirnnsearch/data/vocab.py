"""Word vocabularies: the most frequent words, the rest ``<unk>`` (paper: 30,000 per side)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ..cli import int_at_least

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIALS = (PAD, UNK, BOS, EOS)
# --vocab-size's type: the specials and at least one word
vocab_size = int_at_least(len(SPECIALS) + 1, f"the {len(SPECIALS)} special tokens and one word")


class Vocab:
    """Token <-> id. Ids 0-3 are <pad>, <unk>, <s>, </s>."""

    def __init__(self, tokens: list[str]) -> None:
        if tuple(tokens[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("a vocabulary lists each token once")

    @classmethod
    def build(cls, sentences: Iterable[list[str]], max_size: int) -> Vocab:
        """The ``max_size - 4`` most frequent tokens (ties alphabetical) after the specials."""
        counts = Counter(tok for sent in sentences for tok in sent)
        for s in SPECIALS:
            counts.pop(s, None)
        words = sorted(counts, key=lambda t: (-counts[t], t))[: max(0, max_size - len(SPECIALS))]
        return cls([*SPECIALS, *words])

    def encode(self, tokens: list[str]) -> list[int]:
        """Ids of ``tokens``, unknown ones as UNK_ID; no </s> added."""
        return [self.index.get(t, UNK_ID) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` up to the first </s>, without <pad> and <s>."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(self.tokens[i])
        return out

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens

    def to_dict(self) -> dict:
        return {"tokens": self.tokens}

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        return cls(list(d["tokens"]))
