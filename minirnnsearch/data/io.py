"""Reading line-aligned parallel text (one sentence per line, UTF-8), the format of Nematus,
OpenNMT-py and fairseq's raw text. Every error is one line naming the file and the line."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..oserrors import doing


class DataError(ValueError):
    """Bad input data; the message names the file (and line) and what is wrong."""


def decode_lines(raw_lines: Iterable[bytes], name: str | Path) -> list[str]:
    """UTF-8 lines without their line ends; DataError naming ``name`` and the line number
    for one that is not valid UTF-8."""
    lines = []
    for n, raw in enumerate(raw_lines, start=1):
        try:
            lines.append(raw.decode("utf-8").rstrip("\r\n"))
        except UnicodeDecodeError as e:
            raise DataError(f"{name}:{n}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at "
                            f"column {e.start + 1})") from None
    return lines


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file without their line ends (blank lines kept).
    DataError for a missing file, a directory, or a line that is not valid UTF-8; OSError,
    marked as a failure to read ``path``, if the system cannot read it."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a text file")
    with doing("read", path), open(path, "rb") as f:  # vanished since the check: one line
        return decode_lines(f, path)


def read_parallel(src_path: str | Path, tgt_path: str | Path
                  ) -> tuple[list[tuple[str, str]], int]:
    """Sentence pairs from two line-aligned files, and how many pairs were skipped.

    A pair with a blank side (an empty or whitespace-only line on either side) is skipped and
    counted, always. DataError for a missing or empty file (no non-blank line), different line
    counts, or a line that is not valid UTF-8."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    for path, lines in ((src_path, src), (tgt_path, tgt)):
        if not any(line.strip() for line in lines):
            raise DataError(f"{path}: empty file (no sentence in it)")
    if len(src) != len(tgt):
        raise DataError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: "
                        "parallel files must be line-aligned")
    pairs = [(s, t) for s, t in zip(src, tgt, strict=True) if s.strip() and t.strip()]
    return pairs, len(src) - len(pairs)
