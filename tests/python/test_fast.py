"""The package's C extension (dino._fast, python/dino/_fast.c) against the ctypes path: the same
bits, shapes and dtypes; what it leaves to the Python path; references it keeps."""
import os
import sys

import numpy as np
import pytest

import dino


def rows(data_dir, n=5, start=1600):
    return np.load(data_dir / "m_data.npy")[start:start + n]


def test_extension_is_used_where_it_was_built():
    """ctest sets DINO_EXTENSION when the build made dino._fast: it must then load (a failure
    would otherwise only show as a RuntimeWarning and a slower package)."""
    path = os.environ.get("DINO_EXTENSION")
    if not path:
        pytest.skip("DINO_EXTENSION is not set (the build found no Python headers)")
    assert dino.extension == path


@pytest.fixture(scope="module", params=["f32", "f64"])
def pair(request, spec, checkpoint):
    """Two handles of one model: the first through the extension, the second through ctypes."""
    if dino.extension is None:
        pytest.skip("no C extension")
    fast = dino.load(spec, checkpoint, backend="cpu", precision=request.param)
    slow = dino.load(spec, checkpoint, backend="cpu", precision=request.param)
    slow._fast = None
    assert fast._fast is not None
    yield fast, slow
    fast.close()
    slow.close()


def same(a, b):
    assert type(a) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape and a.flags.c_contiguous
    np.testing.assert_array_equal(a, b)


def test_extension_equals_ctypes_bit_for_bit(pair, data_dir):
    fast, slow = pair
    x = rows(data_dir, 9)
    for xi in (x, x[3], x.astype(np.float32), x[4].astype(np.float32), x[:0], x[:1]):
        r = fast._fast.value_and_jacobian(xi)
        assert r is not NotImplemented
        want = slow.value_and_jacobian(xi)
        same(r[0], want[0])
        same(r[1], want[1])
        same(fast._fast.value(xi), slow(xi))
        same(fast.value_and_jacobian(xi)[1], want[1])
        same(fast(xi), want[0])
    rng = np.random.default_rng(3)
    v, w = rng.standard_normal((9, 64)), rng.standard_normal((9, 16))
    for xi, vi, wi in ((x, v, w), (x[2], v[2], w[2])):
        same(fast._fast.jvp(xi, vi), slow.jvp(xi, vi))
        same(fast._fast.vjp(xi, wi), slow.vjp(xi, wi))
        same(fast.jvp(xi, vi), slow.jvp(xi, vi))
        same(fast.vjp(xi, wi), slow.vjp(xi, wi))


def test_other_inputs_are_left_to_the_python_path(pair, data_dir):
    fast, slow = pair
    x = rows(data_dir, 4)
    f = fast._fast
    others = [np.asfortranarray(x), x[:, ::2], x[:, :63], x[None], x.astype(np.int64), list(x[0]),
              x.astype(np.float16), np.float64(1.0)]
    for xi in others:
        assert f.value(xi) is NotImplemented and f.value_and_jacobian(xi) is NotImplemented
    # F order is copied once and predicted: the same values as C order
    same(fast.value_and_jacobian(np.asfortranarray(x))[1], slow.value_and_jacobian(x)[1])
    v = np.zeros((4, 64))
    for xi, vi in ((x.astype(np.float32), v), (x, v.astype(np.float32)), (x, v[:3]), (x, v[0]), (x[0], v)):
        assert f.jvp(xi, vi) is NotImplemented
    assert f.vjp(x, np.zeros((4, 64))) is NotImplemented
    same(fast.jvp(x.astype(np.float32), v), slow.jvp(x.astype(np.float32), v))


def test_extension_keeps_no_references(pair, data_dir):
    fast, _ = pair
    x = np.ascontiguousarray(rows(data_dir, 2))
    v = np.ones((2, 64))
    before = sys.getrefcount(x), sys.getrefcount(v)
    for _ in range(200):
        y, J = fast.value_and_jacobian(x)
        fast(x[0])
        fast.jvp(x, v)
    assert (sys.getrefcount(x), sys.getrefcount(v)) == before
    assert sys.getrefcount(y) == 2 and sys.getrefcount(J) == 2
    with pytest.raises(TypeError):
        fast._fast.jvp(x)


def test_errors_through_the_extension(spec, checkpoint, data_dir):
    if dino.extension is None:
        pytest.skip("no C extension")
    m = dino.load(spec, checkpoint, backend="cpu")
    x = rows(data_dir, 2).copy()
    x[1, 3] = np.inf
    with pytest.raises(dino.DinoError, match="row 1, column 3"):
        m._fast.value_and_jacobian(x)
    m.close()
    with pytest.raises(dino.DinoError, match="closed"):
        m._fast.value(x[0])
    with pytest.raises(dino.DinoError, match="closed"):
        m.value_and_jacobian(x[0].astype(np.float32))


def test_a_failing_model_construction_frees_the_handle_once(spec, monkeypatch):
    """When Model() raises after libdino opened the handle, dino.load frees it, and the
    half-made Model's close() (at garbage collection) must not free it again."""
    import gc
    from dino import _ext

    class Broken:
        class Predictor:
            def __init__(self, *args):
                raise RuntimeError("no predictor")

    monkeypatch.setattr(_ext, "module", Broken)
    for _ in range(3):
        with pytest.raises(RuntimeError, match="no predictor"):
            dino.load(spec, backend="cpu")
        gc.collect()
    monkeypatch.undo()
    with dino.load(spec, backend="cpu") as m:   # the process is still sound
        assert m(np.zeros(64)).shape == (16,)
