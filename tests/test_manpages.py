"""The man-page corpus builder: the roff reader, the alignment, sentences, filters, the command."""

import gzip
import subprocess
from collections import Counter

import pytest

from minirnnsearch.data import manpages, real, roff

ROFF = r""".\" Copyright: a comment, not text
.TH LS 1
Text before the first section is left out.
.de XX
.B a macro definition, not text
..
.SH NAME
ls \- list \fBdirectory\fR contents \" a trailing comment
.SH "SEE ALSO"
.BR dir (1),
.I vdir
and \(lqthe \*(lqinfo\*(rq page\(rq \(em caf\('e, \[u00E9]t\('e \e\& \s-1small\s0 \
and continued.
.if n it is nroff.
.if t it is troff.
.ie '\*(.T'utf8' .B never
.el .B always.
.if !'po4a'hide' .B shown.
.if !n not shown.
.if n \{\
a multi-line conditional, dropped
.\}
.ie n \{\
a multi-line .ie, dropped, whose truth decides the .el
.\}
.el .B not shown either.
.ie t .B not shown.
.el\{\
.B a multi-line .el,
dropped too
.\}
.SH
EXAMPLES
Before.
.nf
verbatim code
.fi
.TS
l l.
a	table
.TE
After.
.SH OPTIONS
.TP
.B \-a
Show all.
.TP
.B
\-\-all
Same.
.IP \(bu 2
A bullet.
.IP "" 4
Indented, no tag.
"""


def test_roff_escapes_fonts_comments_and_blocks():
    assert roff.read_roff(ROFF) == [
        ("NAME", [("p", "ls - list directory contents")]),
        ("SEE ALSO", [("p", "dir(1), vdir and “the “info” page” — café, été \\ small and "
                            "continued. it is nroff. always. shown.")]),
        ("EXAMPLES", [("p", "Before."), ("v", ""), ("b", ""), ("p", "After.")]),
        ("OPTIONS", [("t", "-a"), ("p", "Show all."), ("t", "--all"), ("p", "Same."),
                     ("t", "•"), ("p", "A bullet."), ("p", "Indented, no tag.")]),
    ]


def test_macro_args_keep_quoted_words_together():
    assert roff.macro_args(r'"SEE ALSO" a\ b "say ""hi""" c') == [
        "SEE ALSO", r"a\ b", 'say "hi"', "c"]


def sections(*kinds_per_section, title="S"):
    return [(f"{title}{i}", [(k, f"{k}{i}{j}") for j, k in enumerate(kinds)])
            for i, kinds in enumerate(kinds_per_section)]


def test_align_drops_credits_and_sections_of_another_structure():
    english = sections("p", "pp", "tp", "pv")
    french = sections("p", "pp", "tpp", "pv", title="F") + [("TRADUCTION", [("p", "Jean")])]
    drops = Counter()
    assert manpages.align(english, french, drops) == [
        ("p00", "p00"), ("p10", "p10"), ("p11", "p11"), ("p30", "p30")]  # tags, code: not used
    assert drops == Counter({"sections with different block structures": 1})
    credited = english + [("TRANSLATIONS", [("p", "by")])]  # left out on either side
    assert manpages.align(credited, french, drops) == manpages.align(english, french, Counter())
    german = sections("p", "pp", "tp", "pv") + [("ÜBERSETZUNG", [("p", "Hans")]),
                                                ("HINWEISE", [("p", "mehr")])]
    assert manpages.align(english, german, drops) == []
    assert drops["pages with different numbers of sections"] == 1


@pytest.mark.parametrize(("paragraph", "expected"), [
    ("Really? Yes! It works. (Then stop.) Next.",
     ["Really?", "Yes!", "It works.", "(Then stop.)", "Next."]),
    ("Some files, e.g. Makefile, are read. See the manual (i.e. This page) first.",
     ["Some files, e.g. Makefile, are read.", "See the manual (i.e. This page) first."]),
    ("Einige Optionen, z. B. Farben, sind aktiv. Das ist gut.",
     ["Einige Optionen, z. B. Farben, sind aktiv.", "Das ist gut."]),
    ("Certains fichiers, p. ex. Makefile, sont lus. Written by J. Smith. In 2024.",
     ["Certains fichiers, p. ex. Makefile, sont lus.", "Written by J. Smith.", "In 2024."]),
    ("version 2.0 is here. it goes on", ["version 2.0 is here. it goes on"]),
    # a closing bracket or quote ends a sentence only after . ! or ?
    ("Die Optionen (siehe unten) Steuern die Ausgabe.", ["Die Optionen (siehe unten) Steuern "
                                                         "die Ausgabe."]),
    ('Lies die „Datei“ Dann geht es weiter.', ['Lies die „Datei“ Dann geht es weiter.']),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    ('It ends ("here!") Then more.', ['It ends ("here!")', "Then more."]),
])
def test_sentences_split_but_not_after_abbreviations(paragraph, expected):
    assert manpages.sentences(paragraph) == expected


def test_sentence_pairs_need_as_many_sentences_of_matching_lengths():
    drops = Counter()
    assert manpages.sentence_pairs("One here. Two there.", "Un ici. Deux là-bas.", drops) == [
        ("One here.", "Un ici."), ("Two there.", "Deux là-bas.")]
    assert manpages.sentence_pairs("One here. Two there.", "Un ici, deux là-bas.", drops) == []
    assert manpages.sentence_pairs("One. Two is a much longer sentence.",
                                   "Un est une phrase bien plus longue. Deux.", drops) == []
    assert drops == Counter({"paragraphs with different numbers of sentences": 1,
                             "paragraphs whose sentences differ in length (split elsewhere)": 1})


def test_keep_drops_untranslated_too_long_and_uneven_pairs():
    drops = Counter()
    assert manpages.keep("The file is read.", "Le fichier est lu.", drops)
    assert not manpages.keep("Show the help.", "Show the help.", drops)
    assert not manpages.keep("This is the file that is used by the program.",
                             "This is the file that is used by the program now.", drops)
    assert not manpages.keep("word " * 81, "mot " * 81, drops)
    assert not manpages.keep("Stop it now.", "Arrêtez cela immédiatement, " * 4, drops)
    assert drops == Counter({"untranslated": 2, "not 2-80 words": 1, "length ratio over 3": 1})


def page(**sections: str) -> bytes:
    body = "".join(f".SH {title}\n{text}\n" for title, text in sections.items())
    return gzip.compress((".TH X 1\n" + body).encode())


NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
EN_DESCRIPTION = "\n.PP\n".join(
    " ".join(f"Option {n} {m} changes the colour of the output." for m in range(3))
    for n in NUMBERS) + "\n.PP\nThis is the default."
FR_DESCRIPTION = "\n.PP\n".join(
    " ".join(f"L'option {n} {m} change la couleur de la sortie." for m in range(3))
    for n in NUMBERS) + "\n.PP\nThis is the default."


@pytest.fixture
def tree(tmp_path):
    """A man root with English pages and French translations, and an unpacked .deb's root
    with a French translation only; a link, an orphan and two corrupt pages."""
    man, deb = tmp_path / "man", tmp_path / "deb" / "usr" / "share" / "man"
    for d in (man / "man1", man / "man8", man / "fr" / "man1", deb / "fr" / "man8"):
        d.mkdir(parents=True)
    (man / "man1" / "prog.1.gz").write_bytes(page(
        NAME=r"prog \- show \fInumbers\fP", DESCRIPTION=EN_DESCRIPTION,
        OPTIONS=".TP\n.B \\-v\nBe verbose.", BUGS="The file is read."))
    (man / "fr" / "man1" / "prog.1.gz").write_bytes(page(
        NOM=r"prog \- montrer des \fInombres\fP", DESCRIPTION=FR_DESCRIPTION,
        OPTIONS=".TP\n.B \\-v\nÊtre bavard.", BOGUES="Le fichier est lu.",
        TRADUCTION="La traduction est de Jean Dupont."))
    (man / "man1" / "alias.1.gz").symlink_to("prog.1.gz")
    (man / "fr" / "man1" / "alias.1.gz").symlink_to("prog.1.gz")
    (man / "fr" / "man1" / "orphan.1.gz").write_bytes(page(NOM="Sans original anglais."))
    for name in ("broken", "cut"):
        (man / "man1" / f"{name}.1.gz").write_bytes(page(NAME="An English page."))
    (man / "fr" / "man1" / "broken.1.gz").write_bytes(b"not gzip data")
    (man / "fr" / "man1" / "cut.1.gz").write_bytes(page(NOM="Une page coupée.")[:-12])
    (man / "man8" / "tool.8.gz").write_bytes(page(
        NAME="The file is read. Tool number one works well."))
    (deb / "fr" / "man8" / "tool.8.gz").write_bytes(page(
        NOM="On lit le fichier. L'outil numéro un marche bien."))
    return man, deb


def test_build_aligns_pages_of_two_roots_and_deduplicates(tree, capsys):
    man, deb = tree
    drops = Counter()
    pairs, pages = manpages.build([str(man), str(deb)], "fr", drops)
    skipped = capsys.readouterr().err.splitlines()
    assert len(skipped) == 2
    assert skipped[0].startswith(f"skipped {man}/fr/man1/broken.1.gz: unreadable (")
    assert skipped[1].startswith(f"skipped {man}/fr/man1/cut.1.gz: unreadable (")
    assert [(p.path, p.original, p.paragraphs, p.pairs) for p in pages] == [
        (man / "fr/man1/prog.1.gz", man / "man1/prog.1.gz", 14, 33),
        (deb / "fr/man8/tool.8.gz", man / "man8/tool.8.gz", 1, 2)]
    english = dict(pairs)
    assert len(pairs) == 34 == len(english)
    assert english["prog - show numbers"] == "prog - montrer des nombres"
    assert english["Option two 1 changes the colour of the output."] == \
        "L'option two 1 change la couleur de la sortie."
    assert english["Be verbose."] == "Être bavard."
    assert english["The file is read."] == "Le fichier est lu."  # tie: the first page's
    assert english["Tool number one works well."] == "L'outil numéro un marche bien."
    assert "This is the default." not in english and "-v" not in english
    assert not any("Dupont" in t for t in english.values())
    assert drops == Counter({"English sentence seen before (duplicate)": 1, "untranslated": 1,
                             "pages with no English original": 1,
                             "English page already read (a link, or another source's "
                             "translation)": 1})


def run(*argv):
    return manpages.main([str(a) for a in argv])


def test_main_writes_a_reproducible_split_and_sources(tree, tmp_path, capsys):
    man, deb = tree
    args = ("--pair", "en-fr", "--source", man, "--source", deb, "--dev", 5, "--test", 10)
    assert run(*args, "--out", tmp_path / "a") == 0
    summary = capsys.readouterr().err.splitlines()[2:]  # after the two skipped pages
    assert summary[0] == f"2 pages, 15 aligned paragraphs -> 34 pairs (train 19, dev 5, test 10) " \
                         f"in {tmp_path / 'a'}"
    assert "  dropped 1: untranslated" in summary
    assert run(*args, "--out", tmp_path / "b") == 0
    assert run(*args, "--out", tmp_path / "c", "--seed", 2) == 0
    files = ["train.en", "train.fr", "dev.en", "dev.fr", "test.en", "test.fr", "SOURCES.tsv"]
    a = {f: (tmp_path / "a" / f).read_text() for f in files}
    assert a == {f: (tmp_path / "b" / f).read_text() for f in files}
    assert a["test.en"] != (tmp_path / "c" / "test.en").read_text()
    assert [len(a[f].splitlines()) for f in files] == [19, 19, 5, 5, 10, 10, 3]
    english = a["train.en"] + a["dev.en"] + a["test.en"]
    french = a["train.fr"] + a["dev.fr"] + a["test.fr"]
    assert sorted(english.splitlines()) == sorted(set(english.splitlines()))
    assert "Le fichier est lu." in french.splitlines()
    rows = [r.split("\t") for r in a["SOURCES.tsv"].splitlines()]
    assert rows[0] == ["page", "original", "paragraphs", "pairs", "debian_package", "version",
                       "copyright", "original_package", "original_version", "original_copyright"]
    assert [r[:4] for r in rows[1:]] == [
        [f"{man}/fr/man1/prog.1.gz", f"{man}/man1/prog.1.gz", "14", "33"],
        [f"{deb}/fr/man8/tool.8.gz", f"{man}/man8/tool.8.gz", "1", "2"]]
    assert all(r[4:] == [""] * 6 for r in rows[1:])  # no package ships these
    assert run(*args, "--out", tmp_path / "d", "--train-size", 10) == 0  # real.split's
    assert (tmp_path / "d" / "train.en").read_text().splitlines() == \
        a["train.en"].splitlines()[:10]


def test_build_reads_an_english_page_once_with_the_first_readable_translation(tree, capsys):
    """A corrupt translation or a stub does not keep another source's translation of the same
    page from being read; a second readable one is not read; stubs (.so) are not pages."""
    man, deb = tree
    (deb / "fr" / "man1").mkdir()
    (deb / "fr" / "man1" / "broken.1.gz").write_bytes(page(NOM="Une page en français."))
    (deb / "fr" / "man1" / "prog.1.gz").write_bytes(page(NOM="Une autre traduction du tout."))
    stub = gzip.compress(b".\\\" a stub\n.so man1/prog.1\n")
    (man / "man1" / "stub.1.gz").write_bytes(stub)
    (man / "fr" / "man1" / "stub.1.gz").write_bytes(stub)
    (man / "man1" / "half.1.gz").write_bytes(page(NAME="Half of the pages here."))
    (man / "fr" / "man1" / "half.1.gz").write_bytes(stub)
    (deb / "fr" / "man1" / "half.1.gz").write_bytes(page(NOM="La moitié des pages ici."))
    assert manpages.read_page(man / "fr" / "man1" / "stub.1.gz") is None
    drops = Counter()
    pairs, pages = manpages.build([str(man), str(deb)], "fr", drops)
    assert len(capsys.readouterr().err.splitlines()) == 2  # broken, cut: skipped in man/
    assert [(p.path, p.original, p.paragraphs) for p in pages] == [
        (man / "fr/man1/prog.1.gz", man / "man1/prog.1.gz", 14),
        (deb / "fr/man1/broken.1.gz", man / "man1/broken.1.gz", 1),
        (deb / "fr/man1/half.1.gz", man / "man1/half.1.gz", 1),
        (deb / "fr/man8/tool.8.gz", man / "man8/tool.8.gz", 1)]
    english = dict(pairs)
    assert english["An English page."] == "Une page en français."
    assert english["Half of the pages here."] == "La moitié des pages ici."
    assert "Une autre traduction du tout." not in english.values()
    assert drops["English page already read (a link, or another source's translation)"] == 2
    assert drops["stub page (.so)"] == 2  # stub: both sides; half: the translation in man/


def test_sources_name_the_packages_of_the_translation_and_of_the_original(
        tree, tmp_path, monkeypatch, capsys):
    """One dpkg -S for the translations and their originals, which another package ships."""
    man, deb = tree
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        out = {"dpkg": f"manpages-fr: {man}/fr/man1/prog.1.gz\n"
                       f"coreutils: {man}/man1/prog.1.gz\nprogs: {man}/man8/tool.8.gz\n",
               "dpkg-query": "coreutils\t9.1-1\nmanpages-fr\t4.18.1-1\nprogs\t2.0\n"}[cmd[0]]
        return subprocess.CompletedProcess(cmd, 1, out, "")

    monkeypatch.setattr(real.subprocess, "run", fake_run)
    assert run("--pair", "en-fr", "--source", man, "--source", deb, "--dev", 5, "--test", 10,
               "--out", tmp_path / "out") == 0
    assert calls[0] == ["dpkg", "-S", f"{man}/fr/man1/prog.1.gz", f"{man}/man1/prog.1.gz",
                        f"{deb}/fr/man8/tool.8.gz", f"{man}/man8/tool.8.gz"]
    assert len(calls) == 2  # and dpkg-query
    rows = [r.split("\t")[4:] for r in
            (tmp_path / "out" / "SOURCES.tsv").read_text().splitlines()[1:]]
    assert rows == [
        ["manpages-fr", "4.18.1-1", "/usr/share/doc/manpages-fr/copyright",
         "coreutils", "9.1-1", "/usr/share/doc/coreutils/copyright"],
        ["", "", "", "progs", "2.0", "/usr/share/doc/progs/copyright"]]


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--dev", "-1", "argument --dev: must be at least 0, got -1"),
    ("--test", "ten", "argument --test: must be an integer, got 'ten'"),
])
def test_bad_split_sizes_are_argparse_errors(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as e:
        run("--pair", "en-fr", "--out", tmp_path / "out", flag, value)
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: {message}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--pair", "fr-en"], "error: --pair fr-en: expected en-LANG, LANG a man page language "
                          "directory such as fr, de or pt_BR"),
    (["--pair", "en"], "error: --pair en: expected en-LANG"),
    (["--pair", "en-../fr"], "error: --pair en-../fr: expected en-LANG"),
    (["--pair", "en-it"], "error: no translated pages: no it/man*/*.gz with its English page "
                          "under {man}"),
    (["--pair", "en-fr"], "error: only 34 pairs: too few for 1000 test and 500 dev pairs"),
    (["--pair", "en-fr", "--source", "{man}/man1/prog.1.gz"],
     "error: --source {man}/man1/prog.1.gz: not a directory"),
])
def test_errors_are_one_line_and_exit_2(tree, tmp_path, capsys, argv, message):
    man, deb = tree
    argv = [a.format(man=man) for a in argv]
    if "--source" not in argv:
        argv += ["--source", str(man), "--source", str(deb)]
    assert run(*argv, "--out", tmp_path / "out") == 2
    err = [line for line in capsys.readouterr().err.splitlines()
           if not line.startswith("skipped ")]
    assert len(err) == 1 and err[0].startswith(message.format(man=man))
    assert not (tmp_path / "out").exists()
