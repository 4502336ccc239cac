"""Gradient clipping and the optimisers, on NumPy and on array_api_strict's device1."""

from contextlib import contextmanager

import numpy as np
import pytest

from minirnnsearch.backend import get_backend, to_host
from minirnnsearch.optim import Optimizer, clip_grad_norm, make_optimizer

DEVICES = ["cpu", "strict"]
NAMES = ["sgd", "adam", "adadelta"]


def arrays(b, seed=0, scale=1.0):
    """Two float32 arrays on backend ``b``, shaped like a weight matrix and a bias."""
    rng = np.random.default_rng(seed)
    return {"W": b.asarray(rng.normal(size=(3, 4)) * scale, dtype="float32"),
            "b": b.asarray(rng.normal(size=(5,)) * scale, dtype="float32")}


def host(d):
    return {k: to_host(v).copy() for k, v in d.items()}


def global_norm(d):
    return np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for v in host(d).values()))


@contextmanager
def no_host_sync():
    """Inside, reading a value of a strict array back to Python is an error, as it would be a
    GPU wait with CuPy: bool(x), float(x), int(x) and x used as an index all raise."""
    from array_api_strict._array_object import Array

    def refuse(self, *args):
        raise AssertionError("host sync: a device value was read back to Python")

    with pytest.MonkeyPatch.context() as mp:
        for method in ("__bool__", "__float__", "__int__", "__index__", "__complex__"):
            mp.setattr(Array, method, refuse)
        yield


@pytest.mark.parametrize("device", DEVICES)
def test_clip_rescales_to_max_norm(device):
    b = get_backend(device)
    g = arrays(b, scale=3.0)
    before = host(g)
    expected = global_norm(g)
    assert expected > 1.0
    with no_host_sync():
        norm = clip_grad_norm(g, 1.0)
    assert norm.shape == () and norm.device == b.device
    assert g["W"].dtype == b.xp.float32 and norm.dtype == b.xp.float32
    assert float(to_host(norm)) == pytest.approx(expected, rel=1e-6)
    assert global_norm(g) == pytest.approx(1.0, abs=1e-6)
    for k in g:  # every gradient by the same factor: the direction is kept
        np.testing.assert_allclose(to_host(g[k]), before[k] / expected, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("scale", "max_norm"), [(0.01, 1.0), (3.0, None), (3.0, 0.0), (3.0, -1)])
def test_clip_leaves_gradients_alone_below_max_norm_or_when_disabled(device, scale, max_norm):
    b = get_backend(device)
    g = arrays(b, scale=scale)
    before = host(g)
    norm = clip_grad_norm(g, max_norm)
    assert float(to_host(norm)) == pytest.approx(global_norm(g), rel=1e-6)
    for k in g:
        np.testing.assert_array_equal(to_host(g[k]), before[k])


def reference_step(name, p, g, state, t):
    """One step of each update rule written out in NumPy float64, with the defaults: SGD lr 0.1;
    Adam lr 1e-3, betas 0.9/0.999, eps 1e-8; Adadelta (Zeiler 2012) rho 0.95, eps 1e-6, lr 1."""
    if name == "sgd":
        return p - 0.1 * g
    if name == "adam":
        m = state["m"] = 0.9 * state.get("m", 0.0) + 0.1 * g
        v = state["v"] = 0.999 * state.get("v", 0.0) + 0.001 * g * g
        return p - 1e-3 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    eg2 = state["eg2"] = 0.95 * state.get("eg2", 0.0) + 0.05 * g * g
    dx = -np.sqrt(state.get("edx2", 0.0) + 1e-6) / np.sqrt(eg2 + 1e-6) * g
    state["edx2"] = 0.95 * state.get("edx2", 0.0) + 0.05 * dx * dx
    return p + dx


@pytest.mark.parametrize("name", NAMES)
def test_first_step_by_hand(name):
    """g = 2 on p = 1: numbers one can check on paper."""
    p = {"x": np.array([1.0], dtype=np.float32)}
    make_optimizer(name, p).step(p, {"x": np.array([2.0], dtype=np.float32)})
    by_hand = {"sgd": 1 - 0.1 * 2,
               "adam": 1 - 1e-3 * 2 / (2 + 1e-8),                   # m^ = g, v^ = g^2: ~lr sign(g)
               "adadelta": 1 - np.sqrt(1e-6) / np.sqrt(0.05 * 4 + 1e-6) * 2}[name]
    assert p["x"][0] == pytest.approx(by_hand, rel=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_updates_match_the_formulas(name, device):
    b = get_backend(device)
    params, grads = arrays(b, 0), [arrays(b, s) for s in (1, 2, 3)]
    ref = {k: v.astype(np.float64) for k, v in host(params).items()}
    opt = make_optimizer(name, params)
    state = {k: {} for k in params}
    kept = dict(params)
    for t, g in enumerate(grads, start=1):
        with no_host_sync():
            opt.step(params, g)
        for k in ref:
            ref[k] = reference_step(name, ref[k], to_host(g[k]).astype(np.float64), state[k], t)
    assert opt.t == 3
    for k in params:
        assert params[k] is kept[k]                                  # updated in place
        assert params[k].dtype == b.xp.float32 and params[k].device == b.device
        assert all(v.dtype == b.xp.float32 for v in opt.state.values())
        np.testing.assert_allclose(to_host(params[k]), ref[k], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_decreases_a_quadratic(name, device):
    """f(x) = sum x^2, gradient 2x: every step lowers f."""
    b = get_backend(device)
    p = {"x": b.asarray(np.array([3.0, -2.0, 0.5]), dtype="float32")}
    opt = make_optimizer(name, p, lr={"sgd": 0.1, "adam": 0.1, "adadelta": 1.0}[name])
    f = [float(np.sum(to_host(p["x"]).astype(np.float64) ** 2))]
    for _ in range(10):
        opt.step(p, {"x": 2.0 * p["x"]})
        f.append(float(np.sum(to_host(p["x"]).astype(np.float64) ** 2)))
    assert all(after < before for before, after in zip(f, f[1:], strict=False))
    assert p["x"].dtype == b.xp.float32


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_bitwise(name, device):
    b = get_backend(device)
    p1, g = arrays(b, 0), arrays(b, 1)
    o1 = make_optimizer(name, p1, lr=0.01)
    o1.step(p1, g)
    p2 = {k: b.asarray(v) for k, v in host(p1).items()}
    o2 = make_optimizer(name, p2, lr=0.01)
    sd = o1.state_dict()
    assert f"{name}.t" in sd and all(k.startswith(f"{name}.") for k in sd)
    o2.load_state_dict(sd)              # as it is: o2 must copy, not share o1's arrays
    assert o2.t == 1
    for _ in range(2):
        o1.step(p1, g)
        o2.step(p2, g)
    for k in p1:
        np.testing.assert_array_equal(to_host(p1[k]), to_host(p2[k]))
    # and through the host, as a checkpoint carries it
    p3 = {k: b.asarray(v) for k, v in host(p1).items()}
    o3 = make_optimizer(name, p3, lr=0.01)
    o3.load_state_dict(host(o1.state_dict()))
    assert o3.t == 3
    for o, p in ((o1, p1), (o3, p3)):
        o.step(p, g)
    for k in p1:
        np.testing.assert_array_equal(to_host(p1[k]), to_host(p3[k]))
        assert p3[k].device == b.device


def test_state_keys_name_the_optimiser_slot_and_parameter():
    opt = make_optimizer("adadelta", arrays(get_backend("cpu")))
    assert isinstance(opt, Optimizer)
    assert sorted(opt.state) == ["adadelta.Edx2/W", "adadelta.Edx2/b",
                                 "adadelta.Eg2/W", "adadelta.Eg2/b"]


def test_foreign_state_is_refused():
    params = arrays(get_backend("cpu"))
    adam = make_optimizer("adam", params)
    with pytest.raises(ValueError, match="adadelta optimiser state does not fit"):
        make_optimizer("adadelta", params).load_state_dict(adam.state_dict())
    other = make_optimizer("adam", {"W": np.zeros((2, 2), np.float32),
                                    "b": np.zeros(5, np.float32)})
    with pytest.raises(ValueError, match=r"'adam.m/W' has shape \(2, 2\)"):
        adam.load_state_dict(other.state_dict())


def test_make_optimizer_defaults_and_unknown_name():
    params = arrays(get_backend("cpu"))
    assert [make_optimizer(n, params).lr for n in NAMES] == [0.1, 1e-3, 1.0]
    assert make_optimizer("adam", params, lr=3e-3).lr == 3e-3
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs': choose one of"):
        make_optimizer("lbfgs", params)
