"""The built-in English->French corpus: a seeded generator over a small lexicon and grammar.

What it exercises, the things that make alignment worth learning:
- determiners and adjectives agreeing in gender and number (le/la/l'/les, un/une, ce/cet/cette/
  ces, mon/ma/mes, "la maison verte", "les maisons vertes");
- adjectives after the noun, in mirror order (the paper's Figure 3: "the European Economic
  Area" -> "la zone économique européenne");
- subject-verb agreement in the present tense, regular and irregular verbs, all persons;
- object pronouns before the verb ("I see it" -> "je le vois", "we see them" -> "nous les
  voyons"), and negation around them ("I do not see it" -> "je ne le vois pas");
- prepositional phrases with the contractions au, aux, du, des; numbers with agreement;
- coordination (and, but) and relative clauses (who/that -> qui), so that sentences run from
  3 to about 60 words.

Every English sentence has exactly one French translation, so the mapping can be learnt. The
files written are plain line-aligned text, read by the same code as any user's corpus.
The second built-in pair, English->German (``german.py``), shares the files and commands here:

    python -m minirnnsearch.data.corpus [--pair en-de] OUTDIR
                                 writes the corpus (default en-fr) and prints its statistics
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from ..oserrors import make_dir, reports_os_errors, write_atomic
from .german import GermanGrammar, move_statistics, phenomena
from .io import read_lines

VOWELS = "aeiouhéèêàâîôûœ"  # h: only h muet words are listed


@dataclass(frozen=True)
class Noun:
    en: str
    en_pl: str
    fr: str
    fr_pl: str
    fem: bool


def _nouns() -> list[Noun]:
    # english, english plural, french, french plural (or "" for +s), f(eminine)/m(asculine)
    table = """
    cat cats chat - m | dog dogs chien - m | house houses maison - f | car cars voiture - f
    book books livre - m | city cities ville - f | area areas zone - f | bank banks banque - f
    tree trees arbre - m | school schools école - f | friend friends ami - m
    table tables table - f | letter letters lettre - f | garden gardens jardin - m
    river rivers rivière - f | bird birds oiseau oiseaux m | child children enfant - m
    teacher teachers professeur - m | woman women femme - f | man men homme - m
    apple apples pomme - f | door doors porte - f | window windows fenêtre - f
    train trains train - m | country countries pays pays m | agreement agreements accord - m
    market markets marché - m | government governments gouvernement - m
    company companies entreprise - f | report reports rapport - m | street streets rue - f
    boat boats bateau bateaux m | horse horses cheval chevaux m | flower flowers fleur - f
    key keys clé - f | road roads route - f | student students étudiant - m
    doctor doctors médecin - m | island islands île - f | newspaper newspapers journal journaux m
    song songs chanson - f | plan plans projet - m | union unions union - f
    policy policies politique - f | hotel hotels hôtel - m | idea ideas idée - f
    bridge bridges pont - m | village villages village - m | church churches église - f
    computer computers ordinateur - m | painting paintings tableau tableaux m
    shop shops magasin - m | forest forests forêt - f | question questions question - f
    """
    nouns = []
    for entry in table.replace("\n", "|").split("|"):
        if entry.strip():
            en, en_pl, fr, fr_pl, g = entry.split()
            nouns.append(Noun(en, en_pl, fr, fr + "s" if fr_pl == "-" else fr_pl, g == "f"))
    return nouns


NOUNS = _nouns()
PEOPLE = {"friend", "child", "teacher", "woman", "man", "student", "doctor"}

# english: french m, f, m pl, f pl ("-" = regular: +e, +s, +es)
ADJECTIVES = {
    "red": "rouge rouge rouges rouges", "green": "vert - - -", "black": "noir - - -",
    "blue": "bleu - - -", "white": "blanc blanche blancs blanches",
    "European": "européen européenne européens européennes", "economic": "économique "
    "économique économiques économiques", "political": "politique politique politiques "
    "politiques", "French": "français française français françaises",
    "happy": "heureux heureuse heureux heureuses", "tired": "fatigué - - -",
    "open": "ouvert - - -", "closed": "fermé - - -", "important": "important - - -",
    "modern": "moderne moderne modernes modernes", "rich": "riche riche riches riches",
    "strong": "fort - - -", "quiet": "calme calme calmes calmes",
    "difficult": "difficile difficile difficiles difficiles",
    "public": "public publique publics publiques", "national": "national - nationaux -",
    "social": "social - sociaux -", "free": "libre libre libres libres",
    "famous": "célèbre célèbre célèbres célèbres", "empty": "vide vide vides vides",
    "large": "vaste vaste vastes vastes",
}


def _adjective_forms(fr: str) -> tuple[str, str, str, str]:
    m, f, mp, fp = fr.split()
    f = m + "e" if f == "-" else f
    mp = m + "s" if mp == "-" else mp
    fp = f + "s" if fp == "-" else fp
    return m, f, mp, fp


ADJ = {en: _adjective_forms(fr) for en, fr in ADJECTIVES.items()}

# verbs: english base, english 3sg, french je tu il nous vous ils
VERBS_TABLE = """
see sees vois vois voit voyons voyez voient
like likes aime aimes aime aimons aimez aiment
find finds trouve trouves trouve trouvons trouvez trouvent
want wants veux veux veut voulons voulez veulent
have has ai as a avons avez ont
take takes prends prends prend prenons prenez prennent
know knows connais connais connaît connaissons connaissez connaissent
build builds construis construis construit construisons construisez construisent
sell sells vends vends vend vendons vendez vendent
buy buys achète achètes achète achetons achetez achètent
watch watches regarde regardes regarde regardons regardez regardent
open opens ouvre ouvres ouvre ouvrons ouvrez ouvrent
close closes ferme fermes ferme fermons fermez ferment
visit visits visite visites visite visitons visitez visitent
paint paints peins peins peint peignons peignez peignent
describe describes décris décris décrit décrivons décrivez décrivent
"""
VERBS = {row.split()[0]: row.split()[1:] for row in VERBS_TABLE.strip().splitlines()}
# word -> its verb, for measuring how far verbs move (german.verb_moves)
EN_VERB = {w: base for base, forms in VERBS.items() for w in (base, forms[0])}
FR_VERB = {w: base for base, forms in VERBS.items() for w in forms[1:]}

# subject pronouns: english, french, person index (0 je .. 5 ils), english verb form is 3sg?
PRONOUNS = [("I", "je", 0, False), ("you", "vous", 4, False), ("he", "il", 2, True),
            ("she", "elle", 2, True), ("we", "nous", 3, False), ("they", "ils", 5, False)]
# object pronouns: english -> french (before the verb)
OBJECT_PRONOUNS = {"it": "le", "him": "le", "her": "la", "them": "les", "me": "me", "us": "nous"}

NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
           "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
           "nineteen", "twenty"]
NOMBRES = ["deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
           "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf",
           "vingt"]

# prepositions: english -> (french, contracts with the article: "à" or "de" or None)
PREPOSITIONS = {"in": ("dans", None), "on": ("sur", None), "under": ("sous", None),
                "with": ("avec", None), "for": ("pour", None), "to": ("à", "à"),
                "near": ("près de", "de"), "from": ("de", "de"), "behind": ("derrière", None)}


def _elide(word: str, nxt: str) -> str:
    """le/la/je/me/ne/de/que before a vowel -> l'/j'/m'/n'/d'/qu' (joined to the next word)."""
    if nxt[0].lower() in VOWELS and word in ("le", "la", "je", "me", "ne", "de", "que", "te"):
        return word[:-1] + "'"
    return word


def _join(words: list[str]) -> str:
    """Words to text: an elided word (ending in ') is glued to the next one."""
    out = ""
    for w in words:
        out += w if (not out or out.endswith("'")) else " " + w
    return out


@dataclass
class NP:
    """A noun phrase in both languages and what agreement needs of it."""

    en: list[str]
    fr: list[str]
    plural: bool
    fem: bool
    det: str  # the French article kind: "def" (le/la/les) contracts with à/de; "" otherwise


def build_np(kind: str, adjs: list[str], noun: Noun, plural: bool, number: int = 0) -> NP:
    """A noun phrase in both languages: determiner ``kind`` (the, a, this, my, num), English
    adjectives ``adjs`` in English order, and agreement. ``build_np("the", ["European",
    "economic"], area, False)`` -> "the European economic area" / "la zone économique
    européenne": the French adjectives follow the noun in mirror order."""
    if kind == "a" and plural:
        kind = "some"
    if kind == "num":
        plural = True
    form = (2 if plural else 0) + (1 if noun.fem else 0)
    fr_tail = [noun.fr_pl if plural else noun.fr] + [ADJ[a][form] for a in reversed(adjs)]
    en_core = adjs + [noun.en_pl if plural else noun.en]
    vowel = fr_tail[0][0] in VOWELS
    det_kind = ""
    if kind == "the":
        en_det = ["the"]
        fr_det = ["les"] if plural else [_elide("la" if noun.fem else "le", fr_tail[0])]
        det_kind = "def"
    elif kind == "a":
        en_det = ["an" if en_core[0][0].lower() in "aeiou" else "a"]
        fr_det = ["une" if noun.fem else "un"]
    elif kind == "some":
        en_det, fr_det = ["some"], ["des"]
    elif kind == "this":
        en_det = ["these" if plural else "this"]
        fr_det = ["ces" if plural else "cette" if noun.fem else "cet" if vowel else "ce"]
    elif kind == "my":
        en_det = ["my"]
        fr_det = ["mes" if plural else "ma" if noun.fem and not vowel else "mon"]
    else:
        en_det, fr_det = [NUMBERS[number]], [NOMBRES[number]]
    return NP(en_det + en_core, fr_det + fr_tail, plural, noun.fem, det_kind)


class Grammar:
    """Random phrases in both languages; one instance per seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def noun_phrase(self, depth: int = 0, allow_rel: bool = True) -> NP:
        r = self.rng
        noun = r.choice(NOUNS)
        plural = r.random() < 0.35
        adjs = r.sample(sorted(ADJ), r.choices([0, 1, 2], [0.5, 0.35, 0.15])[0])
        kind = r.choices(["the", "a", "this", "my", "num"], [0.5, 0.2, 0.1, 0.1, 0.1])[0]
        number = r.randrange(len(NUMBERS))
        np_ = build_np(kind, adjs, noun, plural, number)
        if depth < 1 and r.random() < 0.2:  # "the book of the teacher" -> "le livre du professeur"
            of = self.noun_phrase(depth + 1, allow_rel=False)
            np_.en += ["of"] + of.en
            np_.fr += _contract("de", of)
        if allow_rel and depth < 1 and r.random() < 0.15:  # "the man who sees the dog"
            who = "who" if noun.en in PEOPLE else "that"
            verb_en, verb_fr = self.verb_phrase(5 if np_.plural else 2, not np_.plural, depth + 1)
            np_.en += [who] + verb_en
            np_.fr += ["qui"] + verb_fr
        return np_

    def verb_phrase(self, person: int, third_sg: bool, depth: int) -> tuple[list[str], list[str]]:
        """Verb and object (and maybe a prepositional phrase), agreeing with ``person``."""
        r = self.rng
        base = r.choice(sorted(VERBS))
        eng = VERBS[base]
        fr_verb = eng[1 + person]
        negate = r.random() < 0.15
        if r.random() < 0.25:  # object pronoun: before the verb in French
            obj_en = r.choice(sorted(OBJECT_PRONOUNS))
            obj_fr = [_elide(OBJECT_PRONOUNS[obj_en], fr_verb)]
            tail_fr = [fr_verb]
            obj_en_words = [obj_en]
        else:
            obj = self.noun_phrase(depth + 1)
            obj_fr, obj_en_words, tail_fr = [], obj.en, [fr_verb] + obj.fr
        if negate:
            en = ["does" if third_sg else "do", "not", base]
            first = (obj_fr or tail_fr)[0]
            fr = [_elide("ne", first)] + obj_fr + tail_fr[:1] + ["pas"] + tail_fr[1:]
        else:
            en = [eng[0] if third_sg else base]
            fr = obj_fr + tail_fr
        en += obj_en_words
        if depth < 2 and r.random() < 0.3:
            prep = r.choice(sorted(PREPOSITIONS))
            pobj = self.noun_phrase(depth + 1, allow_rel=False)
            fr_prep, contracts = PREPOSITIONS[prep]
            en += [prep] + pobj.en
            if contracts:
                head = fr_prep.split()[:-1]
                fr += head + _contract(contracts, pobj)
            else:
                fr += [fr_prep] + pobj.fr
        return en, fr

    def clause(self) -> tuple[list[str], list[str]]:
        r = self.rng
        if r.random() < 0.45:
            en_s, fr_s, person, third = r.choice(PRONOUNS)
            subj_en, subj_fr = [en_s], [fr_s]
        else:
            subj = self.noun_phrase()
            subj_en, subj_fr = subj.en, subj.fr
            person, third = (5, False) if subj.plural else (2, True)
        vp_en, vp_fr = self.verb_phrase(person, third, 0)
        if subj_fr == ["je"]:
            subj_fr = [_elide("je", vp_fr[0])]
        return subj_en + vp_en, subj_fr + vp_fr

    def sentence(self) -> tuple[str, str]:
        r = self.rng
        n = r.choices([1, 2, 3, 4], [0.4, 0.3, 0.18, 0.12])[0]
        en, fr = self.clause()
        for _ in range(n - 1):
            conj = r.choice(["and", "but"])
            c_en, c_fr = self.clause()
            en += [conj] + c_en
            fr += [{"and": "et", "but": "mais"}[conj]] + c_fr
        en_text = _join(en) + "."
        fr_text = _join(fr) + "."
        return en_text[0].upper() + en_text[1:], fr_text[0].upper() + fr_text[1:]


def _contract(prep: str, np_: NP) -> list[str]:
    """à/de + article: au, aux, du, des; à la, à l', de la, de l'; d' before a vowel."""
    fr = np_.fr
    if np_.det == "def":
        art = fr[0]
        if art == "le":
            return [{"à": "au", "de": "du"}[prep]] + fr[1:]
        if art == "les":
            return [{"à": "aux", "de": "des"}[prep]] + fr[1:]
        return [prep] + fr
    if prep == "de" and fr[0] == "des":  # de + des -> de
        return ["de"] + fr[1:]
    return [_elide(prep, fr[0])] + fr


# language pair -> (target file suffix, grammar); a grammar's .sentence() gives (English, target)
PAIRS = {"en-fr": ("fr", Grammar), "en-de": ("de", GermanGrammar)}


def target_language(pair: str) -> str:
    """The target file suffix of a built-in ``pair``: "fr" or "de"."""
    return PAIRS[pair][0]


def generate_pairs(n: int, seed: int, pair: str = "en-fr") -> list[tuple[str, str]]:
    """``n`` (English, target) sentence pairs, a deterministic function of ``seed``."""
    g = PAIRS[pair][1](random.Random(seed))
    return [g.sentence() for _ in range(n)]


def builtin_corpus(cache_dir: str | Path, seed: int = 1234, n_train: int = 50000,
                   n_dev: int = 500, n_test: int = 1000, pair: str = "en-fr") -> dict[str, Path]:
    """Write (once) and return the paths of train/dev/test .en/.fr (or .de) in
    ``cache_dir/builtin-v1-seed<seed>-<n_train>`` (en-de: ``builtin-en-de-v1-...``); dev and test
    hold no sentence of train."""
    tgt = target_language(pair)
    name = "builtin" if pair == "en-fr" else f"builtin-{pair}"
    out = Path(cache_dir) / f"{name}-v1-seed{seed}-{n_train}"
    names = [f"{split}.{lang}" for split in ("train", "dev", "test") for lang in ("en", tgt)]
    paths = {name: out / name for name in names}
    if all(p.exists() for p in paths.values()):
        return paths
    make_dir(out)
    g = PAIRS[pair][1](random.Random(seed))
    train = [g.sentence() for _ in range(n_train)]
    seen = {en for en, _ in train}
    held: list[tuple[str, str]] = []
    while len(held) < n_dev + n_test:
        en, fr = g.sentence()
        if en not in seen:
            seen.add(en)
            held.append((en, fr))
    splits = {"train": train, "dev": held[:n_dev], "test": held[n_dev:]}
    for name in names:  # each file atomically; a corpus counts as there once all six are
        split, lang = name.split(".")
        text = "\n".join(p[0 if lang == "en" else 1] for p in splits[split]) + "\n"
        write_atomic(paths[name], text.encode("utf-8"))
    return paths


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m minirnnsearch.data.corpus",
                                 description="Write a built-in corpus and print its statistics.")
    ap.add_argument("outdir")
    ap.add_argument("--pair", default="en-fr", choices=tuple(PAIRS))
    return ap


@reports_os_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = builtin_corpus(args.outdir, pair=args.pair)
    for p in paths.values():
        lines = read_lines(p)
        lengths = sorted(len(line.split()) for line in lines)
        words = {w for line in lines for w in line.split()}
        print(f"{p}: {len(lengths)} sentences, words min {lengths[0]} median "
              f"{lengths[len(lengths) // 2]} max {lengths[-1]}, "
              f"{sum(n > 30 for n in lengths) / len(lengths):.1%} over 30, "
              f"{len(words)} distinct words")
    tgt = target_language(args.pair)
    pairs = list(zip(read_lines(paths["train.en"]), read_lines(paths[f"train.{tgt}"]),
                     strict=True))
    # counted back from the training text
    stats = (phenomena(pairs) if args.pair == "en-de" else
             move_statistics(pairs, en_verb=EN_VERB, tgt_verb=FR_VERB, prefix_verb={}))
    print("train phenomena: " + ", ".join(f"{k} {v:.3g}" for k, v in stats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
