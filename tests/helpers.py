"""Shared test helpers."""

from pathlib import Path

from minirnnsearch.data.corpus import generate_pairs


def small_corpus(d: Path, n: int, max_words: int, n_dev: int, seed: int) -> Path:
    """train.en/fr and dev.en/fr in ``d`` from the built-in grammar, sentences of at most
    ``max_words`` English words, the last ``n_dev`` for dev. Returns ``d``."""
    pairs = [p for p in generate_pairs(n, seed=seed) if len(p[0].split()) <= max_words]
    for name, part in (("train", pairs[:-n_dev]), ("dev", pairs[-n_dev:])):
        (d / f"{name}.en").write_text("\n".join(e for e, _ in part) + "\n", encoding="utf-8")
        (d / f"{name}.fr").write_text("\n".join(f for _, f in part) + "\n", encoding="utf-8")
    return d
