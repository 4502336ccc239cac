"""The whole model against the naive reference of tests/reference.py (the paper's equations,
one sentence at a time, loops): the loss of a padded batch, float64, random weights large
enough that every term counts, every variant, and with dropout masks where the model has them.
The model's own gradient checks cannot catch an equation that is wrong the same way in its
forward and backward; this can."""

import numpy as np
import pytest
import reference

from minirnnsearch import model
from minirnnsearch.backend import get_backend
from minirnnsearch.data.batching import make_batch

VARIANTS = ("rnnsearch", "encdec", "diagonal", "cursors")
WITH_DROPOUT = tuple(v for v in VARIANTS if model.supports_dropout(v))

# three sentences of unequal lengths, so both sides are padded (S, T at most 6 with </s>); the
# third target is </s> alone
SRC = [[4, 9, 5, 10, 7], [8], [6, 4, 10]]
TGT = [[5, 12], [7, 4, 11, 6, 9], []]


def problem(variant, seed=0):
    """Sizes all different (E 4, H 5, A 6, L 3, Vx 11, Vy 13), so that a matrix used in the
    wrong place cannot fit; every parameter N(0, 0.7^2), biases and v_a included (the paper's
    initialisation leaves v_a and the biases zero and the output near-uniform)."""
    cfg = model.Config(src_vocab=11, tgt_vocab=13, variant=variant, emb=4, hidden=5, align=6,
                       maxout=3)
    rng = np.random.default_rng(seed)
    return cfg, {k: rng.normal(0.0, 0.7, s) for k, s in model.param_shapes(cfg).items()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_loss_equals_the_naive_reference(variant):
    cfg, params = problem(variant)
    batch = make_batch(SRC, TGT)
    assert np.any(batch.src_mask == 0) and np.any(batch.tgt_mask == 0)
    want = reference.loss(params, variant, SRC, TGT)
    assert abs(want - np.log(cfg.tgt_vocab)) > 0.1  # far from the uniform output
    assert float(model.loss(params, cfg, batch)) == pytest.approx(want, rel=1e-12, abs=0)


def test_the_reference_refuses_a_variant_it_does_not_write():
    """A name it does not know raises, rather than falling through to the soft search."""
    params = problem("rnnsearch")[1]
    with pytest.raises(ValueError, match="'luong'"):
        reference.loss(params, "luong", SRC, TGT)


@pytest.mark.parametrize("variant", WITH_DROPOUT)
def test_loss_with_dropout_masks_equals_the_reference(variant):
    """Each mask where the model's docstring puts it (the reference drops s_i and c_i only on
    their way into the deep output, never in the recurrence), one row per sentence."""
    cfg, params = problem(variant, seed=1)
    masks = model.dropout_masks(cfg, len(SRC), 0.3, np.random.default_rng(2), get_backend("cpu"),
                                "float64")
    for m in masks:
        assert set(np.unique(m)) == {0.0, 1.0 / 0.7}
    by_name = dict(zip(model.Masks._fields, masks, strict=True))
    assert set(by_name) == set(reference.MASK_NAMES)
    want = reference.loss(params, variant, SRC, TGT, by_name)
    assert want != pytest.approx(reference.loss(params, variant, SRC, TGT), rel=1e-3)
    got = float(model.loss(params, cfg, make_batch(SRC, TGT), masks))
    assert got == pytest.approx(want, rel=1e-12, abs=0)
