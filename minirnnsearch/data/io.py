"""Reading line-aligned parallel text (one sentence per line, UTF-8), the format of Nematus,
OpenNMT-py and fairseq's raw text. Every error is one line naming the file and the line."""

from __future__ import annotations

import os
import select
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..oserrors import doing


class DataError(ValueError):
    """Bad input data; the message names the file (and line) and what is wrong."""


def decode_lines(raw_lines: Iterable[bytes], name: str | Path, first: int = 1) -> list[str]:
    """UTF-8 lines without their line ends; DataError naming ``name`` and the line number
    (``first`` for the first line) for one that is not valid UTF-8."""
    lines = []
    for n, raw in enumerate(raw_lines, start=first):
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


def arriving_lines(fd: int, name: str, most: int) -> Iterator[list[str]]:
    """The lines of the file descriptor ``fd`` (standard input: a pipe, a terminal) in groups,
    as they arrive: each group is the whole lines that had arrived when it was read, at most
    ``most`` of them, so that a reader waits only when no whole line is there; a file piped in
    all at once gives groups of ``most``. The last line may lack its newline. DataError
    (``decode_lines``) for a line that is not valid UTF-8; OSError, marked as a failure to read
    ``name``, if the system cannot read it."""
    lines: list[bytes] = []
    partial, ended, given = b"", False, 0
    while True:
        with doing("read", name):
            # read on while there is room and more is ready, and wait only while there is nothing
            while not ended and len(lines) < most and (
                    not lines or select.select([fd], [], [], 0)[0]):
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    *whole, partial = (partial + chunk).split(b"\n")
                    lines += whole
                else:
                    ended = True
                    lines += [partial] if partial else []
        if not lines:
            return  # the input has ended
        group, lines = lines[:most], lines[most:]
        yield decode_lines(group, name, first=given + 1)
        given += len(group)
