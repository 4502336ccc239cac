"""A real corpus of prose: manual pages and their translations.

Debian installs the manual pages of many packages with translations made by people (dpkg's,
apt's, man-db's, shadow's and others' translators; the manpages-l10n project for the rest): the
English page ``/usr/share/man/man1/apropos.1.gz`` and its French one
``/usr/share/man/fr/man1/apropos.1.gz``. Unlike the short messages of ``real.py``, this is
prose: what a program does and how, in sentences of 10 to 20 words. This module reads both
pages of each pair (roff, with a small reader below: no groff needed), aligns them by their
structure, splits aligned paragraphs into sentences, cleans and deduplicates the sentence pairs
and writes a reproducible train/dev/test split::

    python -m minirnnsearch.data.manpages --pair en-fr --out .cache/man/en-fr
    python -m minirnnsearch.data.manpages --pair en-de --out .cache/man/en-de \\
        --source /usr/share/man --source .cache/man-l10n/usr/share/man

Each ``--source`` is a man root with English pages in ``manN/`` and translations in
``LANG/manN/``. An English page is looked up in every source, so a root holding translations
only, like the manpages-fr or manpages-de package unpacked with ``dpkg-deb -x`` (not
installed), adds translations of the English pages installed.

Reading and cleaning, in order (each drop is counted by reason in the printed summary):
- pages: a translation is paired with the English page of the same section and file name; one
  without it, or whose English page was already read (through a link, or with another source's
  translation), is skipped; an unreadable or corrupt ``.gz`` is skipped with a message naming
  it (and its English page can still be read with another source's translation); a stub page,
  one that only sources another (``.so``), on either side, is skipped and is not a page read;
- roff: escapes (fonts, sizes, special characters, accents, strings) are resolved or removed,
  font macros (``.B``, ``.BR``, ...) keep their text, comments and macro definitions are
  dropped; a one-line conditional is followed where its condition is plain (``n``, ``t``, a
  string comparison), a multi-line one is dropped (an ``.ie``'s condition still decides its
  ``.el``); tables and verbatim text (``.nf``, ``.EX``) count only as blocks;
- structure: a page is its sections (``.SH``/``.SS``), a section a list of blocks, each a
  paragraph, an item's tag (``.TP``, ``.IP``) or a table/verbatim block; the translators'
  section (TRADUCTION, ÜBERSETZUNG, TRANSLATION) is removed from both sides; a page whose two
  sides have different numbers of sections is dropped; a section is aligned block by block only
  if both sides have the same sequence of block kinds, and dropped otherwise (the page's other
  sections are kept); the aligned paragraphs are used, tags and code are not; an mdoc page
  (``.Sh``) has no sections;
- sentences: a paragraph is split after ``.``, ``!`` or ``?`` (and up to two closing quotes or
  brackets) followed by a capital or a digit, but not after an abbreviation (e.g., i.e., p. ex.,
  z. B., ...) or a single letter or digit; a paragraph gives sentence pairs only if both sides
  have as many sentences and, when there are several, each pair's length ratio in characters
  is within 0.5-2.2 (a wrong split otherwise pairs neighbours);
- pairs: as ``real.py``'s (``real.drop_reason``): 2 to 80 words on each side, a length ratio of
  at most 3, a translation that differs from the original and has a letter, and here also one
  that is not English left untranslated; deduplicated on the English side
  (``real.deduplicate``), so no English sentence is in two splits.

The split is ``real.split``'s: by SHA-256 of (seed, English sentence), the first ``--test`` to
test, the next ``--dev`` to dev, the rest (or its first ``--train-size``) to train. The corpus
is not part of the repository: the pages carry their packages' licences (GPL, BSD, the Linux
man-pages' own, ...) and the translations their translators' (manpages-l10n: GPL 3 or later).
``SOURCES.tsv`` lists every page read with its English original, its number of aligned
paragraphs and kept sentence pairs (before deduplication), and, for an installed page, the
Debian package, version and copyright file of the translation and, in three more columns, of the
English original, which is often another package's (a manpages-fr translation of coreutils'
``ls.1``); both from one ``dpkg -S``. A page of an unpacked .deb has none: see the .deb's own
copyright file.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..oserrors import reports_os_errors
from .real import (
    add_split_arguments,
    deduplicate,
    drop_reason,
    packages,
    write_corpus,
)
from .roff import Section, read

DEFAULT_SOURCES = ("/usr/share/man",)
_PAIR = re.compile(r"en-([a-z]{2,3}(?:_[A-Z]{2})?)")  # en-fr, en-de, en-pt_BR
_CREDITS = re.compile(r"TRADUCT|ÜBERSETZ|UBERSETZ|TRANSLAT", re.I)  # the translators' section


class ManPageError(ValueError):
    """A page that cannot be read, or sources with no pages; the message names them."""


class Page(NamedTuple):
    path: Path        # the translation
    original: Path    # the English page
    paragraphs: int   # aligned paragraph pairs
    pairs: int        # kept sentence pairs, before deduplication


def read_page(path: Path) -> list[Section] | None:
    """The sections of a gzipped page (UTF-8, or Latin-1 for old pages); None for a stub, a
    page with no sections that sources another (``.so man1/other.1``)."""
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise ManPageError(f"{path}: unreadable ({reason})") from None
    try:
        reader = read(data.decode("utf-8"))
    except UnicodeDecodeError:
        reader = read(data.decode("latin-1"))
    return None if reader.sources_another and not reader.sections else reader.sections


# -- alignment ---------------------------------------------------------------------------------

def find_pages(sources: list[str], lang: str, drops: Counter) -> Iterator[tuple[Path, Path]]:
    """(translation, English page) for each ``SOURCE/LANG/manN/*.gz``, in order of the sources
    and then of the paths, links after files; the English page is ``manN/`` with the same file
    name in the first source that has it. Several translations may have one English page
    (links, or one per source): ``build`` reads the first that it can."""
    roots = [Path(s) for s in sources]
    for root in roots:
        if not root.is_dir():
            raise ManPageError(f"--source {root}: not a directory")
    for root in roots:
        for page in sorted((root / lang).glob("man*/*.gz"), key=lambda p: (p.is_symlink(), p)):
            originals = [r / page.parent.name / page.name for r in roots]
            original = next((p for p in originals if p.exists()), None)
            if original is None:
                drops["pages with no English original"] += 1
            else:
                yield page, original


def align(english: list[Section], translation: list[Section], drops: Counter
          ) -> list[tuple[str, str]]:
    """The (English, translation) paragraph pairs of one page's aligned sections."""
    english = [s for s in english if not _CREDITS.search(s[0])]
    translation = [s for s in translation if not _CREDITS.search(s[0])]
    if len(english) != len(translation):
        drops["pages with different numbers of sections"] += 1
        return []
    pairs = []
    for (_, en), (_, tr) in zip(english, translation, strict=True):
        if [k for k, _ in en] != [k for k, _ in tr]:
            drops["sections with different block structures"] += 1
            continue
        pairs += [(e, t) for (kind, e), (_, t) in zip(en, tr, strict=True) if kind == "p"]
    return pairs


# -- sentences ---------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][»“\"”)])|(?<=[.!?][»“\"”)][»“\"”)]))"
                           r"\s+(?=[«“\"(]?[A-ZÀ-ÖØ-Þ0-9])")
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "cf", "p. ex", "ex", "c.-à-d", "c-à-d", "z. B",
                  "z.B", "d. h", "d.h", "bzw", "usw", "ggf", "vgl", "Nr", "u. a", "u.a", "s. o",
                  "s. u", "z. T", "Dr", "Mr", "No", "resp", "evtl", "inkl", "bspw", "sog", "ca",
                  "max", "min", "approx"}
_ENGLISH = set("the is are of and to with this that be by for which when it not".split())


def _ends_in_abbreviation(piece: str) -> bool:
    """``piece`` ends in ``e.g.``, ``(z. B.``, ``p. ex.`` or a single letter or digit and a
    period: the sentence goes on."""
    words = piece.rstrip(".").split()
    if not piece.endswith(".") or not words:
        return False
    last, two = words[-1].lstrip("(«“\""), " ".join(words[-2:]).lstrip("(«“\"")
    return last in _ABBREVIATIONS or two in _ABBREVIATIONS or bool(re.fullmatch(r"\w", last))


def sentences(paragraph: str) -> list[str]:
    """A paragraph's sentences (see the module docstring)."""
    out: list[str] = []
    for piece in _SENTENCE_END.split(paragraph):
        if out and _ends_in_abbreviation(out[-1]):
            out[-1] += " " + piece
        else:
            out.append(piece)
    return out


def sentence_pairs(english: str, translation: str, drops: Counter) -> list[tuple[str, str]]:
    """The sentence pairs of an aligned paragraph pair, or none (see the module docstring)."""
    en, tr = sentences(english), sentences(translation)
    if len(en) != len(tr):
        drops["paragraphs with different numbers of sentences"] += 1
        return []
    if len(en) > 1 and not all(0.5 <= len(t) / len(e) <= 2.2 for e, t in zip(en, tr, strict=True)):
        drops["paragraphs whose sentences differ in length (split elsewhere)"] += 1
        return []
    return list(zip(en, tr, strict=True))


def left_in_english(t: str) -> bool:
    """A translation that is English text (translators leave some paragraphs as they are)."""
    words = re.findall(r"[a-z]+", t.lower())
    common = sum(w in _ENGLISH for w in words)
    return len(words) >= 4 and common >= 2 and common > 0.15 * len(words)


def keep(s: str, t: str, drops: Counter) -> bool:
    """Whether a sentence pair is kept (``real.drop_reason``, or left in English); a drop is
    counted by its reason."""
    reason = drop_reason(s, t) or ("untranslated" if left_in_english(t) else "")
    if reason:
        drops[reason] += 1
    return not reason


# -- the corpus --------------------------------------------------------------------------------

def read_pages(sources: list[str], lang: str, drops: Counter
               ) -> Iterator[tuple[Page, list[tuple[str, str]]]]:
    """Each page read and its kept (English, translation) sentence pairs, before
    deduplication; ManPageError if no page could be read."""
    read: set[str] = set()  # the English pages read, resolved
    for path, original in find_pages(sources, lang, drops):
        resolved = os.path.realpath(original)
        if resolved in read:
            drops["English page already read (a link, or another source's translation)"] += 1
            continue
        try:
            english, translation = read_page(original), read_page(path)
        except ManPageError as e:
            print(f"skipped {e}", file=sys.stderr)
            continue
        if english is None or translation is None:
            drops["stub page (.so)"] += 1
            continue
        read.add(resolved)
        paragraphs = align(english, translation, drops)
        pairs = [(s, t) for e, tr in paragraphs for s, t in sentence_pairs(e, tr, drops)
                 if keep(s, t, drops)]
        yield Page(path, original, len(paragraphs), len(pairs)), pairs
    if not read:
        raise ManPageError(f"no translated pages: no {lang}/man*/*.gz with its English page "
                           f"under {', '.join(sources)}")


def build(sources: list[str], lang: str, drops: Counter
          ) -> tuple[list[tuple[str, str]], list[Page]]:
    """Deduplicated (English, translation) sentence pairs from all pages, and the pages read."""
    kept: list[tuple[str, str]] = []
    pages: list[Page] = []
    for page, pairs in read_pages(sources, lang, drops):
        pages.append(page)
        kept += pairs
    return deduplicate(kept, drops), pages


def sources_rows(pages: list[Page]) -> list[tuple[str, ...]]:
    """``SOURCES.tsv``'s rows, its header first: each page, its original, its counts, and the
    Debian package, version and copyright file of both (one ``dpkg -S`` for all)."""
    paths = [str(p) for page in pages for p in (page.path, page.original)]
    owners = packages(list(dict.fromkeys(paths)))
    none = ("", "", "")
    return [("page", "original", "paragraphs", "pairs", "debian_package", "version", "copyright",
             "original_package", "original_version", "original_copyright"),
            *((str(p.path), str(p.original), str(p.paragraphs), str(p.pairs),
               *owners.get(str(p.path), none), *owners.get(str(p.original), none))
              for p in pages)]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.data.manpages",
                                 description="Build a parallel corpus of sentences from "
                                             "translated man pages (see the module docstring).")
    ap.add_argument("--pair", required=True,
                    help="en-LANG, LANG a man page language directory (fr, de, pt_BR)")
    ap.add_argument("--source", action="append",
                    help="a man root with English manN/ pages and LANG/manN/ translations, or "
                         "translations only (an unpacked .deb's usr/share/man); repeatable "
                         f"(default: {' '.join(DEFAULT_SOURCES)})")
    add_split_arguments(ap, dev=500, test=1000)
    return ap


@reports_os_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    pair = _PAIR.fullmatch(args.pair)
    if not pair:
        print(f"error: --pair {args.pair}: expected en-LANG, LANG a man page language "
              "directory such as fr, de or pt_BR", file=sys.stderr)
        return 2
    lang = pair[1]
    drops: Counter = Counter()
    try:
        pairs, pages = build(args.source or list(DEFAULT_SOURCES), lang, drops)
    except ManPageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return write_corpus(args, pairs, lang, lambda: sources_rows(pages),
                        f"{len(pages)} pages, {sum(p.paragraphs for p in pages)} aligned "
                        "paragraphs", drops)


if __name__ == "__main__":
    sys.exit(main())
