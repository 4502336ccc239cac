"""The real-corpus builder: reading .po catalogues (also inside a wheel), cleaning, the split."""

import zipfile
from collections import Counter

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


def test_build_from_a_wheel_deduplicates_and_splits_reproducibly(tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    body = "".join(f'msgid "message number {n} here"\nmsgstr "message numéro {n} ici"\n\n'
                   for n in range(40))
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
