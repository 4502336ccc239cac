"""Gradient clipping and the optimisers, on NumPy and on array_api_strict's device1."""

import numpy as np
import pytest

from minirnnsearch.backend import get_backend, to_host
from minirnnsearch.optim import clip_grad_norm, make_optimizer


def arrays(backend, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return {"a": backend.asarray(rng.normal(size=(3, 4)) * scale, dtype="float32"),
            "b": backend.asarray(rng.normal(size=(5,)) * scale, dtype="float32")}


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_clip_rescales_to_max_norm(device):
    b = get_backend(device)
    g = arrays(b, scale=3.0)
    host = {k: to_host(v).copy() for k, v in g.items()}
    expected = np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for v in host.values()))
    norm = clip_grad_norm(g, 1.0)
    assert float(to_host(norm)) == pytest.approx(expected, rel=1e-5)
    after = np.sqrt(sum(np.sum(to_host(v).astype(np.float64) ** 2) for v in g.values()))
    assert after == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(to_host(g["a"]), host["a"] / expected, rtol=1e-5)
    assert g["a"].dtype == b.xp.float32


def test_clip_leaves_small_gradients_alone():
    g = arrays(get_backend("cpu"), scale=0.01)
    before = {k: v.copy() for k, v in g.items()}
    clip_grad_norm(g, 1.0)
    for k in g:
        np.testing.assert_array_equal(g[k], before[k])


def reference_step(name, p, g, state, t):
    """The update rules written out in NumPy float64."""
    if name == "sgd":
        return p - 0.1 * g
    if name == "adam":
        m = state.setdefault("m", np.zeros_like(p))
        v = state.setdefault("v", np.zeros_like(p))
        m[:] = 0.9 * m + 0.1 * g
        v[:] = 0.999 * v + 0.001 * g * g
        return p - 1e-3 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    eg2 = state.setdefault("eg2", np.zeros_like(p))
    edx2 = state.setdefault("edx2", np.zeros_like(p))
    eg2[:] = 0.95 * eg2 + 0.05 * g * g
    dx = -np.sqrt(edx2 + 1e-6) / np.sqrt(eg2 + 1e-6) * g
    edx2[:] = 0.95 * edx2 + 0.05 * dx * dx
    return p + dx


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("name", ["sgd", "adam", "adadelta"])
def test_updates_match_the_formulas(name, device):
    b = get_backend(device)
    params, grads = arrays(b, 0), arrays(b, 1)
    ref = {k: to_host(v).astype(np.float64) for k, v in params.items()}
    opt = make_optimizer(name, params)
    state = {k: {} for k in params}
    for t in range(1, 4):
        opt.step(params, grads)
        for k in ref:
            ref[k] = reference_step(name, ref[k], to_host(grads[k]).astype(np.float64), state[k], t)
    for k in params:
        assert params[k].dtype == b.xp.float32
        np.testing.assert_allclose(to_host(params[k]), ref[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam", "adadelta"])
def test_minimises_a_quadratic(name):
    p = {"x": np.array([3.0, -2.0], dtype=np.float32)}
    opt = make_optimizer(name, p, lr={"sgd": 0.1, "adam": 0.1, "adadelta": 1.0}[name])
    start = float(np.sum(p["x"] ** 2))
    for _ in range(50):
        opt.step(p, {"x": 2 * p["x"]})
    assert float(np.sum(p["x"] ** 2)) < start * 0.9


@pytest.mark.parametrize("name", ["adam", "adadelta"])
def test_state_dict_round_trip_continues_bitwise(name):
    b = get_backend("cpu")
    p1, g = arrays(b, 0), arrays(b, 1)
    o1 = make_optimizer(name, p1)
    o1.step(p1, g)
    p2 = {k: v.copy() for k, v in p1.items()}
    o2 = make_optimizer(name, p2)
    o2.load_state_dict({k: np.array(v) for k, v in o1.state_dict().items()})
    assert o2.t == 1
    for _ in range(2):
        o1.step(p1, g)
        o2.step(p2, g)
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("lbfgs", {})
