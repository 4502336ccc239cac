"""The prose corpus builder: paragraphs of DocBook HTML and Mallard, their alignment, the split
by document, and the command on small package trees the tests write (no apt-get)."""

import gzip
import os
import stat
from collections import Counter

import pytest

from minirnnsearch.data import prose

HTML = """<html><body><div class="book"><h1>Title, not a paragraph</h1>
<div class="sidebar"><p class="title"><strong>NOTE A heading</strong></p>
<div class="para">
  Install the <code class="command">apt</code> package &amp; read
  <a href="x.html">its page</a>.
</div></div>
<div class="para">Before the list.<div class="itemizedlist"><ul><li>\
<div class="para">An item.</div></li></ul></div>After the list.</div>
<pre class="screen">$ code is not a paragraph.</pre>
<p>A plain paragraph.</p>
</div></body></html>"""


def test_html_paragraphs_in_order_without_markup_headings_or_code():
    assert prose.html_paragraphs(HTML) == [
        "Install the apt package & read its page.", "Before the list.", "An item.",
        "After the list.", "A plain paragraph."]


MALLARD = """<page xmlns="http://projectmallard.org/1.0/" id="x">
<title>Not a paragraph</title>
<p>Open the <gui>Settings</gui> panel.</p>
<note><p>A note.</p></note>
<p>  </p>
</page>"""


def test_mallard_paragraphs():
    assert prose.mallard_paragraphs(MALLARD) == ["Open the Settings panel.", "A note."]


def test_aligned_pairs_drops_a_page_of_other_paragraphs_and_english_left_as_it_is():
    drops = Counter()
    en = ["The cat sleeps on the mat.", "Use the apt command to install packages."]
    fr = ["Le chat dort sur le tapis.", "Use the apt command to install packages."]
    assert prose.aligned_pairs(en, fr, drops) == [(en[0], fr[0])]
    assert drops["paragraphs left in English"] == 1
    assert prose.aligned_pairs(en, fr[:1], drops) == []
    assert drops["pages whose translation has another number of paragraphs"] == 1


# -- small package trees -----------------------------------------------------------------------

SENTENCES = [  # English, French: one sentence a pair, all distinct
    (f"The system number {k} starts the network service at boot time.",
     f"Le système numéro {k} démarre le service réseau au démarrage.") for k in range(400)]


def page(paragraphs):
    return "<html><body>" + "".join(f'<div class="para">{p}</div>' for p in paragraphs) + \
        "</body></html>"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_cache(root, per_doc=10, docs=8, shared=None):
    """A cache of unpacked packages: every book with ``docs`` pages of ``per_doc`` sentence
    pairs each (the handbook's pages; the others one page each), GNOME's help, and one man
    page. ``shared``: an English sentence put in every handbook page (a duplicate across
    documents). Returns the English man pages' root."""
    sentences = iter(SENTENCES)
    fill = dict(lang="fr", locale="fr-FR")
    for book in prose.BOOKS:
        en_pkg, tr_pkg = book.package, book.tr_package.format(**fill)
        n = docs if book.name == "debian-handbook" else 1
        for d in range(n):
            pairs = [next(sentences) for _ in range(per_doc)]
            if shared and book.name == "debian-handbook":
                pairs.append(shared)
            en = root / en_pkg / book.english.format(stem=f"doc{d}")
            tr = root / tr_pkg / book.translation.format(stem=f"doc{d}", **fill)
            if book.kind == "html":
                write(en, page([e for e, _ in pairs]))
                write(tr, page([f for _, f in pairs]))
            else:
                body = '<page xmlns="http://projectmallard.org/1.0/">{}</page>'
                write(en, body.format("".join(f"<p>{e}</p>" for e, _ in pairs)))
                write(tr, body.format("".join(f"<p>{f}</p>" for _, f in pairs)))
        for pkg in (en_pkg, tr_pkg):
            write(root / pkg / "usr/share/doc" / pkg / "copyright",
                  "Format: x\n\nFiles: *\nLicense: GPL-2+\n")
            (root / f"{pkg}_1.{len(pkg)}_all.deb").touch()
    man = root / "english-man"
    en_page, tr_page = next(sentences), next(sentences)
    for path, text in ((man / "man1/tool.1.gz", en_page[0]),
                       (root / "manpages-fr/usr/share/man/fr/man1/tool.1.gz", tr_page[1])):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(f".TH TOOL 1\n.SH NAME\n{text}\n".encode()))
    return man, tr_page


def build(tmp_path, *args, **kwargs):
    cache = tmp_path / "cache"
    man, _ = make_cache(cache, **kwargs)
    out = tmp_path / "out"
    code = prose.main(["--pair", "en-fr", "--out", str(out), "--cache", str(cache),
                       "--man", str(man), *args])
    return code, out


def read_split(out, name):
    en = (out / f"{name}.en").read_text(encoding="utf-8").splitlines()
    fr = (out / f"{name}.fr").read_text(encoding="utf-8").splitlines()
    return list(zip(en, fr, strict=True))


def test_the_split_is_by_document_and_test_and_dev_come_from_the_books(tmp_path, capsys):
    code, out = build(tmp_path, "--test", "25", "--dev", "15")
    assert code == 0
    rows = [r.split("\t") for r in (out / "SOURCES.tsv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    col = {name: k for k, name in enumerate(header)}
    assert len(rows) == 8 + 3 + 1 + 1  # the handbook's 8 pages, the other books, GNOME, man
    split_of = {r[col["document"]]: r[col["split"]] for r in rows}
    tested = {b.name for b in prose.BOOKS if b.test}
    for r in rows:
        if r[col["book"]] not in tested:
            assert r[col["split"]] == "train"
    # whole documents: test takes them until it has 25 pairs (10 a page), dev until 15
    counts = Counter(r[col["split"]] for r in rows if r[col["book"]] in tested)
    assert (counts["test"], counts["dev"]) == (3, 2)
    splits = {name: read_split(out, name) for name in ("train", "dev", "test")}
    assert (len(splits["test"]), len(splits["dev"])) == (30, 20)
    # every pair of a document is in that document's split
    written = {p: name for name, pairs in splits.items() for p in pairs}
    for r in rows:
        book = next((b for b in prose.BOOKS if b.name == r[col["book"]]), None)
        if book is None or book.kind != "html":
            continue
        text = (tmp_path / "cache" / r[col["package"]] / r[col["document"]]).read_text()
        english = prose.html_paragraphs(text)
        assert {written[p] for p in written if p[0] in english} == {split_of[r[1]]}
    # the version from the .deb's name, the licence from the copyright file's License: field
    handbook = next(r for r in rows if r[col["book"]] == "debian-handbook")
    assert handbook[col["version"]] == f"1.{len('debian-handbook')}"
    assert handbook[col["licence"]] == "GPL-2+"
    assert sum(map(len, splits.values())) == 8 * 10 + 3 * 10 + 10 + 1
    err = capsys.readouterr().err
    assert "test: 3 documents, 30 pairs, 0 of 30-50 English words" in err


def test_an_english_sentence_is_in_one_split_only(tmp_path):
    shared = ("This sentence is on every page of the handbook.",
              "Cette phrase est sur chaque page du manuel.")
    code, out = build(tmp_path, "--test", "25", "--dev", "15", shared=shared)
    assert code == 0
    where = [name for name in ("train", "dev", "test") if shared in read_split(out, name)]
    assert where == ["test"]
    english = [s for name in ("train", "dev", "test") for s, _ in read_split(out, name)]
    assert len(english) == len(set(english))


def test_too_few_pairs_in_the_books_is_one_line_and_writes_nothing(tmp_path, capsys):
    code, out = build(tmp_path, "--test", "1000")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the books' ") and "1000 test" in err[-1]
    assert not out.exists()


def test_a_package_apt_cannot_fetch_is_one_line(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text("#!/bin/sh\necho 'E: Unable to locate package '$2 >&2\nexit 100\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code = prose.main(["--pair", "en-fr", "--out", str(tmp_path / "out"),
                       "--cache", str(tmp_path / "empty")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: apt-get download debian-handbook: E: Unable to locate package debian-handbook")
    assert not (tmp_path / "out").exists()


def test_fetch_unpacks_a_downloaded_deb_whole(tmp_path):
    """dpkg-deb -x into a temporary directory, renamed into place: the tree appears whole."""
    pkg = tmp_path / "src"
    write(pkg / "usr/share/doc/demo/copyright", "License: CC-BY-SA-3.0\n")
    write(pkg / "DEBIAN/control", "Package: demo\nVersion: 2.5-1\nArchitecture: all\n"
          "Maintainer: x <x@example.org>\nDescription: demo\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    pytest.importorskip("subprocess").run(
        ["dpkg-deb", "--build", str(pkg), str(cache / "demo_2.5-1_all.deb")],
        check=True, capture_output=True)
    root = prose.fetch("demo", cache)
    assert root == cache / "demo"
    assert (root / "usr/share/doc/demo/copyright").is_file()
    assert prose.package_info(root, "demo") == ("2.5-1", "CC-BY-SA-3.0")
    assert sorted(p.name for p in cache.iterdir()) == ["demo", "demo_2.5-1_all.deb"]
