"""A real parallel corpus that no one here wrote: software translation catalogues.

Free software ships its user-visible messages with their translations, made by people, as
gettext catalogues: compiled ``.mo`` files under ``/usr/share/locale/LANG/LC_MESSAGES/`` of every
Debian system (git, PostgreSQL, binutils, coreutils, GnuPG, glibc, GTK, ...), and ``.po``
source files inside Python wheels (Django's ``django/conf/locale/LANG/LC_MESSAGES/*.po``).
Each catalogue maps an English message (msgid) to its translation (msgstr). This module reads
them (``.mo`` with the standard library's ``gettext``, ``.po`` with a small reader below),
cleans the pairs, deduplicates them and writes a reproducible train/dev/test split::

    python -m minirnnsearch.data.real --pair en-fr --out .cache/real/en-fr
    python -m minirnnsearch.data.real --pair en-fr --out .cache/real/en-fr \\
        --source /usr/share/locale --source Django-5.2.19-py3-none-any.whl

Cleaning, in order (each dropped pair is counted by reason in the summary printed to stderr):
- fuzzy (unreviewed) ``.po`` entries and untranslated ones are skipped; a plural takes its
  singular forms; a message context (``ctx\\x04msgid``) is removed;
- a message whose translation has as many blank-line-separated paragraphs as the original is
  split into paragraph pairs; whitespace (line breaks, tabs, non-breaking spaces) collapses to
  one space;
- markup: HTML/XML tags are removed, the five XML entities decoded, GTK/Qt keyboard mnemonics
  (``_Open``, ``&Open``) dropped;
- placeholders (``%s``, ``%1$d``, ``%(name)s``, ``{0}``, ``{name}``, ``${var}``) are kept as they
  are, and a pair is dropped unless both sides have the same placeholders (a mismatch is a
  sign of a wrong or reworded translation);
- kept: 2 to 80 words on each side, a length ratio of at most 3, a translation that differs
  from the original and has a letter in it;
- deduplicated on the English side (one English sentence, one translation: the one given
  most often, ties by the first catalogue in sorted path order), so no English sentence is in
  two splits.

The split is a function of (pairs, seed): pairs are ordered by SHA-256 of seed and English
text, the first ``--test`` go to test, the next ``--dev`` to dev, the rest to train, or only the
next ``--train-size`` of the rest: a deterministic random subsample, scored on the same dev and
test sentences as the whole corpus (and a prefix of any larger one). The corpus is not part of
the repository: the catalogues carry their packages' licences (GPL, LGPL, PostgreSQL, BSD, ...),
listed per catalogue in ``SOURCES.tsv`` with the Debian package that ships it (from
``dpkg -S``) and its copyright file.
"""

from __future__ import annotations

import argparse
import ast
import gettext
import hashlib
import html
import re
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..cli import non_negative_int, positive_int
from ..oserrors import doing, make_dir, reports_os_errors, write_atomic

DEFAULT_SOURCES = ("/usr/share/locale",)
# printf (%s %d %1$s %-20s %lu %qT), Python (%(name)s), brace ({0} {name}), shell (${var})
_PLACEHOLDER = re.compile(r"%(?:\d+\$)?[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|L|q|z|j|t)?[a-zA-Z%]"
                          r"|%\([\w.]+\)[-+ #0]*\d*[a-zA-Z]|\$\{\w+\}|\{[\w.]*\}")
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_MNEMONIC = re.compile(r"(?<![\w&_])[_&](?=\w)")
_LETTER = re.compile(r"[^\W\d_]")


class CatalogueError(ValueError):
    """A catalogue that cannot be read; the message names it."""


# -- reading catalogues ------------------------------------------------------------------------

def _po_string(lines: list[str], path: str) -> str:
    try:
        return "".join(ast.literal_eval(s) for s in lines)
    except (ValueError, SyntaxError):
        raise CatalogueError(f"{path}: bad quoted string {lines[0][:40]!r}") from None


def read_po(text: str, path: str = "<po>") -> Iterator[tuple[str, str]]:
    """(msgid, msgstr) of each translated, non-fuzzy entry of a ``.po`` file (entries are
    separated by blank lines; plurals: the singular forms, msgstr[0]). The header entry (empty
    msgid) and obsolete entries (``#~``) are left out."""
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, list[str]] = {}
        key, fuzzy = "", False
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("#"):
                fuzzy = fuzzy or (line.startswith("#,") and "fuzzy" in line)
            elif line.startswith('"') and key:
                fields[key].append(line)
            elif line:
                key, _, rest = line.partition(" ")
                fields[key] = [rest]
        if fuzzy or "msgid" not in fields:
            continue
        src = _po_string(fields["msgid"], path)
        tgt = _po_string(fields.get("msgstr", fields.get("msgstr[0]", ['""'])), path)
        if src and tgt:
            yield src, tgt


def read_mo(data: bytes, path: str = "<mo>") -> Iterator[tuple[str, str]]:
    """(msgid, msgstr) of each entry of a compiled ``.mo`` catalogue (plurals: the singular
    forms); contexts removed, header left out."""
    import io

    try:
        catalogue = gettext.GNUTranslations(io.BytesIO(data))._catalog
    except (OSError, UnicodeDecodeError, LookupError) as e:
        raise CatalogueError(f"{path}: unreadable ({type(e).__name__})") from None
    for key, tgt in catalogue.items():
        if isinstance(key, tuple):
            if key[1] != 0:
                continue
            key = key[0]
        src = key.split("\x04")[-1]
        if src and tgt:
            yield src, tgt


def find_catalogues(sources: list[str], lang: str) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every ``.mo``/``.po`` catalogue for ``lang`` (the directory ``lang``
    exactly: not ``fr_CA``) under each source, a directory or a wheel/zip file, in sorted
    order. A ``.mo`` compiled from a ``.po`` beside it is left out (the ``.po`` is read)."""
    def wanted(names: list[str]) -> list[str]:
        names = [n for n in names if n.endswith((".mo", ".po"))
                 and n.split("/")[-3:-1] == [lang, "LC_MESSAGES"]]
        present = set(names)
        return sorted(n for n in names if not (n.endswith(".mo") and n[:-3] + ".po" in present))

    for source in sources:
        p = Path(source)
        if p.is_dir():
            for name in wanted([str(f) for f in p.rglob("*") if f.is_file()]):
                with doing("read", name):
                    data = Path(name).read_bytes()
                yield name, data
        elif p.is_file() and zipfile.is_zipfile(p):
            with doing("read", p), zipfile.ZipFile(p) as z:
                for name in wanted(z.namelist()):
                    yield f"{p.name}:{name}", z.read(name)
        else:
            raise CatalogueError(f"{source}: neither a directory nor a wheel/zip file")


def read_catalogue(name: str, data: bytes) -> list[tuple[str, str]]:
    if name.endswith(".po"):
        try:
            return list(read_po(data.decode("utf-8"), name))
        except UnicodeDecodeError:
            raise CatalogueError(f"{name}: not UTF-8") from None
    return list(read_mo(data, name))


# -- cleaning ----------------------------------------------------------------------------------

def clean_text(s: str) -> str:
    """Markup and mnemonics removed, whitespace collapsed (see the module docstring)."""
    s = _TAG.sub(" ", s)
    s = html.unescape(s) if re.search(r"&(amp|lt|gt|quot|apos);", s) else s
    s = _MNEMONIC.sub("", s)
    return " ".join(s.split())


def placeholders(s: str) -> Counter:
    return Counter(_PLACEHOLDER.findall(s))


def clean_pairs(src: str, tgt: str, drops: Counter) -> list[tuple[str, str]]:
    """The cleaned sentence pairs of one catalogue entry (none, one, or one per paragraph)."""
    ps, pt = re.split(r"\n\s*\n", src.strip()), re.split(r"\n\s*\n", tgt.strip())
    if len(ps) != len(pt):
        ps, pt = [src], [tgt]
    out = []
    for s, t in zip(ps, pt, strict=True):
        s, t = clean_text(s), clean_text(t)
        if placeholders(s) != placeholders(t):
            drops["placeholders differ"] += 1
        elif reason := drop_reason(s, t):
            drops[reason] += 1
        else:
            out.append((s, t))
    return out


def drop_reason(s: str, t: str) -> str:
    """Why a cleaned pair is not kept ('' if it is): not 2-80 words on a side, a length ratio
    over 3, or a translation equal to the original or without a letter (untranslated)."""
    ns, nt = len(s.split()), len(t.split())
    if not (2 <= ns <= 80 and 2 <= nt <= 80):
        return "not 2-80 words"
    if max(ns, nt) > 3 * min(ns, nt):
        return "length ratio over 3"
    if s == t or not _LETTER.search(t):
        return "untranslated"
    return ""


def deduplicate(pairs: Iterable[tuple[str, str]], drops: Counter) -> list[tuple[str, str]]:
    """One pair per English sentence, in order of first appearance: its translation given most
    often, ties by the first given."""
    translations: dict[str, Counter] = defaultdict(Counter)
    first: dict[tuple[str, str], int] = {}
    for s, t in pairs:
        translations[s][t] += 1
        first.setdefault((s, t), len(first))
    out = []
    for s, counts in translations.items():
        t = min(counts, key=lambda t: (-counts[t], first[(s, t)]))
        drops["English sentence seen before (duplicate)"] += sum(counts.values()) - 1
        out.append((s, t))
    return out


def build(sources: list[str], lang: str, drops: Counter
          ) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
    """Deduplicated (English, translation) pairs from all catalogues, and per catalogue the
    number of entries read."""
    cleaned: list[tuple[str, str]] = []
    read: list[tuple[str, int]] = []
    for name, data in find_catalogues(sources, lang):
        try:
            entries = read_catalogue(name, data)
        except CatalogueError as e:
            print(f"skipped {e}", file=sys.stderr)
            continue
        read.append((name, len(entries)))
        for src, tgt in entries:
            cleaned += clean_pairs(src, tgt, drops)
    return deduplicate(cleaned, drops), read


def split(pairs: list[tuple[str, str]], seed: int, n_dev: int, n_test: int,
          n_train: int | None = None) -> dict[str, list[tuple[str, str]]]:
    """Test, dev and train by SHA-256 of (seed, English sentence): reproducible, and a pair's
    split does not depend on which other pairs exist. Train: the rest, or its first ``n_train``
    (all of it if there are fewer)."""
    order = sorted(pairs, key=lambda p: hashlib.sha256(f"{seed}\t{p[0]}".encode()).hexdigest())
    if len(order) < n_dev + n_test + 1:
        raise CatalogueError(f"only {len(order)} pairs: too few for {n_test} test and {n_dev} "
                             "dev pairs")
    rest = order[n_test + n_dev :]
    return {"test": order[:n_test], "dev": order[n_test : n_test + n_dev],
            "train": rest if n_train is None else rest[:n_train]}


def write_split(out: Path, splits: dict[str, list[tuple[str, str]]], lang: str) -> None:
    """``out/{train,dev,test}.{en,LANG}``, one sentence a line."""
    make_dir(out)
    for name, part in splits.items():
        for k, side in ((0, "en"), (1, lang)):
            write_atomic(out / f"{name}.{side}", "".join(p[k] + "\n" for p in part).encode())


def packages(paths: list[str]) -> dict[str, tuple[str, str, str]]:
    """(Debian package, its version, its copyright file) of each installed file of ``paths``,
    from one ``dpkg -S`` for all. Files no package ships are left out, and so are relative paths
    and paths with a glob character, which dpkg would read as patterns."""
    wanted = [p for p in paths if p.startswith("/") and not re.search(r"[*?\[\]\\]", p)]
    if not wanted:
        return {}
    try:
        owners = subprocess.run(["dpkg", "-S", *wanted], capture_output=True, text=True,
                                check=False).stdout
        owner = {}
        for line in owners.splitlines():  # "pkg: /path", "pkg:arch: /path", "a, b: /path"
            pkgs, sep, path = line.rpartition(": ")
            if sep and not line.startswith(("diversion by ", "local diversion ")):
                owner[path] = pkgs.split(",")[0].split(":")[0].strip()
        listed = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Version}\n",
                                 *sorted(set(owner.values()))], capture_output=True, text=True,
                                check=False).stdout if owner else ""
    except OSError:  # not a Debian system
        return {}
    versions = dict(line.split("\t", 1) for line in listed.splitlines() if "\t" in line)
    return {path: (pkg, versions.get(pkg, ""), f"/usr/share/doc/{pkg}/copyright")
            for path, pkg in owner.items()}


def add_split_arguments(ap: argparse.ArgumentParser, dev: int, test: int) -> None:
    """``--out``, ``--dev`` and ``--test`` (``dev``, ``test`` by default; at least 0),
    ``--train-size`` and ``--seed``: the arguments of ``write_corpus``."""
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--dev", type=non_negative_int, default=dev, help="dev pairs")
    ap.add_argument("--test", type=non_negative_int, default=test, help="test pairs")
    ap.add_argument("--train-size", type=positive_int, metavar="N",
                    help="keep only the first N training pairs of the split's order: a "
                         "deterministic random subsample, with the same dev and test pairs "
                         "(default: all; all too if there are fewer, as the summary says)")
    ap.add_argument("--seed", type=int, default=1)


def write_corpus(args: argparse.Namespace, pairs: list[tuple[str, str]], lang: str,
                 sources: Callable[[], list[tuple[str, ...]]], read: str, drops: Counter) -> int:
    """Split ``pairs`` (``args.seed``, ``args.dev``, ``args.test``, ``args.train_size``), write
    the split and ``SOURCES.tsv`` (the rows of ``sources()``, its header first) to ``args.out``,
    and print the summary: ``read`` (what was read), the pairs per split (with --train-size, how
    many training pairs were left out), the drops by reason. 0, or 2 (and nothing written) with
    a one-line error if there are too few pairs."""
    try:
        splits = split(pairs, args.seed, args.dev, args.test, args.train_size)
    except CatalogueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    write_split(out, splits, lang)
    write_atomic(out / "SOURCES.tsv", "".join("\t".join(r) + "\n" for r in sources()).encode())
    train = len(splits["train"])
    if args.train_size is not None:
        rest = len(pairs) - args.dev - args.test  # the training pairs before --train-size
        train = f"{train} of {rest} ({rest - train} left out by --train-size)"
    print(f"{read} -> {len(pairs)} pairs (train {train}, dev {len(splits['dev'])}, test "
          f"{len(splits['test'])}) in {out}", file=sys.stderr)
    for reason, n in drops.most_common():
        print(f"  dropped {n}: {reason}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.data.real",
                                 description="Build a parallel corpus from translation "
                                             "catalogues (see the module docstring).")
    ap.add_argument("--pair", default="en-fr", help="en-LANG, LANG a locale directory name")
    ap.add_argument("--source", action="append",
                    help="a directory searched for LANG/LC_MESSAGES/*.mo|*.po, or a wheel/zip "
                         f"file (repeatable; default: {' '.join(DEFAULT_SOURCES)})")
    add_split_arguments(ap, dev=1000, test=2000)
    return ap


@reports_os_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    en, _, lang = args.pair.partition("-")
    if en != "en" or not lang:
        print(f"error: --pair {args.pair}: expected en-LANG (catalogues translate from English)",
              file=sys.stderr)
        return 2
    drops: Counter = Counter()
    try:
        pairs, read = build(args.source or list(DEFAULT_SOURCES), lang, drops)
    except CatalogueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def sources() -> list[tuple[str, ...]]:
        owners = packages([name for name, _ in read])
        return [("catalogue", "entries", "debian_package", "version", "copyright"),
                *((name, str(n), *owners.get(name, ("", "", ""))) for name, n in read)]

    return write_corpus(args, pairs, lang, sources,
                        f"{len(read)} catalogues, {sum(n for _, n in read)} entries", drops)


if __name__ == "__main__":
    sys.exit(main())
