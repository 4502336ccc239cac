"""A corpus of real prose with long sentences, split by document: the paper's Table 1 here.

Debian packages the books of its documentation with translations made by people: The Debian
Administrator's Handbook (written in French, translated into English and many languages), the
Debian Reference, the Installation Guide and the Debian FAQ (written in English), and the GNOME
desktop's help. Their HTML (DocBook) and Mallard pages are generated from one source per
language, so a page and its translation have the same paragraphs in the same order. This module
fetches the packages by name (``apt-get download``, ``dpkg-deb -x``: nothing is installed), pairs
each English page with its translation, the paragraphs of both one by one, and their sentences
as ``manpages`` does; adds the man pages (``manpages.read_pages``, with Debian's manpages-LANG
unpacked beside the English pages installed); and writes a train/dev/test split **by
document**::

    python -m minirnnsearch.data.prose --pair en-fr --out .cache/prose/en-fr   # or en-de

A document is one HTML or Mallard page of a book (a chapter or a section), or one man page.
Reading and cleaning, each drop counted by reason in the printed summary:
- paragraphs: ``<p>`` and ``<div class="para">`` (DocBook), ``<p>`` (Mallard), their text with
  the inline markup removed; a paragraph inside another ends the outer one's text there;
  ``<pre>`` (code and screen output) and headings (``p.title``) are not paragraphs; a page whose
  translation has another number of paragraphs is dropped whole; a paragraph left in English
  (identical to the original) is dropped;
- sentences and pairs: as the man pages' (``manpages.sentence_pairs`` and ``manpages.keep``).

The split: the documents of the four Debian books (``Book.test``) are ordered by SHA-256 of
(seed, book, document); test takes them in that order until it holds ``--test`` pairs, dev
the next ones until ``--dev``; every other document, the GNOME help and the man pages
included, is training data. The books are where the long sentences are: the test set holds
as many 30-50-word sentences as the books give to its share (the summary prints how many).
No document is in two splits; within a split, pairs are deduplicated on the English side
(``real.deduplicate``), and a dev or training pair whose English sentence is in test (and a
training pair whose English sentence is in dev) is dropped, so no English sentence is in two
splits either.

Not joined: the software messages of ``real.py``. They would more than double the pairs, but
at a median of a few words they teach the interface's vocabulary, not sentences, and would turn
the length distribution of training towards one-word targets, while this corpus is for the
models' behaviour on long sentences.

``SOURCES.tsv`` lists every document read: its book, file, split, aligned paragraphs, kept
pairs (before deduplication), and the Debian package, version and licence (the copyright
file's ``License:`` fields, else the file to read) of the original and the translation.
The corpus itself is not part of the repository: each book keeps its licence (GPL-2+,
CC-BY-SA-3.0 and others; see SOURCES.tsv).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

from ..cli import non_negative_int
from ..oserrors import make_dir, reports_os_errors, write_atomic
from .manpages import ManPageError, keep, read_pages, sentence_pairs
from .real import deduplicate, write_split

LANGS = {"fr": "fr-FR", "de": "de-DE"}  # the pairs, and the handbook's name of each language
DEFAULT_CACHE = Path(".cache") / "debs"
ENGLISH_MAN = "/usr/share/man"  # the English man pages installed on the machine
LONG = (30, 50)  # the sentence lengths (English words) the test set is counted for
Pair = tuple[str, str]


class ProseError(ValueError):
    """A package that cannot be fetched or a corpus that cannot be split; one line."""


class Book(NamedTuple):
    """Where a book's English pages and their translations are, in its packages. The paths
    hold ``{stem}``, the part naming the document, and a translation's ``{lang}`` (fr, de) and
    ``{locale}`` (fr-FR, de-DE)."""

    name: str
    kind: str            # "html" (DocBook) or "mallard"
    package: str         # the English pages'
    english: str
    tr_package: str      # the translations'
    translation: str
    test: bool           # dev and test documents come from this book


BOOKS = (
    Book("debian-handbook", "html", "debian-handbook",
         "usr/share/doc/debian-handbook/html/en-US/{stem}.html", "debian-handbook",
         "usr/share/doc/debian-handbook/html/{locale}/{stem}.html", True),
    Book("debian-reference", "html", "debian-reference-en",
         "usr/share/debian-reference/{stem}.en.html", "debian-reference-{lang}",
         "usr/share/debian-reference/{stem}.{lang}.html", True),
    Book("installation-guide", "html", "installation-guide-amd64",
         "usr/share/doc/installation-guide-amd64/en/{stem}.html", "installation-guide-amd64",
         "usr/share/doc/installation-guide-amd64/{lang}/{stem}.html", True),
    Book("debian-faq", "html", "debian-faq", "usr/share/doc/debian/FAQ/{stem}.en.html",
         "debian-faq-{lang}", "usr/share/doc/debian/FAQ/{lang}/{stem}.{lang}.html", True),
    Book("gnome-help", "mallard", "gnome-user-docs", "usr/share/help/C/gnome-help/{stem}.page",
         "gnome-user-docs", "usr/share/help/{lang}/gnome-help/{stem}.page", False),
)
MAN_BOOK = "man pages"


class Document(NamedTuple):
    book: str
    name: str            # the English file
    translation: str     # the translated file
    paragraphs: int      # aligned paragraph pairs
    pairs: list[Pair]    # kept sentence pairs, before deduplication
    package: str         # the Debian packages of the original and the translation ('' if none)
    tr_package: str


# -- fetching ----------------------------------------------------------------------------------

def fetch(package: str, cache: Path) -> Path:
    """``cache/PACKAGE``, the package's files unpacked: a tree already there is used as it is;
    else ``apt-get download`` into ``cache`` (unless its .deb is there) and ``dpkg-deb -x``.
    ProseError, one line, if either fails."""
    root = cache / package
    if root.is_dir():
        return root
    make_dir(cache)
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        _run(["apt-get", "download", package], cache, f"apt-get download {package}")
        debs = sorted(cache.glob(f"{package}_*.deb"))
        if not debs:
            raise ProseError(f"apt-get download {package}: no {package}_*.deb in {cache}")
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{package}."))
    try:
        _run(["dpkg-deb", "-x", str(debs[-1].resolve()), str(tmp.resolve())], cache,
             f"dpkg-deb -x {debs[-1]}")
        tmp.rename(root)  # whole or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise ProseError(f"{what}: {e.strerror} (needs Debian's apt and dpkg)") from None
    if done.returncode:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise ProseError(f"{what}: {last}")


def package_info(root: Path, package: str) -> tuple[str, str]:
    """(version, licence) of an unpacked package: the version from its .deb beside it (''
    without one), the licence from the ``License:`` fields of its copyright file, or that
    file's path when it has none."""
    debs = sorted(root.parent.glob(f"{package}_*.deb"))
    version = debs[-1].name.split("_")[1] if debs else ""
    copyright_file = root / "usr/share/doc" / package / "copyright"
    try:
        text = copyright_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return version, ""
    fields = dict.fromkeys(m.strip() for m in re.findall(r"^License:(.*)$", text, re.M))
    return version, " | ".join(f for f in fields if f) or f"see /{copyright_file.relative_to(root)}"


# -- paragraphs --------------------------------------------------------------------------------

class _Paragraphs(HTMLParser):
    """The paragraphs of a DocBook HTML page, in order (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[tuple[str, int]] = []  # the open paragraphs: (tag, div depth)
        self.skipping: list[str] = []  # the open <pre>, <script>, <style> and headings
        self.words: list[str] = []
        self.divs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "div":
            self.divs += 1
        if tag in ("pre", "script", "style") or (tag == "p" and "title" in classes):
            self.skipping.append(tag)
        elif not self.skipping and (tag == "p" or (tag == "div" and "para" in classes)):
            self.flush()
            self.open.append((tag, self.divs))

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
        elif self.open and self._closes(tag):
            self.flush()
            self.open.pop()
        if tag == "div":
            self.divs -= 1

    def _closes(self, tag: str) -> bool:
        """Whether ``tag``'s end closes the innermost open paragraph (a ``div`` only at the
        depth it opened)."""
        name, depth = self.open[-1]
        return tag == name and (tag == "p" or depth == self.divs)

    def handle_data(self, data: str) -> None:
        if self.open and not self.skipping:
            self.words.append(data)

    def flush(self) -> None:
        text = " ".join("".join(self.words).split())
        if text:
            self.out.append(text)
        self.words = []


def html_paragraphs(text: str) -> list[str]:
    """The paragraphs of a DocBook HTML page, their text without markup."""
    parser = _Paragraphs()
    parser.feed(text)
    parser.close()
    parser.flush()
    return parser.out


_MALLARD = "{http://projectmallard.org/1.0/}"


def mallard_paragraphs(text: str) -> list[str]:
    """The paragraphs (``<p>``) of a Mallard page, their text without markup."""
    root = ET.fromstring(text)
    texts = (" ".join("".join(p.itertext()).split()) for p in root.iter(f"{_MALLARD}p"))
    return [t for t in texts if t]


def paragraphs(kind: str, path: Path) -> list[str]:
    """A page's paragraphs; ProseError naming it if it is not UTF-8 or not well-formed."""
    try:
        text = path.read_text(encoding="utf-8")
        return html_paragraphs(text) if kind == "html" else mallard_paragraphs(text)
    except (UnicodeDecodeError, ET.ParseError) as e:
        raise ProseError(f"{path}: unreadable ({type(e).__name__}: {e})") from None


# -- documents ---------------------------------------------------------------------------------

def aligned_pairs(english: list[str], translation: list[str], drops: Counter) -> list[Pair]:
    """The kept sentence pairs of a page's paragraphs and its translation's, paired one by one;
    none if their numbers differ."""
    if len(english) != len(translation):
        drops["pages whose translation has another number of paragraphs"] += 1
        return []
    pairs = []
    for e, t in zip(english, translation, strict=True):
        if e == t:
            drops["paragraphs left in English"] += 1
        else:
            pairs += [(s, u) for s, u in sentence_pairs(e, t, drops) if keep(s, u, drops)]
    return pairs


def read_book(book: Book, lang: str, roots: dict[str, Path], drops: Counter
              ) -> Iterator[Document]:
    """The documents of ``book``: each English page with its translation, in order of name."""
    fill = dict(lang=lang, locale=LANGS.get(lang, lang))
    tr_package = book.tr_package.format(**fill)
    en_root, tr_root = roots[book.package], roots[tr_package]
    pattern = re.compile(re.escape(book.english).replace(re.escape("{stem}"), "(.+)"))
    for path in sorted(en_root.glob(book.english.format(stem="*"))):
        stem = pattern.fullmatch(path.relative_to(en_root).as_posix())[1]
        tr = tr_root / book.translation.format(stem=stem, **fill)
        if not tr.is_file():
            drops["pages with no translation"] += 1
            continue
        try:
            en_paras, tr_paras = paragraphs(book.kind, path), paragraphs(book.kind, tr)
        except ProseError as e:
            print(f"skipped {e}", file=sys.stderr)
            continue
        pairs = aligned_pairs(en_paras, tr_paras, drops)
        n = len(en_paras) if len(en_paras) == len(tr_paras) else 0
        yield Document(book.name, str(path.relative_to(en_root)), str(tr.relative_to(tr_root)),
                       n, pairs, book.package, tr_package)


def read_all(lang: str, cache: Path, english_man: str, drops: Counter) -> list[Document]:
    """Every document of the books and of the man pages (the English ones in ``english_man``),
    the packages fetched into ``cache``."""
    roots: dict[str, Path] = {}
    fill = dict(lang=lang, locale=LANGS.get(lang, lang))
    for book in BOOKS:
        for package in (book.package, book.tr_package.format(**fill)):
            if package not in roots:
                roots[package] = fetch(package, cache)
    docs = [d for book in BOOKS for d in read_book(book, lang, roots, drops)]
    man = f"manpages-{lang}"
    man_root = fetch(man, cache)
    try:
        docs += [Document(MAN_BOOK, str(page.original), str(page.path), page.paragraphs, pairs,
                          "", man if str(page.path).startswith(str(man_root)) else "")
                 for page, pairs in read_pages([english_man, str(man_root / "usr/share/man")],
                                               lang, drops)]
    except ManPageError as e:
        print(f"no man pages: {e}", file=sys.stderr)
    return docs


# -- the split ---------------------------------------------------------------------------------

def split_documents(docs: list[Document], seed: int, n_dev: int, n_test: int
                    ) -> dict[str, list[Document]]:
    """Test, dev and train documents (see the module docstring; a document without pairs is
    listed with train); ProseError if the books' documents cannot fill test and dev."""
    tested = {b.name for b in BOOKS if b.test}

    def key(d: Document) -> str:
        return hashlib.sha256(f"{seed}\t{d.book}\t{d.name}".encode()).hexdigest()

    candidates = sorted((d for d in docs if d.book in tested and d.pairs), key=key)
    splits: dict[str, list[Document]] = {"test": [], "dev": [], "train": []}
    counts = {"test": 0, "dev": 0}
    for d in candidates:
        part = next((p for p, n in (("test", n_test), ("dev", n_dev)) if counts[p] < n), "train")
        splits[part].append(d)
        if part != "train":
            counts[part] += len(d.pairs)
    if counts["test"] < n_test or counts["dev"] < n_dev:
        raise ProseError(f"the books' {sum(len(d.pairs) for d in candidates)} pairs cannot fill "
                         f"{n_test} test and {n_dev} dev pairs")
    splits["train"] += [d for d in docs if d.book not in tested or not d.pairs]
    return splits


def pairs_of(splits: dict[str, list[Document]], drops: Counter) -> dict[str, list[Pair]]:
    """Each split's pairs, deduplicated, without the English sentences of the splits before
    it (test, then dev, then train)."""
    out: dict[str, list[Pair]] = {}
    seen: set[str] = set()
    for part in ("test", "dev", "train"):
        pairs = deduplicate([p for d in splits[part] for p in d.pairs], drops)
        out[part] = [p for p in pairs if p[0] not in seen]
        drops["English sentence in an earlier split (test, dev)"] += len(pairs) - len(out[part])
        seen.update(s for s, _ in out[part])
    return out


def long_count(pairs: list[Pair]) -> int:
    """Pairs whose English side has 30 to 50 words."""
    return sum(LONG[0] <= len(s.split()) <= LONG[1] for s, _ in pairs)


def sources_rows(splits: dict[str, list[Document]], roots: Path) -> list[tuple[str, ...]]:
    """``SOURCES.tsv``: a document a row, its header first."""
    info: dict[str, tuple[str, str]] = {}

    def of(package: str) -> tuple[str, str]:
        if package and package not in info:
            info[package] = package_info(roots / package, package)
        return info.get(package, ("", ""))

    rows = [("book", "document", "translation", "split", "paragraphs", "pairs", "package",
             "version", "licence", "tr_package", "tr_version", "tr_licence")]
    for part, docs in splits.items():
        rows += [(d.book, d.name, d.translation, part, str(d.paragraphs), str(len(d.pairs)),
                  d.package, *of(d.package), d.tr_package, *of(d.tr_package)) for d in docs]
    return rows


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.data.prose",
                                 description="Build a parallel corpus of prose from Debian's "
                                             "translated books and man pages, split by "
                                             "document (see the module docstring).")
    ap.add_argument("--pair", required=True, choices=[f"en-{lang}" for lang in LANGS])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--cache", default=str(DEFAULT_CACHE),
                    help="where the packages are downloaded and unpacked; a package unpacked "
                         f"there (CACHE/NAME/) is used as it is (default: {DEFAULT_CACHE})")
    ap.add_argument("--man", default=ENGLISH_MAN,
                    help=f"the English man pages (default: {ENGLISH_MAN}, those installed)")
    ap.add_argument("--dev", type=non_negative_int, default=1000,
                    help="dev pairs at least, whole documents of the books (default 1000)")
    ap.add_argument("--test", type=non_negative_int, default=3000,
                    help="test pairs at least, whole documents of the books (default 3000)")
    ap.add_argument("--seed", type=int, default=1)
    return ap


@reports_os_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    lang = args.pair.split("-")[1]
    drops: Counter = Counter()
    cache = Path(args.cache)
    try:
        docs = read_all(lang, cache, args.man, drops)
        splits = split_documents(docs, args.seed, args.dev, args.test)
    except ProseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pairs = pairs_of(splits, drops)
    out = Path(args.out)
    write_split(out, pairs, lang)
    rows = sources_rows(splits, cache)
    write_atomic(out / "SOURCES.tsv", "".join("\t".join(r) + "\n" for r in rows).encode())
    books = Counter(d.book for d in docs)
    print(f"{len(docs)} documents ({', '.join(f'{b} {n}' for b, n in books.items())}) -> "
          f"{sum(len(p) for p in pairs.values())} pairs in {out}", file=sys.stderr)
    for part in ("train", "dev", "test"):
        print(f"  {part}: {len(splits[part])} documents, {len(pairs[part])} pairs, "
              f"{long_count(pairs[part])} of {LONG[0]}-{LONG[1]} English words", file=sys.stderr)
    for reason, n in drops.most_common():
        if n:
            print(f"  dropped {n}: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
