"""Reversible tokenisation with joiner marks (as OpenNMT's tokenizer does it).

Punctuation is split off words; where two tokens touched in the text, a joiner ``￭`` marks the
side that is not a word: ``"l'Europe,"`` -> ``["l'￭", "Europe", "￭,"]``. ``detokenize`` glues
them back, so ``detokenize(tokenize(s)) == " ".join(s.split())`` for every string: output can
be scored by sacrebleu against the raw reference.
"""

from __future__ import annotations

import re

JOINER = "￭"
# a word (letters/digits, with a trailing apostrophe for elisions: l' j' qu'), or one other char
_PIECE = re.compile(r"\w+['’]?|[^\w\s]", re.UNICODE)


def _is_word(piece: str) -> bool:
    return piece.isalnum() or piece.replace("_", "a").isalnum()


def tokenize(line: str) -> list[str]:
    """Split ``line`` into tokens with joiner marks (see the module docstring)."""
    tokens: list[str] = []
    for chunk in line.split():
        pieces = _PIECE.findall(chunk)
        for k, piece in enumerate(pieces):
            if k > 0:
                if _is_word(pieces[k - 1]):
                    piece = JOINER + piece
                else:
                    tokens[-1] += JOINER
            tokens.append(piece)
    return tokens


def detokenize(tokens: list[str]) -> str:
    """Inverse of ``tokenize``: tokens joined by spaces except across a joiner."""
    out: list[str] = []
    glue = True  # no space before the first token
    for tok in tokens:
        if tok.startswith(JOINER) and len(tok) > 1:
            tok, glue = tok[1:], True
        if glue or not out:
            out.append(tok)
        else:
            out.append(" " + tok)
        glue = False
        if tok.endswith(JOINER) and len(tok) > 1:
            out[-1] = out[-1][: -len(JOINER)]
            glue = True
    return "".join(out)
