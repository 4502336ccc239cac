"""The built-in English->French corpus."""

import random
import re

import numpy as np

from minirnnsearch.data.corpus import NOUNS, Grammar, build_np, builtin_corpus, generate_pairs
from minirnnsearch.data.tokenize import detokenize, tokenize


def test_generator_is_deterministic():
    assert generate_pairs(50, seed=3) == generate_pairs(50, seed=3)
    assert generate_pairs(50, seed=3) != generate_pairs(50, seed=4)


def test_lengths_spread_from_short_to_long():
    lengths = np.array([len(en.split()) for en, _ in generate_pairs(5000, seed=1)])
    assert lengths.min() <= 5 and lengths.max() >= 45
    assert 0.05 < (lengths > 30).mean() < 0.4
    assert (lengths <= 10).mean() > 0.3


def test_translation_is_a_function_of_the_source():
    pairs = generate_pairs(20000, seed=2)
    seen = {}
    for en, fr in pairs:
        assert seen.setdefault(en, fr) == fr


NOUN = {n.en: n for n in NOUNS}


def test_noun_phrases_agree_and_put_adjectives_after_the_noun():
    def np_(*args):
        p = build_np(*args)
        return " ".join(p.en), " ".join(p.fr)
    assert np_("the", ["European", "economic"], NOUN["area"], False) == (
        "the European economic area", "la zone économique européenne")  # the paper's Fig. 3
    assert np_("the", ["green"], NOUN["house"], True) == ("the green houses",
                                                          "les maisons vertes")
    assert np_("a", ["white"], NOUN["horse"], False) == ("a white horse", "un cheval blanc")
    assert np_("this", [], NOUN["tree"], False) == ("this tree", "cet arbre")
    assert np_("my", [], NOUN["school"], False) == ("my school", "mon école")
    assert np_("the", [], NOUN["man"], False) == ("the man", "l' homme")
    assert np_("num", ["national"], NOUN["newspaper"], False, 1) == (
        "three national newspapers", "trois journaux nationaux")


def _starting(pairs, prefix):
    return _where(pairs, "^" + re.escape(prefix))


def _where(pairs, pattern):
    """The French sides of the pairs whose English side matches ``pattern``: at least one, so
    that an ``all(...)`` over them cannot be vacuously true."""
    found = [f for e, f in pairs if re.search(pattern, e)]
    assert found, pattern  # the sample is large enough to hold it
    return found


def test_pronouns_move_before_the_verb_and_negation_wraps_them():
    pairs = generate_pairs(60000, seed=5)
    assert all(f.startswith("Nous les voyons") for f in _starting(pairs, "We see them"))
    assert all(f.startswith("Je le vois") for f in _starting(pairs, "I see it"))
    assert all(f.startswith("Je l'aime") for f in _starting(pairs, "I like it"))
    assert all(f.startswith("Je ne ") and " vois pas" in f
               for f in _starting(pairs, "I do not see"))
    assert all(" au marché" in f for f in _where(pairs, r" to the market\b"))
    assert all(" des professeurs" in f for f in _where(pairs, r" of the teachers"))


def test_noun_phrase_agreement_directly():
    g = Grammar(random.Random(0))
    seen = set()
    for _ in range(2000):
        np_ = g.noun_phrase(depth=1, allow_rel=False)
        if np_.en[0] == "the" and len(np_.en) == 2:
            art = np_.fr[0]
            assert art in ("le", "la", "l'", "les")
            assert (art == "les") == np_.plural
            if art in ("le", "la"):
                assert (art == "la") == np_.fem
            seen.add(art)
    assert seen == {"le", "la", "l'", "les"}  # every branch checked


def test_text_survives_tokenisation():
    for en, fr in generate_pairs(300, seed=9):
        assert detokenize(tokenize(fr)) == fr and detokenize(tokenize(en)) == en


def test_builtin_corpus_files_cached_and_disjoint(tmp_path):
    paths = builtin_corpus(tmp_path, seed=7, n_train=2000, n_dev=50, n_test=100)
    lines = {k: p.read_text(encoding="utf-8").splitlines() for k, p in paths.items()}
    assert len(lines["train.en"]) == len(lines["train.fr"]) == 2000
    assert len(lines["dev.en"]) == 50 and len(lines["test.fr"]) == 100
    assert not set(lines["dev.en"]) & set(lines["train.en"])
    assert not set(lines["test.en"]) & set(lines["train.en"])
    mtime = paths["train.en"].stat().st_mtime_ns
    assert builtin_corpus(tmp_path, seed=7, n_train=2000, n_dev=50, n_test=100) == paths
    assert paths["train.en"].stat().st_mtime_ns == mtime  # reused, not rewritten
