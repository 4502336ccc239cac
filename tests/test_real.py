"""The real-corpus builder: reading .po catalogues (also inside a wheel), cleaning, the split."""

import subprocess
import zipfile
from collections import Counter

import pytest

from minirnnsearch.data import real

PO = r'''msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#: a.c:1
msgid "cannot open file %s for reading"
msgstr "impossible d'ouvrir le fichier %s en lecture"

#, fuzzy
msgid "this one is not reviewed"
msgstr "celui-ci n'est pas relu"

msgctxt "menu"
msgid ""
"_Open the <b>selected</b> "
"file now"
msgstr "_Ouvrir le fichier <b>sélectionné</b> maintenant"

msgid "%d file was removed"
msgid_plural "%d files were removed"
msgstr[0] "%d fichier a été supprimé"
msgstr[1] "%d fichiers ont été supprimés"

msgid "wrong placeholder %s here"
msgstr "mauvais paramètre %d ici"

msgid "Untranslated entry here"
msgstr ""

#~ msgid "an obsolete entry"
#~ msgstr "une entrée obsolète"
'''


def test_read_po_skips_fuzzy_header_obsolete_and_untranslated():
    assert list(real.read_po(PO)) == [
        ("cannot open file %s for reading", "impossible d'ouvrir le fichier %s en lecture"),
        ("_Open the <b>selected</b> file now", "_Ouvrir le fichier <b>sélectionné</b> maintenant"),
        ("%d file was removed", "%d fichier a été supprimé"),
        ("wrong placeholder %s here", "mauvais paramètre %d ici")]


def test_clean_pairs_markup_mnemonics_placeholders_paragraphs():
    drops = Counter()
    assert real.clean_pairs("_Open the <b>selected</b> file", "_Ouvrir le fichier <b>choisi</b>",
                            drops) == [("Open the selected file", "Ouvrir le fichier choisi")]
    assert real.clean_pairs("wrong %s here", "faux %d ici", drops) == []
    assert real.clean_pairs("Use %(name)s now", "Utilisez %(name)s maintenant", drops) == [
        ("Use %(name)s now", "Utilisez %(name)s maintenant")]
    assert real.clean_pairs("First part here.\n\nSecond   part\nhere.",
                            "Première partie ici.\n\nSeconde\u00a0partie ici.", drops) == [
        ("First part here.", "Première partie ici."), ("Second part here.", "Seconde partie ici.")]
    assert real.clean_pairs("same text here", "same text here", drops) == []
    assert drops == Counter({"placeholders differ": 1, "untranslated": 1})


BODY = "".join(f'msgid "message number {n} here"\nmsgstr "message numéro {n} ici"\n\n'
               for n in range(40))  # 40 pairs


def test_build_from_a_wheel_deduplicates_and_splits_reproducibly(tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    body = BODY
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/locale/fr/LC_MESSAGES/a.po", PO + "\n" + body)
        z.writestr("pkg/locale/fr/LC_MESSAGES/b.po", body)          # duplicates
        z.writestr("pkg/locale/fr/LC_MESSAGES/b.mo", b"compiled from b.po: not read again")
        z.writestr("pkg/locale/fr_CA/LC_MESSAGES/a.po", body.replace("ici", "icitte"))
    assert [n for n, _ in real.find_catalogues([str(wheel)], "fr")] == [
        f"{wheel.name}:pkg/locale/fr/LC_MESSAGES/{f}" for f in ("a.po", "b.po")]
    drops = Counter()
    pairs, read = real.build([str(wheel)], "fr", drops)
    assert [n for _, n in read] == [44, 40]                           # fr only, not fr_CA
    assert len(pairs) == 43 and len({s for s, _ in pairs}) == 43
    assert drops["English sentence seen before (duplicate)"] == 40
    a = real.split(pairs, 7, 5, 10)
    assert a == real.split(list(reversed(pairs)), 7, 5, 10)
    assert [len(a[k]) for k in ("test", "dev", "train")] == [10, 5, 28]
    assert real.split(pairs, 8, 5, 10) != a
    out = tmp_path / "out"
    assert real.main(["--pair", "en-fr", "--source", str(wheel), "--out", str(out),
                      "--dev", "5", "--test", "10", "--seed", "7"]) == 0
    assert (out / "test.en").read_text().splitlines() == [s for s, _ in a["test"]]
    assert (out / "train.fr").read_text().splitlines() == [t for _, t in a["train"]]


@pytest.mark.parametrize(("size", "train", "said"), [
    (None, 30, "train 30,"),
    (20, 20, "train 20 of 30 (10 left out by --train-size),"),
    (30, 30, "train 30 of 30 (0 left out by --train-size),"),
    (1000, 30, "train 30 of 30 (0 left out by --train-size),"),
])
def test_train_size_keeps_the_first_training_pairs_and_the_same_dev_and_test(
        tmp_path, capsys, size, train, said):
    """--train-size N: the first N training pairs of the split's order (so a subsample is a
    prefix of any larger one, and of the whole), dev and test as without it; asked for more
    pairs than there are, it keeps them all and says so."""
    source = tmp_path / "locale" / "fr" / "LC_MESSAGES"
    source.mkdir(parents=True)
    (source / "a.po").write_text(BODY, encoding="utf-8")

    def build(out, *more):
        assert real.main(["--pair", "en-fr", "--source", str(tmp_path / "locale"), "--out",
                          str(out), "--dev", "5", "--test", "5", "--seed", "3", *more]) == 0
        return {f.name: f.read_text().splitlines() for f in sorted(out.iterdir())}

    whole = build(tmp_path / "whole")
    capsys.readouterr()
    sized = build(tmp_path / "sized", *(("--train-size", str(size)) if size else ()))
    summary = capsys.readouterr().err.splitlines()[0]
    assert summary == (f"1 catalogues, 40 entries -> 40 pairs ({said} dev 5, test 5) in "
                       f"{tmp_path / 'sized'}")
    assert len(whole["train.en"]) == 30
    for name, lines in whole.items():
        assert sized[name] == (lines[:train] if name.startswith("train.") else lines), name


def test_packages_asks_dpkg_once_for_all_installed_paths(monkeypatch):
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        out = {"dpkg": "man-db: /usr/share/man/fr/man1/apropos.1.gz\n"
                       "libc6:amd64: /usr/lib/x86_64-linux-gnu/libc.so.6\n"
                       "diversion by dash from: /bin/sh\n"
                       "local diversion from: /usr/share/local\n"
                       "local diversion to: /usr/share/local.distrib\n"
                       "a, b: /usr/share/both\n",
               "dpkg-query": "a\t1.0\nlibc6\t2.36-9\nman-db\t2.11.2-2\n"}[cmd[0]]
        return subprocess.CompletedProcess(cmd, 1, out, "")  # 1: some path is not installed

    monkeypatch.setattr(real.subprocess, "run", run)
    paths = ["/usr/share/man/fr/man1/apropos.1.gz", "/usr/lib/x86_64-linux-gnu/libc.so.6",
             "/usr/share/both", "/not/installed", "relative/path.mo", "/usr/share/[.1.gz"]
    assert real.packages(paths) == {
        "/usr/share/man/fr/man1/apropos.1.gz":
            ("man-db", "2.11.2-2", "/usr/share/doc/man-db/copyright"),
        "/usr/lib/x86_64-linux-gnu/libc.so.6":
            ("libc6", "2.36-9", "/usr/share/doc/libc6/copyright"),
        "/usr/share/both": ("a", "1.0", "/usr/share/doc/a/copyright")}
    assert calls == [["dpkg", "-S", *paths[:4]],
                     ["dpkg-query", "-W", "-f=${Package}\t${Version}\n", "a", "libc6", "man-db"]]
    assert real.packages(["relative/path.mo"]) == {} and len(calls) == 2


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--test", "-3", "must be at least 0, got -3"),
    ("--train-size", "0", "must be at least 1, got 0"),
])
def test_bad_split_sizes_are_one_line_argparse_errors(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as e:
        real.main(["--pair", "en-fr", "--out", str(tmp_path / "out"), flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].endswith(f"error: argument {flag}: {message}")
    assert not (tmp_path / "out").exists()
