"""Device selection and the operations the Array API standard lacks."""

import numpy as np
import pytest

from minirnnsearch import backend
from minirnnsearch.backend import DeviceError, apply_inplace, get_backend, scatter_add, to_host


def test_auto_falls_back_to_numpy_with_one_line(capsys, monkeypatch):
    monkeypatch.setattr(backend, "_gpu_available", lambda: False)
    b = get_backend("auto")
    assert b.name == "numpy"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "falling back to NumPy" in err


def test_gpu_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(backend, "_gpu_available", lambda: False)
    with pytest.raises(DeviceError, match="--device gpu"):
        get_backend("gpu")


def test_unknown_device_is_an_error():
    with pytest.raises(DeviceError, match="unknown device"):
        get_backend("tpu")


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_scatter_add_sums_repeated_indices(device):
    b = get_backend(device)
    a = b.asarray(np.zeros((5, 2)), dtype="float32")
    idx = b.asarray(np.array([1, 3, 1, 1]), dtype="int64")
    v = b.asarray(np.arange(8).reshape(4, 2), dtype="float32")
    out = to_host(scatter_add(a, idx, v))
    expected = np.zeros((5, 2), np.float32)
    np.add.at(expected, [1, 3, 1, 1], np.arange(8).reshape(4, 2))
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32


@pytest.mark.parametrize("fname", ["exp", "tanh"])
def test_apply_inplace_fast_path_equals_the_reference(fname):
    """NumPy's f(x, out=x) against the plain f(x) that array_api_strict (and CuPy) run."""
    host = np.random.default_rng(0).standard_normal((7, 9)).astype(np.float32) * 3
    fast_in = host.copy()
    fast = apply_inplace(getattr(np, fname), fast_in)
    assert fast is fast_in                                       # written into its argument
    b = get_backend("strict")
    ref = to_host(apply_inplace(getattr(b.xp, fname), b.asarray(host)))
    np.testing.assert_array_equal(fast, ref)
    np.testing.assert_array_equal(ref, getattr(np, fname)(host))


def test_strict_backend_round_trip_and_refuses_host_mixing():
    b = get_backend("strict")
    x = b.asarray(np.arange(6.0).reshape(2, 3), dtype="float32")
    assert x.device == b.device
    np.testing.assert_array_equal(to_host(x), np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError):
        x + b.xp.asarray([1.0, 2.0, 3.0])  # an array on the CPU device: refused
