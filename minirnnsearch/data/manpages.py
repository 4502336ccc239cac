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
test, the next ``--dev`` to dev. The corpus is not part of the repository: the pages carry their
packages' licences (GPL, BSD, the Linux man-pages' own, ...) and the translations their
translators' (manpages-l10n: GPL 3 or later). ``SOURCES.tsv`` lists every page read with its
English original, its number of aligned paragraphs and kept sentence pairs (before
deduplication), and, for an installed page, the Debian package, version and copyright file of
the translation and, in three more columns, of the English original, which is often another
package's (a manpages-fr translation of coreutils' ``ls.1``); both from one ``dpkg -S``. A page
of an unpacked .deb has none: see the .deb's own copyright file.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import unicodedata
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

DEFAULT_SOURCES = ("/usr/share/man",)
_PAIR = re.compile(r"en-([a-z]{2,3}(?:_[A-Z]{2})?)")  # en-fr, en-de, en-pt_BR
_CREDITS = re.compile(r"TRADUCT|ÜBERSETZ|UBERSETZ|TRANSLAT", re.I)  # the translators' section

Block = tuple[str, str]  # (kind, text); kinds: "p" paragraph, "t" tag, "v" verbatim, "b" table
Section = tuple[str, list[Block]]  # (title, blocks)


class ManPageError(ValueError):
    """A page that cannot be read, or sources with no pages; the message names them."""


class Page(NamedTuple):
    path: Path        # the translation
    original: Path    # the English page
    paragraphs: int   # aligned paragraph pairs
    pairs: int        # kept sentence pairs, before deduplication


# -- roff escapes ------------------------------------------------------------------------------

_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", ":": "\u0308", ",": "\u0327",
            "~": "\u0303"}
_CHARS = {"Fo": "«", "Fc": "»", "bu": "•", "em": "—", "en": "–", "aq": "'", "cq": "’",
          "oq": "‘", "lq": "“", "rq": "”", "Bq": "„", "bq": "‚", "dq": '"', "ss": "ß",
          "oe": "œ", "OE": "Œ", "ae": "æ", "mu": "×", "hy": "-", "aa": "´", "ga": "`",
          "*p": "π", "co": "©", "rg": "®", "tm": "™", "ti": "~", "ha": "^", "rs": "\\",
          "sl": "/", "char94": "^", "shc": "", "lh": "", "rh": "", "de": "°", "+-": "±",
          "<=": "≤", ">=": "≥", "->": "→", "<-": "←", "at": "@", "sh": "#", "Do": "$",
          "ba": "|", "or": "|", "pl": "+", "mi": "-", "eq": "=", "lB": "[", "rB": "]",
          "lC": "{", "rC": "}", "la": "⟨", "ra": "⟩", "fo": "‹", "fc": "›", "ul": "_",
          "aga": "`", "dg": "†", "sc": "§", "ps": "¶", "Eu": "€", "eu": "€", "tmu": "×"}
_STRINGS = {"Aq": "'", "AQ": "'", 'L"': '"', 'R"': '"', "C`": "'", "C'": "'", "--": "—",
            "C+": "C++", "PI": "pi", "softhyphen": "", "R": "®", "Tm": "™", "lq": "“",
            "rq": "”"}
# one-character escapes: \e a backslash, \  \~ \0 \t a space, \' an accent, the others here
# nothing (\& \| \c ...); any other (\- \.) is the character itself
_ONE = {"e": "\\", "E": "\\", " ": " ", "~": " ", "0": " ", "t": " ", "'": "´", "&": "",
        "|": "", "^": "", "c": "", "u": "", "d": "", "%": "", ":": "", "/": "", ",": "", "p": "",
        "a": "", "r": "", "z": "", "{": "", "}": "", "!": "", "?": "", "j": ""}
_ESCAPE = re.compile(r"""\\(?:
      [fs](?:\(..|\[[^]]*\]|[-+]?\(..|[-+]?\d|.)      # font, size: dropped
    | [hvwlLxXbDoZNRSHk]'[^']*'                       # motion, drawing ...: dropped
    | [nmMgFY](?:\(..|\[[^]]*\]|.)                    # registers, colours: dropped
    | \((?P<char2>..) | \[(?P<char>[^]]*)\]           # special characters
    | \*(?:\((?P<string2>..)|\[(?P<string>[^]]*)\]|(?P<string1>.))
    | (?P<one>.)
)""", re.X)


def _special(name: str) -> str:
    """A special character ``\\(xx`` or ``\\[name]``: accented letters, ``u00E9``, the table."""
    if len(name) == 2 and name[0] in _ACCENTS:
        return unicodedata.normalize("NFC", name[1] + _ACCENTS[name[0]])
    if re.fullmatch(r"u[0-9A-Fa-f]{4,5}", name):
        return chr(int(name[1:], 16))
    return _CHARS.get(name, "")


def _escape(m: re.Match) -> str:
    if m["char2"] is not None or m["char"] is not None:
        return _special(m["char2"] or m["char"])
    if m["string2"] is not None or m["string"] is not None or m["string1"] is not None:
        return _STRINGS.get(m["string2"] or m["string"] or m["string1"], "")
    if m["one"] is not None:
        return _ONE.get(m["one"], m["one"])
    return ""


def unescape(s: str) -> str:
    """Roff text as plain text: ``\\fBls\\fR \\- list`` -> ``ls - list``."""
    return _ESCAPE.sub(_escape, s)


# -- roff structure ----------------------------------------------------------------------------

_ARG = re.compile(r'"((?:\\.|""|[^"\\])*)"?|((?:\\.|[^\s\\])+)')
_COMMENT = re.compile(r'\\["#].*|\\.')
_REQUEST = re.compile(r"\s*([^\s\\]*)\s*(.*)")
_CONDITION = re.compile(r"(!?)(?:([nt])(?!\S)|'([^']*)'([^']*)')\s*(.*)")
_PARAGRAPH = {"PP", "LP", "P", "sp", "Sp", "HP", "RS", "RE", "SY", "YS"}
_ALTERNATING = {"BR", "RB", "IR", "RI", "BI", "IB"}  # words joined: .BR ls (1) -> ls(1)
_FONT = {"B", "I", "SM", "SB", "R", "UE", "ME", "OP"}
_CODE = {"TS": "TE", "nf": "fi", "EX": "EE", "Vb": "Ve"}  # table or verbatim: start, end


def macro_args(rest: str) -> list[str]:
    """A request's arguments: split at spaces, ``"quoted words"`` kept together."""
    return [m[2] if m[1] is None else m[1].replace('""', '"') for m in _ARG.finditer(rest)]


def _condition(rest: str) -> tuple[bool, str]:
    """(truth, the rest of the line) of a one-line ``.if``/``.ie``: ``n`` is true, ``t`` false,
    ``'a'b'`` compares strings, ``!`` negates; any other condition is false."""
    m = _CONDITION.match(rest.lstrip())
    if not m:
        return False, ""
    truth = m[2] == "n" if m[2] else m[3] == m[4]
    return truth != bool(m[1]), m[5]


class _Reader:
    """The sections of one page, read line by line (``read_roff``)."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.blocks: list[Block] = []  # of the current section; before the first: left out
        self.words: list[str] = []     # the current block's text
        self.kind = "p"                # the current block's kind
        self.code_end = ""             # in a table or verbatim: the request that ends it
        self.in_definition = False     # in a macro definition (.de ... ..)
        self.depth = 0                 # in a multi-line conditional: its nesting depth
        self.last_ie = False           # the truth of the last .ie, for its .el
        self.title_next = self.tag_next = False  # the next line is a title, a tag
        self.sources_another = False   # a .so request was read

    def line(self, line: str) -> None:
        if self.in_definition:
            self.in_definition = not line.startswith("..")
        elif self.depth:
            self.depth = max(self.depth + line.count("\\{") - line.count("\\}"), 0)
        else:
            line = _COMMENT.sub(lambda m: "" if m[0][1] in '"#' else m[0], line)
            if line.startswith((".", "'")):
                m = _REQUEST.match(line[1:])  # the name ends at a space or an escape: .el\{
                self.request(m[1], m[2])
            elif self.code_end:
                pass  # the text of a table or verbatim block is not used
            elif not line.strip():
                self.end_block()
            else:
                self.text(unescape(line))

    def request(self, name: str, rest: str) -> None:
        if name in ("if", "ie", "el"):
            self.conditional(name, rest)
        elif name in ("de", "de1", "am"):
            self.in_definition = True
        elif name == "so":
            self.sources_another = True
        elif self.code_end:
            if name == self.code_end:
                self.code_end = ""
        elif name in _CODE:
            self.code(name)
        elif name in ("SH", "SS"):
            self.heading(unescape(" ".join(macro_args(rest))).strip())
        elif name in ("TP", "TQ"):
            self.end_block("t")
            self.tag_next = True
        elif name == "IP":
            args = macro_args(rest)
            self.end_block("t")
            self.words = [unescape(args[0])] if args else []
            self.end_block()
        elif name in _PARAGRAPH:
            self.end_block()
        elif name in _FONT | _ALTERNATING:
            self.font(name, macro_args(rest))

    def conditional(self, name: str, rest: str) -> None:
        """``.if``, ``.ie``, ``.el``: a one-line body is read if true; a multi-line one
        (``\\{ ... \\}``) is dropped, but an ``.ie``'s truth is kept for its ``.el``."""
        if name == "el":
            truth, body = not self.last_ie, rest.strip()
        else:
            truth, body = _condition(rest)
            if name == "ie":
                self.last_ie = truth
        if "\\{" in rest:
            self.depth = max(rest.count("\\{") - rest.count("\\}"), 0)
        elif truth and body:
            self.line(body)

    def code(self, name: str) -> None:
        """A table or verbatim block starts: one block of its kind, whatever its lines."""
        self.end_block()
        kind = "b" if name == "TS" else "v"
        if not (self.blocks and self.blocks[-1][0] == kind):
            self.blocks.append((kind, ""))
        self.code_end = _CODE[name]

    def font(self, name: str, args: list[str]) -> None:
        """``.B text``, ``.BR ls (1)``: the text; with no arguments the macro applies to the
        next line, which comes as text."""
        if args:
            text = unescape(("" if name in _ALTERNATING else " ").join(args))
            self.text(f"[{text}]" if name == "OP" else text)

    def heading(self, title: str) -> None:
        """A section starts: ``title``, or if empty the next line's text."""
        self.end_block()
        if title:
            self.blocks = []
            self.sections.append((title, self.blocks))
        self.title_next = not title

    def text(self, text: str) -> None:
        if self.title_next:
            self.heading(text.strip())
        else:
            self.words.append(text)
            if self.tag_next:
                self.tag_next = False
                self.end_block()

    def end_block(self, next_kind: str = "p") -> None:
        """The current block ends (if it has text); the next is of ``next_kind``."""
        text = " ".join(" ".join(self.words).split())
        if text:
            self.blocks.append((self.kind, text))
        self.words, self.kind = [], next_kind


def _read(text: str) -> _Reader:
    reader = _Reader()
    for line in re.sub(r"(?<!\\)((?:\\\\)*)\\\n", r"\1", text).split("\n"):  # \ continues
        reader.line(line)
    reader.end_block()
    return reader


def read_roff(text: str) -> list[Section]:
    """The sections of a man page: [(title, [(kind, text)])] (see the module docstring)."""
    return _read(text).sections


def read_page(path: Path) -> list[Section] | None:
    """The sections of a gzipped page (UTF-8, or Latin-1 for old pages); None for a stub, a
    page with no sections that sources another (``.so man1/other.1``)."""
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise ManPageError(f"{path}: unreadable ({reason})") from None
    try:
        reader = _read(data.decode("utf-8"))
    except UnicodeDecodeError:
        reader = _read(data.decode("latin-1"))
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
