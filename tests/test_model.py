"""The whole model: gradients against finite differences for all three variants, padding
invariance, batch consistency, initialisation, and the same results on array_api_strict."""

import numpy as np
import pytest

from minirnnsearch import config, contexts, deep_output, gradcheck, model
from minirnnsearch.backend import dropout_mask, get_backend, to_host
from minirnnsearch.bench.steps import train_flops
from minirnnsearch.context_model import ContextModel
from minirnnsearch.data.batching import Batch, make_batch


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_whole_model_gradients_match_finite_differences(variant):
    errors = gradcheck.check_model(variant, seed=1)
    assert set(errors) == set(model.param_shapes(gradcheck.tiny_problem(variant)[0]))
    bad = {k: v for k, v in errors.items() if v > 1e-6}
    assert not bad, f"{variant}: {bad}"


def _pad(batch: Batch, extra_src: int, extra_tgt: int) -> Batch:
    def widen(a, n):
        return np.concatenate([a, np.zeros((a.shape[0], n), a.dtype)], axis=1)
    return Batch(widen(batch.src, extra_src), widen(batch.src_mask, extra_src),
                 widen(batch.tgt, extra_tgt), widen(batch.tgt_mask, extra_tgt))


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_padding_changes_no_loss_and_no_gradient(variant):
    cfg, params, batch = gradcheck.tiny_problem(variant)
    loss, grads = model.loss_and_grads(params, cfg, batch)
    loss2, grads2 = model.loss_and_grads(params, cfg, _pad(batch, 3, 2))
    assert float(loss2) == pytest.approx(float(loss), rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_batch_loss_is_token_weighted_mean_of_sentence_losses(variant):
    cfg, params, _ = gradcheck.tiny_problem(variant)
    rng = np.random.default_rng(5)
    src = [list(rng.integers(4, cfg.src_vocab, n)) for n in (6, 1, 3, 4)]
    tgt = [list(rng.integers(4, cfg.tgt_vocab, n)) for n in (3, 5, 1, 2)]
    whole = float(model.loss(params, cfg, make_batch(src, tgt)))
    ntok = np.array([len(t) + 1 for t in tgt])  # + </s>
    each = np.array([float(model.loss(params, cfg, make_batch([s], [t])))
                     for s, t in zip(src, tgt, strict=True)])
    assert whole == pytest.approx(float(np.sum(each * ntok) / ntok.sum()), rel=1e-12)


def test_decoder_step_agrees_with_the_training_forward():
    """Teacher-forced decoder steps give the per-token log-probabilities the loss uses."""
    for variant in model.VARIANTS:
        cfg, params, batch = gradcheck.tiny_problem(variant)
        packed = model.pack_params(params)
        enc, s, _ = model.encode(packed, cfg, batch.src, batch.src_mask)
        B, T = batch.tgt.shape
        y_prev = np.full(B, 2)
        total = 0.0
        for i in range(T):
            logp, s, alpha = model.decoder_step(packed, cfg, enc, y_prev, s, i)
            total -= float(np.sum(logp[np.arange(B), batch.tgt[:, i]] * batch.tgt_mask[:, i]))
            y_prev = batch.tgt[:, i]
            if variant != "encdec":
                np.testing.assert_allclose(alpha.sum(axis=1), 1.0)
                np.testing.assert_array_equal(alpha[batch.src_mask == 0], 0.0)
        assert total / batch.tgt_mask.sum() == pytest.approx(float(model.loss(params, cfg, batch)))


def test_encdec_context_is_last_forward_and_first_backward_state():
    cfg, params, batch = gradcheck.tiny_problem("encdec")
    packed = model.pack_params(params)
    enc, _, _ = model.encode(packed, cfg, batch.src, batch.src_mask)
    H = cfg.hidden
    for b, n in enumerate(batch.src_mask.sum(axis=1).astype(int)):
        np.testing.assert_array_equal(enc.memory[0][b, :H], enc.annotations[b, n - 1, :H])
        np.testing.assert_array_equal(enc.memory[0][b, H:], enc.annotations[b, 0, H:])
    np.testing.assert_array_equal(to_host(enc.lengths), batch.src_mask.sum(axis=1))


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_array_api_strict_device_agrees_with_numpy(variant):
    """One full loss_and_grads and one decoder step on device1 (no NumPy-only call, no implicit
    conversion, no host/device mixing), float32 kept float32, results equal NumPy's."""
    cfg, params64, batch = gradcheck.tiny_problem(variant)
    params = {k: v.astype(np.float32) for k, v in params64.items()}
    sb = get_backend("strict")
    sparams = {k: sb.asarray(v) for k, v in params.items()}
    sbatch = batch.to(sb)
    loss_np, grads_np = model.loss_and_grads(params, cfg, batch)
    loss_s, grads_s = model.loss_and_grads(sparams, cfg, sbatch)
    assert loss_s.device == sb.device and loss_s.dtype == sb.xp.float32
    np.testing.assert_allclose(to_host(loss_s), loss_np, rtol=1e-5)
    for k in params:
        assert grads_s[k].dtype == sb.xp.float32 and grads_np[k].dtype == np.float32, k
        np.testing.assert_allclose(to_host(grads_s[k]), grads_np[k], rtol=1e-4, atol=1e-6)

    outs = []
    for p, bt in ((params, batch), (sparams, sbatch)):
        packed = model.pack_params(p)
        enc, state, _ = model.encode(packed, cfg, bt.src, bt.src_mask)
        for i in range(2):  # two steps: the cursors' state is a tuple after the first
            logp, state, alpha = model.decoder_step(packed, cfg, enc, bt.tgt[:, i], state, i)
        states = list(state) if isinstance(state, tuple) else [state]
        outs.append([None if a is None else to_host(a) for a in (logp, alpha, *states)])
    assert (outs[0][1] is None) == (variant == "encdec")  # encdec has no alignment
    for a, b in zip(*outs, strict=True):
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_initialisation_follows_appendix_b1():
    cfg = model.Config.from_preset("tiny", src_vocab=50, tgt_vocab=60)
    p = model.init_params(cfg, get_backend("cpu"), seed=3)
    assert set(p) == set(model.param_shapes(cfg))
    for name in ("enc_fwd.U", "enc_bwd.U_z", "dec.U_r"):
        np.testing.assert_allclose(p[name].T @ p[name], np.eye(cfg.hidden), atol=1e-5)
    assert np.all(p["v_a"] == 0) and np.all(p["b_o"] == 0) and np.all(p["dec.b_z"] == 0)
    assert 0.0005 < p["U_a"].std() < 0.0015 and 0.005 < p["W_o"].std() < 0.015
    assert all(v.dtype == np.float32 for v in p.values())
    q = model.init_params(cfg, get_backend("cpu"), seed=3)
    assert all(np.array_equal(p[k], q[k]) for k in p)
    assert not np.array_equal(p["W_o"], model.init_params(cfg, get_backend("cpu"), 4)["W_o"])
    assert "W_a" not in model.param_shapes(model.Config(5, 5, variant="encdec"))


@pytest.mark.parametrize("variant", model.VARIANTS)
def test_fan_in_initialisation_is_pytorchs(variant):
    """--init fan-in: N(0, 1) embeddings (nn.Embedding); every matrix (in, out) and v_a/v_stop
    U(-1/sqrt(in), 1/sqrt(in)) (nn.Linear, nn.GRU); zero biases."""
    cfg = model.Config.from_preset("small", src_vocab=500, tgt_vocab=600, variant=variant,
                                   init="fan-in")
    p = model.init_params(cfg, get_backend("cpu"), seed=3)
    for name, v in p.items():
        v = v.astype(np.float64)
        if name in ("E_src", "E_tgt"):
            assert abs(v.mean()) < 0.01 and abs(v.std() - 1.0) < 0.01, name
        elif v.ndim == 2 or name in ("v_a", "v_stop"):
            bound = 1.0 / np.sqrt(v.shape[0])
            assert np.abs(v).max() <= bound * (1 + 1e-6), name
            # uniform on [-b, b]: standard deviation b / sqrt(3)
            assert abs(v.std() / (bound / np.sqrt(3)) - 1.0) < 0.1, name
        else:
            assert np.all(v == 0), name
    paper = model.init_params(model.Config.from_preset("small", src_vocab=500, tgt_vocab=600,
                                                       variant=variant), get_backend("cpu"), 3)
    assert paper["W_o"].std() < 0.02 < p["W_o"].std()


def test_config_rejects_bad_values_and_round_trips():
    with pytest.raises(ValueError, match="variant"):
        model.Config(10, 10, variant="transformer")
    with pytest.raises(ValueError, match="hidden"):
        model.Config(10, 10, hidden=0)
    with pytest.raises(ValueError, match="preset"):
        model.Config.from_preset("huge", src_vocab=1, tgt_vocab=1)
    cfg = model.Config.from_preset("paper", src_vocab=30000, tgt_vocab=30000)
    assert (cfg.emb, cfg.hidden, cfg.align, cfg.maxout) == (620, 1000, 1000, 500)
    assert model.Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="init"):
        model.Config(10, 10, init="xavier")
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("band", "init")}
    assert model.Config.from_dict(old) == cfg  # checkpoints from before band and init


def test_every_variant_a_config_accepts_has_one_family():
    assert tuple(model.FAMILIES) == model.VARIANTS  # the registry, in config.VARIANTS' order


def test_capabilities_are_the_familys():
    """Dropout, label smoothing and a training band are asked of the registry, by a variant's
    name or its Config: the cursors take a band and neither dropout nor label smoothing, the
    context models the reverse."""
    want = {"encdec": (True, True, False), "diagonal": (True, True, False),
            "rnnsearch": (True, True, False),
            "cursors": (False, False, True)}             # (dropout, label smoothing, band)
    for variant in model.VARIANTS:
        cfg = model.Config(10, 10, variant=variant)
        for v in (variant, cfg):
            assert (model.supports_dropout(v), model.supports_label_smoothing(v),
                    model.supports_band(v)) == want[variant]
    cfg, params, batch = gradcheck.tiny_problem("cursors")
    with pytest.raises(ValueError, match="dropout is not implemented"):
        model.loss(params, cfg, batch, _ones(cfg, 3))
    for call in (model.loss, model.loss_and_grads):
        with pytest.raises(ValueError, match="label smoothing is not implemented for the cursors"):
            call(params, cfg, batch, label_smoothing=0.1)


class WideSearch(contexts.SoftSearch):
    """The soft search with an alignment layer 3 wider than cfg.align: a context whose query
    q = W_a s_{i-1} is not cfg.align wide."""

    def param_shapes(self, cfg):
        H, A = cfg.hidden, cfg.align + 3
        return {"W_a": (H, A), "U_a": (2 * H, A), "v_a": (A,)}

    def query_width(self, cfg):
        return cfg.align + 3


def test_a_fifth_variant_is_one_entry_in_the_registry(monkeypatch):
    """A new context registered under a new name trains (its gradients pass the check, the
    backward sized by the context's own query width), and the bench and the capabilities ask
    its family, with no name to add anywhere else."""
    monkeypatch.setattr(config, "VARIANTS", (*config.VARIANTS, "wide"))
    monkeypatch.setitem(model.FAMILIES, "wide", ContextModel(WideSearch()))
    errors = gradcheck.check_model("wide", dropout=0.2)
    assert max(errors.values()) < 1e-6, errors
    cfg = model.Config(10, 10, variant="wide", align=4)
    assert model.param_shapes(cfg)["W_a"] == (cfg.hidden, 7)
    assert model.supports_dropout("wide") and not model.supports_band("wide")
    assert model.supports_label_smoothing("wide")
    assert train_flops(cfg, 2, 3, 4) > train_flops(
        model.Config(10, 10, variant="encdec", align=4), 2, 3, 4)


def test_an_unknown_variant_raises_instead_of_computing_another(monkeypatch):
    """A name the registry lacks (one config.VARIANTS was given without a family) is refused by
    name everywhere a variant is looked up: the model, the capabilities and the FLOP count."""
    monkeypatch.setattr(config, "VARIANTS", (*config.VARIANTS, "luong"))
    cfg, params, batch = gradcheck.tiny_problem("rnnsearch")
    cfg.variant = "luong"
    calls = [lambda: model.family(cfg), lambda: model.family("luong"),
             lambda: model.param_shapes(cfg), lambda: model.loss(params, cfg, batch),
             lambda: model.loss_and_grads(params, cfg, batch),
             lambda: model.supports_dropout("luong"), lambda: model.supports_band(cfg),
             lambda: model.supports_label_smoothing("luong"),
             lambda: train_flops(cfg, 2, 3, 4)]
    for call in calls:
        with pytest.raises(ValueError, match="unknown variant 'luong'"):
            call()


def test_softmax_in_chunks_equals_one_piece(monkeypatch):
    cfg, params, batch = gradcheck.tiny_problem("rnnsearch")
    loss, grads = model.loss_and_grads(params, cfg, batch)
    monkeypatch.setattr(deep_output, "SOFTMAX_CHUNK_ROWS", 2)  # N = 15 rows: 8 chunks, one short
    loss2, grads2 = model.loss_and_grads(params, cfg, batch)
    assert float(loss2) == pytest.approx(float(loss), rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=1e-10, atol=1e-15, err_msg=k)


def test_logit_chunks_cover_each_row_or_position_once():
    """The one chunked output layer: its chunks, by rows or by source positions, in order and
    one short, put together are W_o t + b_o of the whole t."""
    rng = np.random.default_rng(0)
    packed = {"W_o": rng.normal(size=(3, 5)), "b_o": rng.normal(size=5)}
    t = rng.normal(size=(7, 3))
    chunks = list(deep_output.logit_chunks(packed, t, 3))
    assert [(a, z) for a, z, _ in chunks] == [(0, 3), (3, 6), (6, 7)]
    np.testing.assert_allclose(np.concatenate([c for _, _, c in chunks]),
                               t @ packed["W_o"] + packed["b_o"], rtol=1e-14)
    t3 = rng.normal(size=(2, 5, 3))                                       # (B,S,L)
    chunks = list(deep_output.logit_chunks(packed, t3, 2, axis=1))
    assert [c.shape for _, _, c in chunks] == [(2, 2, 5), (2, 2, 5), (2, 1, 5)]
    np.testing.assert_allclose(np.concatenate([c for _, _, c in chunks], axis=1),
                               t3 @ packed["W_o"] + packed["b_o"], rtol=1e-14)


# -- dropout -------------------------------------------------------------------------------------

def _ones(cfg, B, dtype=np.float64):
    return model.Masks(*(np.ones((B, d), dtype) for d in
                         (cfg.emb, cfg.emb, cfg.hidden, 2 * cfg.hidden, cfg.maxout)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_zero_is_exactly_the_undropped_loss(dtype):
    cfg, params, batch = gradcheck.tiny_problem("rnnsearch")
    params = {k: v.astype(dtype) for k, v in params.items()}
    assert model.dropout_masks(cfg, 3, 0.0, np.random.default_rng(0), get_backend("cpu")) is None
    loss, grads = model.loss_and_grads(params, cfg, batch)
    loss1, grads1 = model.loss_and_grads(params, cfg, batch, _ones(cfg, 3, dtype))
    assert float(loss1) == float(loss)  # bit for bit: a mask of ones multiplies by exactly 1
    for k in grads:
        np.testing.assert_array_equal(grads1[k], grads[k], err_msg=k)


@pytest.mark.parametrize("variant", ["rnnsearch", "diagonal"])  # a state-dependent context, a
def test_dropout_gradients_match_finite_differences_with_masks_fixed(variant):  # state-free one
    errors = gradcheck.check_model(variant, seed=2, dropout=0.4)
    bad = {k: v for k, v in errors.items() if v > 1e-6}
    assert not bad, f"{variant}: {bad}"


def test_every_mask_is_applied_and_scaled():
    cfg, params, batch = gradcheck.tiny_problem("rnnsearch")
    masks = model.dropout_masks(cfg, 3, 0.5, np.random.default_rng(1), get_backend("cpu"),
                                "float64")
    assert all(set(np.unique(m)) == {0.0, 2.0} for m in masks)       # kept units times 1/(1-p)
    base = float(model.loss(params, cfg, batch))
    for k, name in enumerate(model.Masks._fields):
        one = _ones(cfg, 3)
        one = one._replace(**{name: masks[k]})
        assert float(model.loss(params, cfg, batch, one)) != pytest.approx(base, rel=1e-6), name


def test_dropout_on_array_api_strict_agrees_with_numpy():
    cfg, params64, batch = gradcheck.tiny_problem("diagonal")
    params = {k: v.astype(np.float32) for k, v in params64.items()}
    sb = get_backend("strict")
    masks_np = model.dropout_masks(cfg, 3, 0.3, np.random.default_rng(7), get_backend("cpu"))
    masks_s = model.dropout_masks(cfg, 3, 0.3, np.random.default_rng(7), sb)
    assert all(m.device == sb.device for m in masks_s)
    loss_np, grads_np = model.loss_and_grads(params, cfg, batch, masks_np)
    loss_s, grads_s = model.loss_and_grads({k: sb.asarray(v) for k, v in params.items()}, cfg,
                                           batch.to(sb), masks_s)
    np.testing.assert_allclose(to_host(loss_s), loss_np, rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(to_host(grads_s[k]), grads_np[k], rtol=1e-4, atol=1e-6)


def test_dropout_keeps_one_minus_p_of_the_units_scaled_by_its_inverse():
    """At p = 0.2 (where keeping with probability p or 1-p differ), over many units: the kept
    fraction is 0.8 within 4 standard errors, kept units are 1/(1-p) = 1.25 and dropped ones 0,
    for backend.dropout_mask and for every one of model.dropout_masks; the masks are drawn
    independently (two masks of one shape agree on about 0.8^2 + 0.2^2 of their units)."""
    p, cpu = 0.2, get_backend("cpu")

    def assert_rate(m):
        n = m.size
        assert set(np.unique(m)) == {0.0, 1.25}
        assert abs(np.mean(m > 0) - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n), np.mean(m > 0)

    assert_rate(dropout_mask(cpu, (400, 500), p, np.random.default_rng(0), "float64"))
    cfg = model.Config(src_vocab=5, tgt_vocab=5, emb=30, hidden=40, maxout=20)
    B = 500
    masks = model.dropout_masks(cfg, B, p, np.random.default_rng(1), cpu, "float64")
    sizes = dict(src_emb=cfg.emb, tgt_emb=cfg.emb, state=cfg.hidden, context=2 * cfg.hidden,
                 maxout=cfg.maxout)
    for name, m in zip(model.Masks._fields, masks, strict=True):
        assert m.shape == (B, sizes[name]), name
        assert_rate(m)
    same = np.mean(masks.src_emb == masks.tgt_emb)  # n = B*E units
    assert abs(same - 0.68) < 4 * np.sqrt(0.68 * 0.32 / masks.src_emb.size), same


@pytest.mark.parametrize("variant", ["rnnsearch", "encdec", "diagonal"])
def test_each_mask_reaches_exactly_the_units_it_names(variant):
    """With one mask row shared by every sentence, dropout is the same as scaling the weights
    that read the dropped units, and only those: m_x the source embeddings (E_src), m_y the
    target embeddings (E_tgt, read by the decoder GRU and the deep output alike), m_s and m_c
    only the rows of U_o and C_o (s_i and c_i entering the deep output: the recurrence, the
    alignment and the GRU's C.. c_i see them whole), m_t the rows of W_o."""
    cfg, params, batch = gradcheck.tiny_problem(variant, seed=3)
    B = batch.src.shape[0]
    rows = [np.array([[0.0 if k % 3 == 1 else 1.5 for k in range(d)]])   # (1,D): drop every
            for d in (cfg.emb, cfg.emb, cfg.hidden, 2 * cfg.hidden, cfg.maxout)]  # third unit
    reads = dict(src_emb=("E_src", 1), tgt_emb=("E_tgt", 1), state=("U_o", 0),
                 context=("C_o", 0), maxout=("W_o", 0))
    base = float(model.loss(params, cfg, batch))
    for name, row in zip(model.Masks._fields, rows, strict=True):
        ones = _ones(cfg, B)._replace(**{name: np.repeat(row, B, axis=0)})
        dropped = float(model.loss(params, cfg, batch, ones))
        weight, axis = reads[name]
        scaled = dict(params)
        scaled[weight] = params[weight] * (row[0] if axis == 1 else row[0][:, None])
        assert dropped == pytest.approx(float(model.loss(scaled, cfg, batch)), rel=1e-12), name
        assert dropped != pytest.approx(base, rel=1e-6), name


# -- label smoothing -----------------------------------------------------------------------------

SMOOTHED = tuple(v for v in model.VARIANTS if model.supports_label_smoothing(v))





@pytest.mark.parametrize("variant", SMOOTHED)
def test_label_smoothing_gradients_match_finite_differences(variant):
    errors = gradcheck.check_model(variant, seed=1, label_smoothing=0.1)
    bad = {k: v for k, v in errors.items() if v > 1e-6}
    assert not bad, f"{variant}: {bad}"


def test_label_smoothing_with_dropout_gradients_match_finite_differences():
    errors = gradcheck.check_model("rnnsearch", seed=2, dropout=0.4, label_smoothing=0.2)
    bad = {k: v for k, v in errors.items() if v > 1e-6}
    assert not bad, bad


@pytest.mark.parametrize("variant", SMOOTHED)
def test_label_smoothing_loss_from_teacher_forced_decoder_steps(variant):
    """The smoothed loss is the mean over real tokens of -(1-eps) log p(y_i) - (eps/V) sum_v
    log p(v), with log p from the decoding path (decoder_step), not the training forward; it
    is not the plain loss, and padding added changes nothing."""
    eps = 0.3
    cfg, params, batch = gradcheck.tiny_problem(variant)
    packed = model.pack_params(params)
    enc, s, _ = model.encode(packed, cfg, batch.src, batch.src_mask)
    B, T = batch.tgt.shape
    y_prev, total = np.full(B, 2), 0.0
    for i in range(T):
        logp, s, _ = model.decoder_step(packed, cfg, enc, y_prev, s, i)   # (B,V)
        per_token = -(1 - eps) * logp[np.arange(B), batch.tgt[:, i]] - eps / cfg.tgt_vocab * \
            logp.sum(axis=1)
        total += float(np.sum(per_token * batch.tgt_mask[:, i]))
        y_prev = batch.tgt[:, i]
    smoothed = float(model.loss(params, cfg, batch, label_smoothing=eps))
    assert smoothed == pytest.approx(total / float(batch.tgt_mask.sum()), rel=1e-12)
    assert smoothed != pytest.approx(float(model.loss(params, cfg, batch)), rel=1e-3)
    assert float(model.loss(params, cfg, _pad(batch, 2, 3), label_smoothing=eps)) == \
        pytest.approx(smoothed, rel=1e-12)


def test_label_smoothing_on_array_api_strict_agrees_with_numpy():
    cfg, params64, batch = gradcheck.tiny_problem("rnnsearch")
    params = {k: v.astype(np.float32) for k, v in params64.items()}
    sb = get_backend("strict")
    loss_np, grads_np = model.loss_and_grads(params, cfg, batch, label_smoothing=0.1)
    loss_s, grads_s = model.loss_and_grads({k: sb.asarray(v) for k, v in params.items()}, cfg,
                                           batch.to(sb), label_smoothing=0.1)
    assert loss_s.device == sb.device
    np.testing.assert_allclose(to_host(loss_s), loss_np, rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(to_host(grads_s[k]), grads_np[k], rtol=1e-4, atol=1e-6)
