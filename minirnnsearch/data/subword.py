"""How text becomes tokens: whole words (the default) or subword units (sentencepiece).

A *segmenter* turns a raw line into tokens and tokens back into a raw line:

- ``WordSegmenter``: the reversible word tokeniser of ``tokenize.py`` (punctuation split off
  with joiner marks); rare words beyond the vocabulary become ``<unk>``.
- ``SubwordSegmenter``: a sentencepiece model (Kudo & Richardson 2018, unigram language model
  of Kudo 2018), as Nematus, OpenNMT-py and fairseq use it. A rare word is spelt in pieces
  (``▁Bon``, ``aire``), digits one by one, and a character the model never saw as its UTF-8
  bytes (``<0xE2>``...), so the output has no ``<unk>`` and decodes to plain text.

``train.py --subword N`` trains one model of N pieces on both sides of the training data
together (joint: measured in the README, "Real data") and stores it in the run directory as
``subword.model``, a sentencepiece protobuf (never unpickled). The checkpoint json records its
SHA-256 under ``subword``, so a run directory whose model file was swapped or damaged is
refused with a one-line error instead of translating into nonsense. sentencepiece is an
optional dependency: ``pip install -e ".[subword]"``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from ..oserrors import doing, make_dir, reports_os_errors, write_atomic
from .io import DataError
from .tokenize import JOINER, detokenize, tokenize

MODEL_FILE = "subword.model"


class Segmenter(Protocol):
    kind: str

    def encode(self, line: str) -> list[str]:
        """The tokens of a raw line."""

    def decode(self, tokens: list[str]) -> str:
        """The raw line of tokens (inverse of ``encode`` up to whitespace)."""

    def show(self, token: str) -> str:
        """A token as printed beside an alignment."""

    def pieces(self) -> list[str]:
        """Tokens every vocabulary of a run must hold whether or not the training text uses
        them (none for words)."""


class WordSegmenter:
    """Words and punctuation with joiner marks (``tokenize.py``)."""

    kind = "word"

    def encode(self, line: str) -> list[str]:
        return tokenize(line)

    def decode(self, tokens: list[str]) -> str:
        return detokenize(tokens)

    def show(self, token: str) -> str:
        return token.replace(JOINER, "")

    def pieces(self) -> list[str]:
        return []


def _sentencepiece() -> Any:
    try:
        import sentencepiece
    except ImportError:
        raise DataError("subword units need sentencepiece: pip install -e \".[subword]\""
                        ) from None
    return sentencepiece


class SubwordSegmenter:
    """Sentencepiece pieces; ``▁`` marks the start of a word."""

    kind = "subword"

    def __init__(self, model_file: str | Path, model: bytes | None = None) -> None:
        """The model in ``model_file``, or in ``model`` (its bytes, already read from it)."""
        self.path = Path(model_file)
        if model is None:
            model = _read(self.path)
        self.sp = _sentencepiece().SentencePieceProcessor(model_proto=model)

    def encode(self, line: str) -> list[str]:
        # every run of whitespace (tabs, no-break spaces) one space, as the word tokeniser does
        return self.sp.encode(" ".join(line.split()), out_type=str)

    def decode(self, tokens: list[str]) -> str:
        return self.sp.decode_pieces(tokens)

    def show(self, token: str) -> str:
        return token

    def pieces(self) -> list[str]:
        """Every piece of the model but its control and unknown symbols: with byte fallback
        any text segments into these, so a vocabulary that holds them all has no <unk> (the
        byte pieces of digits and of characters the training text lacks included)."""
        sp = self.sp
        return [sp.id_to_piece(i) for i in range(sp.get_piece_size())
                if not (sp.is_control(i) or sp.is_unknown(i))]


def _read(path: Path) -> bytes:
    """The bytes of ``path``, read by Python (not by sentencepiece's C++, whose errors name
    neither the operation nor the cause in the system's words)."""
    with doing("read", path):
        return path.read_bytes()


def train_subword(texts: Iterable[str], run_dir: str | Path, pieces: int) -> dict[str, Any]:
    """Train a unigram sentencepiece model of ``pieces`` pieces on ``texts`` (raw lines, both
    sides), write it to ``run_dir/subword.model`` (``oserrors.write_atomic``: a temporary file,
    then renamed), and return the record kept in the checkpoint json: file name, size and
    SHA-256.

    Settings: identity normalisation (the text is not rewritten, so output detokenises to
    the characters it was trained on), digits split one by one, byte fallback for characters
    outside the 99.95% most frequent, extra whitespace removed."""
    spm = _sentencepiece()
    model = io.BytesIO()  # sentencepiece writes no file: this code writes it, atomically
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=(" ".join(t.split()) for t in texts), model_writer=model,
            vocab_size=pieces, model_type="unigram", normalization_rule_name="identity",
            split_digits=True, byte_fallback=True, character_coverage=0.9995,
            input_sentence_size=2_000_000, shuffle_input_sentence=True, num_threads=1,
            minloglevel=2)
    except RuntimeError as e:  # e.g. more pieces than the text can give
        raise DataError(f"--subword {pieces}: sentencepiece could not train "
                        f"({' '.join(str(e).split())[:200]})") from None
    make_dir(run_dir)
    write_atomic(Path(run_dir) / MODEL_FILE, model.getvalue())
    return {"file": MODEL_FILE, "pieces": pieces,
            "sha256": hashlib.sha256(model.getvalue()).hexdigest()}


def segmenters(run_dir: str | Path, record: dict[str, Any] | None
               ) -> tuple[Segmenter, Segmenter]:
    """(source, target) segmenters of a run from its checkpoint's ``subword`` record (None:
    words). DataError if the model file is missing or is not the one the run was trained
    with."""
    if record is None:
        return WordSegmenter(), WordSegmenter()
    path = Path(run_dir) / record["file"]
    if not path.is_file():
        raise DataError(f"{path}: missing; this run was trained with subword units")
    model = _read(path)  # read once: the bytes checked are the bytes loaded
    if hashlib.sha256(model).hexdigest() != record["sha256"]:
        raise DataError(f"{path}: not the subword model this run was trained with "
                        "(SHA-256 differs from the checkpoint's)")
    seg = SubwordSegmenter(path, model)
    return seg, seg


def compare(train: tuple[str, str], dev: tuple[str, str], pieces: int, work: Path
            ) -> dict[str, dict[str, float]]:
    """Joint against per-side models of ``pieces`` pieces on the training files ``train``
    (src, tgt), measured on ``dev``: pieces per sentence on each side, the share of target
    pieces that also occur in their source sentence (copyable: names, numbers, placeholders),
    pieces kept in each vocabulary, and dev target pieces never seen in training."""
    from .io import read_lines

    tr, dv = [read_lines(p) for p in train], [read_lines(p) for p in dev]
    joint = SubwordSegmenter(work / "joint" / train_subword(tr[0] + tr[1], work / "joint",
                                                            pieces)["file"])
    sides = [SubwordSegmenter(work / side / train_subword(lines, work / side, pieces)["file"])
             for side, lines in zip(("src", "tgt"), tr, strict=True)]
    out = {}
    for name, (s, t) in (("joint", (joint, joint)), ("per side", tuple(sides))):
        seen = [{p for line in tr[k] for p in seg.encode(line)} for k, seg in enumerate((s, t))]
        src, tgt = [s.encode(x) for x in dv[0]], [t.encode(x) for x in dv[1]]
        n_tgt = sum(map(len, tgt))
        out[name] = {
            "src pieces/sentence": sum(map(len, src)) / len(src),
            "tgt pieces/sentence": n_tgt / len(tgt),
            "tgt pieces also in the source": sum(p in set(a) for a, b in zip(src, tgt, strict=True)
                                                 for p in b) / n_tgt,
            "src vocabulary": len(seen[0]), "tgt vocabulary": len(seen[1]),
            "dev tgt pieces unseen": sum(p not in seen[1] for b in tgt for p in b) / n_tgt}
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.data.subword",
                                 description="Measure a joint subword model against one per "
                                             "side (see compare).")
    ap.add_argument("train_src")
    ap.add_argument("train_tgt")
    ap.add_argument("dev_src")
    ap.add_argument("dev_tgt")
    ap.add_argument("--pieces", type=int, default=8000)
    return ap


@reports_os_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as work:
            result = compare((args.train_src, args.train_tgt), (args.dev_src, args.dev_tgt),
                             args.pieces, Path(work))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keys = list(result["joint"])
    print(f"{'':32}" + "".join(f"{k:>12}" for k in result))
    for k in keys:
        print(f"{k:32}" + "".join(f"{result[m][k]:>12.4g}" for m in result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
