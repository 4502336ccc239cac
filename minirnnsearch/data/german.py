"""The built-in English->German corpus: a seeded grammar whose word order drifts far.

French follows English order almost word for word; German does not. The design below was
written before any model was trained on this corpus, and is not tuned to make any model win.

Phenomena, and the rate at which the generator chooses each (``RATES``; the tests count them
back from the generated text, see ``phenomena``):
- tense of every verb phrase: present 0.4, perfect 0.3 ("I have seen the old house of my
  friend" -> "Ich habe das alte Haus meines Freundes gesehen": the participle goes to the
  clause end), modal 0.3 (can, must, want to, will: the infinitive goes to the clause end);
- separable verbs, 6 of the 21 verbs (anrufen, einladen, abholen, zurückbringen, wegwerfen,
  vorstellen): in a main clause in the present the prefix goes to the clause end ("He calls my
  friend today" -> "Er ruft heute meinen Freund an" is not generated; "He calls my friend" ->
  "Er ruft meinen Freund an"), in a subordinate clause it is joined again ("..., weil er meinen
  Freund anruft");
- subordinate clauses with the finite verb last: 0.3 of plain main clauses take one (because
  -> weil, although -> obwohl, if -> wenn), and 0.1 of main clauses are "X says/thinks/hopes
  that ..." -> "X sagt/glaubt/hofft, dass ..."; every subordinate clause has its own tense, so
  "..., weil er das Haus gesehen hat" moves both verbs behind the object;
- verb-second after a fronted adverbial: 0.25 of plain main clauses start with an adverb
  ("Today he sees ..." -> "Heute sieht er ...", "of course" -> "natürlich") or, a third of
  those, a prepositional phrase ("In the garden he sees ..." -> "Im Garten sieht er ...");
  an object pronoun then goes before a noun subject ("Heute sieht ihn der Mann");
- compounds: 0.25 of nouns are two or three English words that are one German word ("the
  train station clock" -> "die Bahnhofsuhr");
- gender (der/die/das) and case (nominative subject, accusative object, dative or accusative
  after prepositions, genitive for "of": "des Hauses meines Freundes") on articles, "dieser",
  "mein", "kein" and adjectives (weak, mixed and strong endings); in -> im, zu -> zum/zur,
  von -> vom before "dem"/"der";
- negation: 0.15 of verb phrases; "not a" -> "kein" ("I do not see a dog" -> "Ich sehe keinen
  Hund"), otherwise "nicht" at the end of the middle field, before the participle, infinitive
  or prefix;
- object pronouns 0.25 of objects ("it" -> "es", "him" -> "ihn", ...), relative clauses on 0.15
  of subject and object noun phrases ("der Mann, der den Hund sieht,"), "of" phrases on 0.2 of
  noun phrases, a prepositional phrase in 0.3 of verb phrases, 1 to 4 main clauses joined by
  "and" -> "und" or "but" -> ", aber" (weights 0.4, 0.3, 0.18, 0.12, as for French).

Sentences have 3 to 65 English words (longer or shorter draws are drawn again). Every verb
lemma occurs at most once in a sentence, so each German verb has exactly one English
counterpart and ``verb_moves`` can measure from the text alone how far each verb moved.
Every English sentence has exactly one German translation.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field

from .tokenize import tokenize

MIN_WORDS, MAX_WORDS = 3, 65
NOM, ACC, DAT, GEN = 0, 1, 2, 3
RATES = {  # the design: what the generator chooses, per decision (see the module docstring)
    "perfect": 0.3, "modal": 0.3, "negated": 0.15, "subordinate": 0.3, "that_clause": 0.1,
    "fronted": 0.25, "compound": 0.25, "relative": 0.15, "of": 0.2, "pp": 0.3, "pronoun": 0.25,
}


@dataclass(frozen=True)
class Noun:
    en: tuple[str, ...]
    en_pl: tuple[str, ...]
    de: str
    de_pl: str
    gen_sg: str  # genitive singular ("Hauses"; feminine nouns do not change)
    slot: int  # gender: 0 masculine, 1 feminine, 2 neuter (3 is the plural column below)

    def form(self, case: int, plural: bool) -> str:
        if plural:  # dative plural adds -n unless the plural ends in -n or -s
            dat_n = case == DAT and not self.de_pl.endswith(("n", "s"))
            return self.de_pl + "n" if dat_n else self.de_pl
        return self.gen_sg if case == GEN else self.de


def _nouns(table: str) -> list[Noun]:
    # english, english plural (words joined by _), german, plural, genitive (- = unchanged), m/f/n
    nouns = []
    for entry in table.replace("\n", "|").split("|"):
        if entry.strip():
            en, en_pl, de, de_pl, gen, g = entry.split()
            nouns.append(Noun(tuple(en.split("_")), tuple(en_pl.split("_")), de, de_pl,
                              de if gen == "-" else gen, "mfn".index(g)))
    return nouns


SIMPLE = _nouns("""
    cat cats Katze Katzen - f | dog dogs Hund Hunde Hundes m | house houses Haus Häuser Hauses n
    car cars Auto Autos Autos n | book books Buch Bücher Buches n | city cities Stadt Städte - f
    bank banks Bank Banken - f | tree trees Baum Bäume Baumes m | school schools Schule Schulen - f
    friend friends Freund Freunde Freundes m | table tables Tisch Tische Tisches m
    letter letters Brief Briefe Briefes m | garden gardens Garten Gärten Gartens m
    river rivers Fluss Flüsse Flusses m | bird birds Vogel Vögel Vogels m
    child children Kind Kinder Kindes n | teacher teachers Lehrer Lehrer Lehrers m
    woman women Frau Frauen - f | man men Mann Männer Mannes m | apple apples Apfel Äpfel Apfels m
    door doors Tür Türen - f | window windows Fenster Fenster Fensters n
    train trains Zug Züge Zuges m | country countries Land Länder Landes n
    market markets Markt Märkte Marktes m | government governments Regierung Regierungen - f
    company companies Firma Firmen - f | report reports Bericht Berichte Berichtes m
    street streets Straße Straßen - f | boat boats Boot Boote Bootes n
    horse horses Pferd Pferde Pferdes n | flower flowers Blume Blumen - f
    key keys Schlüssel Schlüssel Schlüssels m | doctor doctors Arzt Ärzte Arztes m
    island islands Insel Inseln - f | newspaper newspapers Zeitung Zeitungen - f
    song songs Lied Lieder Liedes n | bridge bridges Brücke Brücken - f
    village villages Dorf Dörfer Dorfes n | church churches Kirche Kirchen - f
    computer computers Computer Computer Computers m | painting paintings Bild Bilder Bildes n
    shop shops Laden Läden Ladens m | forest forests Wald Wälder Waldes m
    question questions Frage Fragen - f | hotel hotels Hotel Hotels Hotels n
    idea ideas Idee Ideen - f
""")
COMPOUNDS = _nouns("""
    train_station train_stations Bahnhof Bahnhöfe Bahnhofs m
    city_hall city_halls Rathaus Rathäuser Rathauses n
    post_office post_offices Postamt Postämter Postamtes n
    apple_tree apple_trees Apfelbaum Apfelbäume Apfelbaumes m
    door_key door_keys Türschlüssel Türschlüssel Türschlüssels m
    kitchen_table kitchen_tables Küchentisch Küchentische Küchentisches m
    flower_shop flower_shops Blumenladen Blumenläden Blumenladens m
    bus_stop bus_stops Bushaltestelle Bushaltestellen - f
    police_car police_cars Polizeiauto Polizeiautos Polizeiautos n
    bedroom_window bedroom_windows Schlafzimmerfenster Schlafzimmerfenster Schlafzimmerfensters n
    birthday_present birthday_presents Geburtstagsgeschenk Geburtstagsgeschenke
        Geburtstagsgeschenks n
    football_stadium football_stadiums Fußballstadion Fußballstadien Fußballstadions n
    school_bus_driver school_bus_drivers Schulbusfahrer Schulbusfahrer Schulbusfahrers m
    train_station_clock train_station_clocks Bahnhofsuhr Bahnhofsuhren - f
    city_library_card city_library_cards Stadtbibliotheksausweis Stadtbibliotheksausweise
        Stadtbibliotheksausweises m
""".replace("\n        ", " "))
PEOPLE = {("friend",), ("child",), ("teacher",), ("woman",), ("man",), ("doctor",),
          ("school", "bus", "driver")}

ADJECTIVES = {  # english -> german stem (endings are added by declension)
    "red": "rot", "green": "grün", "black": "schwarz", "blue": "blau", "white": "weiß",
    "old": "alt", "new": "neu", "big": "groß", "small": "klein", "European": "europäisch",
    "economic": "wirtschaftlich", "political": "politisch", "French": "französisch",
    "happy": "glücklich", "tired": "müde", "important": "wichtig", "modern": "modern",
    "rich": "reich", "strong": "stark", "quiet": "ruhig", "difficult": "schwierig",
    "famous": "berühmt", "empty": "leer", "beautiful": "schön",
}


def _table(rows: str) -> list[list[str]]:
    """Rows of four columns (masculine, feminine, neuter, plural) for the four cases."""
    return [["" if c == "-" else c for c in row.split()] for row in rows.strip().splitlines()]


DER = _table("der die das die\nden die das die\ndem der dem den\ndes der des der")
DIESER = _table("dieser diese dieses diese\ndiesen diese dieses diese\n"
                "diesem dieser diesem diesen\ndieses dieser dieses dieser")
EIN_ENDINGS = _table("- e - e\nen e - e\nem er em en\nes er es er")  # ein, mein, kein
WEAK = _table("e e e en\nen e e en\nen en en en\nen en en en")  # after der, dieser
MIXED = _table("er e es en\nen e es en\nen en en en\nen en en en")  # after ein, mein, kein
STRONG_PLURAL = ["e", "e", "en", "er"]  # no article (numbers), by case
RELATIVE = ["der", "die", "das", "die"]  # nominative relative pronoun by gender/plural

NUMBERS = dict(pair.split() for pair in """two zwei|three drei|four vier|five fünf|six sechs|
    seven sieben|eight acht|nine neun|ten zehn|eleven elf|twelve zwölf|thirteen dreizehn|
    fourteen vierzehn|fifteen fünfzehn|sixteen sechzehn|seventeen siebzehn|eighteen achtzehn|
    nineteen neunzehn|twenty zwanzig""".split("|"))

# verbs: english base 3sg participle [particle] | german infinitive participle, present ich du er
# ihr (wir and sie are the infinitive without its prefix) [separable prefix]
VERBS_TABLE = """
see sees seen | sehen gesehen sehe siehst sieht seht
love loves loved | lieben geliebt liebe liebst liebt liebt
find finds found | finden gefunden finde findest findet findet
take takes taken | nehmen genommen nehme nimmst nimmt nehmt
know knows known | kennen gekannt kenne kennst kennt kennt
build builds built | bauen gebaut baue baust baut baut
sell sells sold | verkaufen verkauft verkaufe verkaufst verkauft verkauft
buy buys bought | kaufen gekauft kaufe kaufst kauft kauft
watch watches watched | beobachten beobachtet beobachte beobachtest beobachtet beobachtet
open opens opened | öffnen geöffnet öffne öffnest öffnet öffnet
close closes closed | schließen geschlossen schließe schließt schließt schließt
visit visits visited | besuchen besucht besuche besuchst besucht besucht
paint paints painted | malen gemalt male malst malt malt
describe describes described | beschreiben beschrieben beschreibe beschreibst beschreibt beschreibt
need needs needed | brauchen gebraucht brauche brauchst braucht braucht
call calls called | anrufen angerufen rufe rufst ruft ruft an
invite invites invited | einladen eingeladen lade lädst lädt ladet ein
pick picks picked up | abholen abgeholt hole holst holt holt ab
bring brings brought back | zurückbringen zurückgebracht bringe bringst bringt bringt zurück
throw throws thrown away | wegwerfen weggeworfen werfe wirfst wirft werft weg
introduce introduces introduced | vorstellen vorgestellt stelle stellst stellt stellt vor
"""


@dataclass(frozen=True)
class Verb:
    en: tuple[str, str, str]  # base, 3rd person singular, participle
    particle: str  # english "up", "back", "away" or ""
    infinitive: str
    participle: str
    present: tuple[str, ...]  # ich du er wir ihr sie (without the separable prefix)
    prefix: str  # the separable prefix or ""


def _verbs() -> list[Verb]:
    verbs = []
    for row in VERBS_TABLE.strip().splitlines():
        en, de = (side.split() for side in row.split("|"))
        prefix = de[6] if len(de) > 6 else ""
        plural = de[0][len(prefix):]  # wir, sie
        verbs.append(Verb((en[0], en[1], en[2]), en[3] if len(en) > 3 else "", de[0], de[1],
                          (*de[2:5], plural, de[5], plural), prefix))
    return verbs


VERBS = _verbs()
SAY_VERBS = {  # "X says that ...": english base -> (3sg, german present forms)
    "say": ("says", "sage sagst sagt sagen sagt sagen"),
    "think": ("thinks", "glaube glaubst glaubt glauben glaubt glauben"),
    "hope": ("hopes", "hoffe hoffst hofft hoffen hofft hoffen"),
}
HABEN = ("habe", "hast", "hat", "haben", "habt", "haben")
MODALS = {  # english (affirmative, negated or None) -> german present forms
    "can": ("can", "cannot", "kann kannst kann können könnt können"),
    "must": ("must", None, "muss musst muss müssen müsst müssen"),
    "will": ("will", "will not", "werde wirst wird werden werdet werden"),
    "want": ("want to", "not want to", "will willst will wollen wollt wollen"),
}
# subject pronouns: english, german, person (0 ich .. 5 sie), english 3rd singular?
PRONOUNS = [("I", "ich", 0, False), ("you", "du", 1, False), ("he", "er", 2, True),
            ("she", "sie", 2, True), ("we", "wir", 3, False), ("they", "sie", 5, False)]
OBJECT_PRONOUNS = {"it": "es", "him": "ihn", "her": "sie", "them": "sie", "me": "mich",
                   "us": "uns"}
# prepositions: english -> (german, case)
PREPOSITIONS = {"in": ("in", DAT), "on": ("auf", DAT), "under": ("unter", DAT),
                "with": ("mit", DAT), "for": ("für", ACC), "to": ("zu", DAT),
                "from": ("von", DAT), "behind": ("hinter", DAT), "without": ("ohne", ACC),
                "next to": ("neben", DAT)}
CONTRACTIONS = {("in", "dem"): "im", ("zu", "dem"): "zum", ("zu", "der"): "zur",
                ("von", "dem"): "vom"}
ADVERBS = {"today": "heute", "now": "jetzt", "often": "oft", "sometimes": "manchmal",
           "unfortunately": "leider", "of course": "natürlich", "in the morning": "morgens",
           "in the evening": "abends", "every day": "jeden Tag"}
SUBORDINATORS = {"because": "weil", "although": "obwohl", "if": "wenn"}


ADJECTIVE_NAMES, NUMBER_NAMES = sorted(ADJECTIVES), sorted(NUMBERS)
_KIND_WEIGHTS = {"the": 0.5, "a": 0.2, "this": 0.1, "my": 0.1, "num": 0.1}
# (plural, negated) -> determiner kinds and weights: "a" only singular, numbers only plural and
# not under negation ("not two dogs" has no one translation)
KINDS = {}
for _pl in (False, True):
    for _neg in (False, True):
        _ks = ["the", "this", "my"] + (["a"] if not _pl else [] if _neg else ["num"])
        KINDS[_pl, _neg] = (_ks, [_KIND_WEIGHTS[k] for k in _ks])


def _inflect(stem: str, ending: str) -> str:
    return stem + ending[1:] if stem.endswith("e") and ending else stem + ending


@dataclass
class NP:
    """A noun phrase: English words, and German words for any case."""

    kind: str  # "the", "a", "this", "my", "num"
    adjs: list[str]
    noun: Noun
    plural: bool
    number: str = ""
    of_en: list[str] = field(default_factory=list)
    of_de: list[str] = field(default_factory=list)  # genitive or von + dative, fixed
    rel_en: list[str] = field(default_factory=list)
    rel_de: list[str] = field(default_factory=list)  # ", der ... sieht ,", fixed

    @property
    def slot(self) -> int:
        return 3 if self.plural else self.noun.slot

    @property
    def en(self) -> list[str]:
        core = self.adjs + list(self.noun.en_pl if self.plural else self.noun.en)
        if self.kind == "the":
            det = ["the"]
        elif self.kind == "a":
            det = ["an" if core[0][0] in "aeiou" else "a"]
        elif self.kind == "this":
            det = ["these" if self.plural else "this"]
        elif self.kind == "my":
            det = ["my"]
        else:
            det = [self.number]
        return det + core + self.of_en + self.rel_en

    def de(self, case: int, negated: bool = False) -> list[str]:
        """The German words in ``case``; ``negated``: "a" becomes "kein"."""
        s = self.slot
        if self.kind in ("the", "this"):
            det = (DER if self.kind == "the" else DIESER)[case][s]
            endings = WEAK[case][s]
        elif self.kind == "num":
            det, endings = NUMBERS[self.number], STRONG_PLURAL[case]
        else:
            stem = "mein" if self.kind == "my" else "kein" if negated else "ein"
            det, endings = stem + EIN_ENDINGS[case][s], MIXED[case][s]
        adjs = [_inflect(ADJECTIVES[a], endings) for a in self.adjs]
        return [det] + adjs + [self.noun.form(case, self.plural)] + self.of_de + self.rel_de


class _Retry(Exception):
    """This draw ran out of unused verbs; draw the sentence again."""


@dataclass
class Predicate:
    """A verb phrase, English and the German parts that word order places."""

    en: list[str]
    finite: str  # the finite verb of a main clause (second position)
    middle: list[str]  # object, prepositional phrase, nicht
    right: list[str]  # main clause end: participle, infinitive or separable prefix
    sub_tail: list[str]  # subordinate clause end: ... participle/infinitive + finite verb
    pronoun: bool  # the object is a pronoun (the first word of the middle field)


class GermanGrammar:
    """Random English sentences and their German translations; one instance per seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.unused: list[Verb] = []  # verbs not yet in this sentence
        self.unused_say: list[str] = []

    def noun_phrase(self, depth: int = 0, negated: bool = False, allow_rel: bool = True) -> NP:
        r = self.rng
        noun = r.choice(COMPOUNDS if r.random() < RATES["compound"] else SIMPLE)
        plural = r.random() < 0.35
        kinds, weights = KINDS[plural, negated]
        kind = r.choices(kinds, weights)[0]
        adjs = r.sample(ADJECTIVE_NAMES, r.choices([0, 1, 2], [0.5, 0.35, 0.15])[0])
        np_ = NP(kind, adjs, noun, plural, r.choice(NUMBER_NAMES))
        if depth < 1 and r.random() < RATES["of"]:  # "the book of the teacher"
            of = self.noun_phrase(depth + 1, allow_rel=False)
            np_.of_en = ["of"] + of.en
            np_.of_de = (["von"] + of.de(DAT)) if of.kind == "num" else of.de(GEN)
        if allow_rel and depth < 1 and r.random() < RATES["relative"]:  # "the man who sees"
            person, third = (5, False) if plural else (2, True)
            pred = self.predicate(person, third, depth + 1)
            np_.rel_en = ["who" if noun.en in PEOPLE else "that"] + pred.en
            np_.rel_de = [",", RELATIVE[np_.slot]] + pred.middle + pred.sub_tail + [","]
        return np_

    def prepositional_phrase(self, depth: int) -> tuple[list[str], list[str]]:
        prep = self.rng.choice(sorted(PREPOSITIONS))
        pobj = self.noun_phrase(depth + 1, allow_rel=False)
        de_prep, case = PREPOSITIONS[prep]
        words = pobj.de(case)
        short = CONTRACTIONS.get((de_prep, words[0])) if pobj.kind == "the" else None
        de = [short] + words[1:] if short else [de_prep] + words
        return prep.split() + pobj.en, de

    def _verb(self) -> Verb:
        if not self.unused:
            raise _Retry
        return self.unused.pop(self.rng.randrange(len(self.unused)))

    def predicate(self, person: int, third_sg: bool, depth: int) -> Predicate:
        """Verb, object and maybe a prepositional phrase, agreeing with ``person``."""
        r = self.rng
        verb = self._verb()
        tense = r.choices(["present", "perfect", "modal"],
                          [1 - RATES["perfect"] - RATES["modal"], RATES["perfect"],
                           RATES["modal"]])[0]
        negate = r.random() < RATES["negated"]
        modal = r.choice(["can", "will", "want"] if negate else sorted(MODALS))
        pronoun = r.random() < RATES["pronoun"]
        if pronoun:
            obj_en = r.choice(sorted(OBJECT_PRONOUNS))
            obj_de, kein = [OBJECT_PRONOUNS[obj_en]], False
            obj_en_words = [obj_en, verb.particle] if verb.particle else [obj_en]
        else:
            obj = self.noun_phrase(depth, negated=negate)
            kein = negate and obj.kind == "a"
            obj_de = obj.de(ACC, negated=kein)
            obj_en_words = ([verb.particle] if verb.particle else []) + obj.en
        do = "does" if third_sg else "do"
        if tense == "present":
            en = [do, "not", verb.en[0]] if negate else [verb.en[1] if third_sg else verb.en[0]]
            finite = verb.present[person]
            right = [verb.prefix] if verb.prefix else []
            sub_tail = [verb.prefix + finite]
        elif tense == "perfect":
            en = ["has" if third_sg else "have"] + (["not"] if negate else []) + [verb.en[2]]
            finite, right = HABEN[person], [verb.participle]
            sub_tail = right + [finite]
        else:
            yes, no, forms = MODALS[modal]
            words = (no if negate else yes).split()
            if modal == "want":  # "does not want to", "wants to"
                words = [do] + words if negate else ["wants" if third_sg else "want", "to"]
            en = words + [verb.en[0]]
            finite, right = forms.split()[person], [verb.infinitive]
            sub_tail = right + [finite]
        en += obj_en_words
        middle = obj_de
        if depth < 2 and r.random() < RATES["pp"]:
            pp_en, pp_de = self.prepositional_phrase(depth)
            en += pp_en
            middle = middle + pp_de
        if negate and not kein:
            middle = middle + ["nicht"]
        return Predicate(en, finite, middle, right, sub_tail, pronoun)

    def subject(self) -> tuple[list[str], list[str], int, bool, bool]:
        """English words, German words (nominative), person, English 3rd singular, pronoun?"""
        if self.rng.random() < 0.45:
            en, de, person, third = self.rng.choice(PRONOUNS)
            return [en], [de], person, third, True
        np_ = self.noun_phrase()
        return np_.en, np_.de(NOM), 5 if np_.plural else 2, not np_.plural, False

    def subordinate(self) -> tuple[list[str], list[str]]:
        """A clause with the finite verb last, without its conjunction."""
        subj_en, subj_de, person, third, _ = self.subject()
        pred = self.predicate(person, third, 0)
        return subj_en + pred.en, subj_de + pred.middle + pred.sub_tail

    def main_clause(self) -> tuple[list[str], list[str]]:
        r = self.rng
        subj_en, subj_de, person, third, subj_pronoun = self.subject()
        if self.unused_say and r.random() < RATES["that_clause"]:  # "he says that ..."
            say = self.unused_say.pop(r.randrange(len(self.unused_say)))
            en_3sg, forms = SAY_VERBS[say]
            sub_en, sub_de = self.subordinate()
            return (subj_en + [en_3sg if third else say, "that"] + sub_en,
                    subj_de + [forms.split()[person], ",", "dass"] + sub_de + [","])
        pred = self.predicate(person, third, 0)
        front_en, front_de = [], []
        if r.random() < RATES["fronted"]:  # a third of them prepositional phrases
            if r.random() < 1 / 3:
                front_en, front_de = self.prepositional_phrase(0)
            else:
                adverb = r.choice(sorted(ADVERBS))
                front_en, front_de = adverb.split(), ADVERBS[adverb].split()
        en = front_en + subj_en + pred.en
        if not front_de:
            de = subj_de + [pred.finite] + pred.middle + pred.right
        elif pred.pronoun and not subj_pronoun:  # "Heute sieht ihn der Mann"
            de = (front_de + [pred.finite] + pred.middle[:1] + subj_de + pred.middle[1:]
                  + pred.right)
        else:
            de = front_de + [pred.finite] + subj_de + pred.middle + pred.right
        if r.random() < RATES["subordinate"]:
            conj = r.choice(sorted(SUBORDINATORS))
            sub_en, sub_de = self.subordinate()
            en += [conj] + sub_en
            de += [",", SUBORDINATORS[conj]] + sub_de + [","]  # closed before "und"
        return en, de

    def _draw(self) -> tuple[list[str], list[str]]:
        r = self.rng
        self.unused, self.unused_say = list(VERBS), sorted(SAY_VERBS)
        n = r.choices([1, 2, 3, 4], [0.4, 0.3, 0.18, 0.12])[0]
        en, de = self.main_clause()
        for _ in range(n - 1):
            conj = r.choice(["and", "but"])
            c_en, c_de = self.main_clause()
            en += [conj] + c_en
            de += ["und" if conj == "and" else ",", *(["aber"] if conj == "but" else [])] + c_de
        return en, de

    def sentence(self) -> tuple[str, str]:
        """One (English, German) pair of 3 to 65 English words."""
        while True:
            try:
                en, de = self._draw()
            except _Retry:
                continue
            if MIN_WORDS <= len(en) <= MAX_WORDS:
                return _capitalise(" ".join(en) + "."), _capitalise(_join_de(de) + ".")


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:]


def _join_de(words: list[str]) -> str:
    """German words to text: commas glued to the word before; a comma that closes a relative
    or subordinate clause is dropped before another comma or the end of the sentence."""
    out: list[str] = []
    for w in words:
        if w == ",":
            if out and out[-1].endswith(","):
                continue
            out[-1] += ","
        else:
            out.append(w)
    return " ".join(out).rstrip(",")


def _lemma_tables() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """English word -> verb, German word -> verb, separable prefix -> verb; no word is shared
    by two verbs (checked here), which is what makes ``verb_moves`` exact."""
    en: dict[str, str] = {}
    de: dict[str, str] = {}
    forms = [(v.infinitive, v.en, [v.infinitive, v.participle, *v.present,
                                   *(v.prefix + f for f in v.present)]) for v in VERBS]
    forms += [(base, (base, third), f.split()) for base, (third, f) in SAY_VERBS.items()]
    for lemma, en_forms, de_forms in forms:
        for table, words in ((en, en_forms), (de, de_forms)):
            for w in words:
                if table.setdefault(w, lemma) != lemma:
                    raise AssertionError(f"{w} belongs to two verbs")
    return en, de, {v.prefix: v.infinitive for v in VERBS if v.prefix}


EN_VERB, DE_VERB, PREFIX_VERB = _lemma_tables()
CLAUSE_END = {"￭,", "￭.", "und"}  # tokens after a clause-final separable prefix


def verb_moves(en: str, tgt: str, en_verb: dict[str, str] = EN_VERB,
               tgt_verb: dict[str, str] = DE_VERB,
               prefix_verb: dict[str, str] = PREFIX_VERB) -> list[int]:
    """For each target verb word of a generated pair (finite, participle, infinitive, separable
    prefix at the clause end), |its token position - its English verb's token position|: how
    far from it two cursors moving in step would be. Counted from the text alone: the tables
    map words to their verb; the k-th target word of a verb is matched with the k-th English
    word of that verb (German uses each verb once a sentence; French keeps the clause order),
    a prefix with the English word of the verb it belongs to."""
    en_pos: dict[str, list[int]] = {}
    for i, t in enumerate(tokenize(en)):
        if t in en_verb:
            en_pos.setdefault(en_verb[t], []).append(i)
    toks = tokenize(tgt) + [""]
    matched: dict[str, int] = {}  # verb -> how many of its words were matched so far
    moves = []
    for j, t in enumerate(toks[:-1]):
        if t in tgt_verb:
            lemma = tgt_verb[t]
            matched[lemma] = matched.get(lemma, 0) + 1
        elif t in prefix_verb and toks[j + 1] in CLAUSE_END:
            lemma = prefix_verb[t]
        else:
            continue
        moves.append(abs(j - en_pos[lemma][matched[lemma] - 1]))
    return moves


def move_statistics(pairs: list[tuple[str, str]], **tables: dict[str, str]) -> dict[str, float]:
    """``verb_moves`` over ``pairs`` (``tables`` as there): moved_5, the share of sentences with
    a verb moved 5 or more tokens; moved_5_verbs, the share of verb words; move_median and
    move_mean over verb words."""
    per_sentence = [verb_moves(en, tgt, **tables) for en, tgt in pairs]
    moves = [m for ms in per_sentence for m in ms]
    return {"moved_5": sum(max(ms, default=0) >= 5 for ms in per_sentence) / len(pairs),
            "moved_5_verbs": sum(m >= 5 for m in moves) / len(moves),
            "move_median": statistics.median(moves), "move_mean": statistics.fmean(moves)}


NOUN_FORMS = {n.form(c, p): n in COMPOUNDS for n in SIMPLE + COMPOUNDS
              for c in (NOM, DAT, GEN) for p in (False, True)}
FRONT_WORDS = {w.split()[0] for w in ADVERBS.values()} | {"im", "zum", "zur", "vom"} | {
    p for p, _ in PREPOSITIONS.values()}
MODAL_WORDS = {"can", "cannot", "must", "will", "to"}


def phenomena(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """The phenomena counted back from generated text. Rates per decision, comparable with
    ``RATES``: perfect, modal, negated, pronoun (per verb phrase), separable (per verb phrase;
    6 of 21 verbs), compound (per noun), subordinate and fronted (per main clause that is not
    "X says that"), that_clause (per main clause). Per sentence: with_subordinate,
    with_relative, with_compound, moved_5 (a verb moved 5 or more tokens); per verb: move_median,
    move_mean, moved_5_verbs; and the English words per sentence (words_median, words_max)."""
    n = dict.fromkeys(["verbs", "perfect", "modal", "negated", "pronoun", "separable", "nouns",
                       "compound", "mains", "that_clause", "subordinate", "fronted",
                       "with_subordinate", "with_relative", "with_compound"], 0)
    words: list[int] = []
    separable = {v.infinitive for v in VERBS if v.prefix}
    for en, de in pairs:
        words.append(len(en.split()))
        et = tokenize(en)
        for i, t in enumerate(et):
            lemma = EN_VERB.get(t)
            if lemma is None or lemma in SAY_VERBS:
                continue
            n["verbs"] += 1
            n["perfect"] += t == next(v for v in VERBS if v.infinitive == lemma).en[2]
            n["modal"] += et[i - 1] in MODAL_WORDS or et[i - 2 : i] == ["will", "not"]
            n["separable"] += lemma in separable
        n["negated"] += sum(t in ("not", "cannot") for t in et)
        n["pronoun"] += sum(t in OBJECT_PRONOUNS for t in et)
        dt = tokenize(de)
        nouns = [NOUN_FORMS[t] for t in dt if t in NOUN_FORMS]
        n["nouns"] += len(nouns)
        n["compound"] += sum(nouns)
        n["with_compound"] += any(nouns)
        starts = [0] + [k + 1 for k, t in enumerate(dt) if t in ("und", "aber")]
        n["mains"] += len(starts)
        n["that_clause"] += dt.count("dass")
        n["fronted"] += sum(dt[k].lower() in FRONT_WORDS for k in starts)
        subs = sum(t in SUBORDINATORS.values() for t in dt)
        n["subordinate"] += subs
        n["with_subordinate"] += bool(subs) or "dass" in dt
        n["with_relative"] += any(a == "￭," and b in RELATIVE
                                  for a, b in zip(dt, dt[1:], strict=False))
    plain = n["mains"] - n["that_clause"]
    rates = {k: n[k] / n["verbs"] for k in ("perfect", "modal", "negated", "pronoun",
                                             "separable")}
    rates |= {"compound": n["compound"] / n["nouns"], "that_clause": n["that_clause"] / n["mains"],
              "subordinate": n["subordinate"] / plain, "fronted": n["fronted"] / plain}
    rates |= {k: n[k] / len(pairs) for k in ("with_subordinate", "with_relative",
                                              "with_compound")}
    rates |= move_statistics(pairs)
    rates |= {"words_median": statistics.median(words), "words_max": max(words)}
    return rates
