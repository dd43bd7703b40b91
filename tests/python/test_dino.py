"""The Python package (python/dino) against libdino and dino-jit: checking, compiling, loading,
predictions equal to `dino-jit --predict`, Jacobian products, finite differences, errors with
locations, bad shapes and dtypes, training from a folder and from arrays with a callback."""
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import dino
from conftest import tool


def rows(data_dir, n=5, start=1600):
    m = np.load(data_dir / "m_data.npy")[start:start + n]
    return m


def dino_jit_predict(spec, ckpt, x, tmp_path, precision="f32"):
    """y and J from `dino-jit --predict` on x."""
    np.save(tmp_path / "in.npy", x)
    out = tmp_path / "pred"
    subprocess.run([tool("DINO_JIT"), str(spec), "--load", str(ckpt), "--epochs", "0", "--backend", "cpu",
                    "--precision", precision, "--predict", str(tmp_path / "in.npy"), "--out", str(out), "-q"],
                   check=True)
    return np.load(out / "q.npy"), np.load(out / "J.npy")


# ---------------------------------------------------------------------------- check, compile

def test_check_describes_the_spec(spec):
    info = dino.check(spec)
    assert (info.name, info.input, info.output, info.in_dim, info.out_dim) == ("poisson", "m", "q", 64, 16)
    assert info.n_params == 64 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 16 + 16
    assert info.precision == "f32" and info.epochs == 60 and info.batch == 32 and not info.classifier
    assert dino.check(spec, settings={"precision": "f64", "epochs": 7}).precision == "f64"


def test_spec_error_has_file_line_column(tmp_path):
    bad = tmp_path / "bad.dino"
    bad.write_text("model m {\n    input  x[4]\n    output y[2]\n    y = dense(h3, 2)\n}\n")
    with pytest.raises(dino.SpecError) as e:
        dino.check(bad)
    err = e.value
    assert err.file == str(bad) and err.line == 4 and err.column == 15
    assert "h3" in str(err) and f"{bad}:4:15: error:" in str(err) and "^" in str(err)
    assert err.diagnostics[0].line == 4 and err.diagnostics[0].severity == "error"
    assert isinstance(err, ValueError) and err.status == 1


def test_every_error_is_reported(tmp_path):
    bad = tmp_path / "two.dino"
    bad.write_text("model m {\n    input  x[4]\n    output y[2]\n    h = dense(a1, 3)\n    y = dense(a2, 2)\n}\n")
    with pytest.raises(dino.SpecError) as e:
        dino.check(bad)
    lines = [d.line for d in e.value.diagnostics if d.severity == "error"]
    assert 4 in lines and 5 in lines, e.value.diagnostics


def test_missing_spec_file(tmp_path):
    with pytest.raises(dino.DinoError) as e:
        dino.check(tmp_path / "nope.dino")
    assert "nope.dino" in str(e.value)


def test_bad_setting(spec):
    with pytest.raises(dino.DinoError) as e:
        dino.check(spec, settings={"epochs": "-3"})
    assert "epochs" in str(e.value)
    with pytest.raises(dino.DinoError):
        dino.check(spec, settings={"no_such_key": 1})


def test_compile_targets(spec, tmp_path):
    c = dino.compile(spec, "c", out=tmp_path / "m.c")
    assert "dino_predict" in c and (tmp_path / "m.c").read_text() == c
    params = dino.compile(spec, "params").splitlines()
    assert len(params) == 8 and params[0].split()[0].endswith("weight")
    assert "__global__" in dino.compile(spec, "cuda")
    assert "double" in dino.compile(spec, "c", precision="f64")
    with pytest.raises(ValueError):
        dino.compile(spec, "fortran")


# ---------------------------------------------------------------------------- predictions

def test_predictions_equal_dino_jit(spec, checkpoint, data_dir, tmp_path):
    x = rows(data_dir, 7)
    yj, Jj = dino_jit_predict(spec, checkpoint, x, tmp_path)
    with dino.load(spec, checkpoint, backend="cpu") as model:
        assert model.precision == "f32" and model.backend == "cpu"
        y, J = model.value_and_jacobian(x)
        assert y.shape == (7, 16) and J.shape == (7, 16, 64) and y.dtype == np.float64
        np.testing.assert_allclose(y, yj, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(J, Jj, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(model(x), y)
        np.testing.assert_array_equal(model.jacobian(x), J)


def test_f64_predictions_equal_dino_jit(spec, checkpoint, data_dir, tmp_path):
    x = rows(data_dir, 4)
    yj, Jj = dino_jit_predict(spec, checkpoint, x, tmp_path, precision="f64")
    with dino.load(spec, checkpoint, precision="f64", backend="cpu") as model:
        assert model.precision == "f64"
        y, J = model.value_and_jacobian(x)
        np.testing.assert_allclose(y, yj, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(J, Jj, rtol=1e-13, atol=1e-14)


@pytest.fixture(scope="module")
def model(spec, checkpoint):
    with dino.load(spec, checkpoint, backend="cpu") as m:
        yield m


@pytest.fixture(scope="module")
def model64(spec, checkpoint):
    with dino.load(spec, checkpoint, backend="cpu", precision="f64") as m:
        yield m


def test_single_sample(model, data_dir):
    x = rows(data_dir, 3)
    y, J = model.value_and_jacobian(x)
    y1, J1 = model.value_and_jacobian(x[1])
    assert y1.shape == (16,) and J1.shape == (16, 64)
    np.testing.assert_array_equal(y1, y[1])
    np.testing.assert_array_equal(J1, J[1])
    assert model(x[1]).shape == (16,)


def test_f32_input_gives_f32_output(model, data_dir):
    x = rows(data_dir, 3)
    y, J = model.value_and_jacobian(x)
    y32, J32 = model.value_and_jacobian(x.astype(np.float32))
    assert y32.dtype == np.float32 and J32.dtype == np.float32
    # the f32 model computes on f32 values either way
    np.testing.assert_allclose(y32, y.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(J32, J.astype(np.float32), rtol=1e-6, atol=1e-8)
    assert model.vjp(x.astype(np.float32), np.ones((3, 16), np.float32)).dtype == np.float32


def test_f32_arrays_are_predicted_without_going_through_f64(model, model64, data_dir):
    """float32 in, float32 out through dino_predict_f32: what float64 gives, rounded once (the
    f32 model's own values exactly); y alone equals the y of value_and_jacobian."""
    x32 = rows(data_dir, 4).astype(np.float32)
    for m in (model, model64):
        y, J = m.value_and_jacobian(x32.astype(np.float64))
        y32, J32 = m.value_and_jacobian(x32)
        assert y32.dtype == np.float32 and J32.dtype == np.float32
        np.testing.assert_array_equal(y32, y.astype(np.float32))
        np.testing.assert_array_equal(J32, J.astype(np.float32))
        np.testing.assert_array_equal(m(x32), y32)
        np.testing.assert_array_equal(m(x32[2]), y32[2])
        np.testing.assert_array_equal(m(np.asfortranarray(x32)), y32)
        np.testing.assert_array_equal(m.jacobian(x32[1]), J32[1])


def test_fortran_order_and_views(model, data_dir):
    x = rows(data_dir, 6)
    y, J = model.value_and_jacobian(x)
    xf = np.asfortranarray(x)
    assert not xf.flags.c_contiguous
    yf, Jf = model.value_and_jacobian(xf)
    np.testing.assert_array_equal(yf, y)
    np.testing.assert_array_equal(Jf, J)
    wide = np.zeros((6, 128))
    wide[:, ::2] = x    # a strided view
    np.testing.assert_array_equal(model(wide[:, ::2]), y)
    np.testing.assert_array_equal(model(list(x[0])), y[0])
    ro = x.copy()
    ro.flags.writeable = False   # read in place all the same
    np.testing.assert_array_equal(model(ro), y)


def test_input_is_read_in_place_only_when_it_can_be(model, data_dir):
    x = np.ascontiguousarray(rows(data_dir, 2))
    assert model._input(x, "x", 64)[0] is x
    for other in (np.asfortranarray(x), x.astype(np.float32), x[:, ::-1]):
        assert model._input(other, "x", 64)[0] is not other
    # predictions read float32 as well as float64 in place (dino_predict_f32, dino_predict)
    for same in (x, x.astype(np.float32), x[0], x.astype(np.float32)[1]):
        assert model._prediction_input(same)[0] is same
    for other in (np.asfortranarray(x), np.asfortranarray(x.astype(np.float32)), x[:, ::-1]):
        copy = model._prediction_input(other)[0]
        assert copy is not other and copy.flags.c_contiguous and copy.dtype == other.dtype


def test_jvp_vjp_agree_with_the_jacobian(model64, data_dir):
    rng = np.random.default_rng(0)
    x = rows(data_dir, 5)
    v, w = rng.standard_normal((5, 64)), rng.standard_normal((5, 16))
    _, J = model64.value_and_jacobian(x)
    np.testing.assert_allclose(model64.jvp(x, v), np.einsum("boi,bi->bo", J, v), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model64.vjp(x, w), np.einsum("boi,bo->bi", J, w), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model64.jvp(x[0], v[0]), J[0] @ v[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model64.vjp(x[0], w[0]), J[0].T @ w[0], rtol=1e-12, atol=1e-13)


def test_jacobian_against_finite_differences(model64, data_dir):
    rng = np.random.default_rng(1)
    x = rows(data_dir, 3)
    v = rng.standard_normal((3, 64))
    h = 1e-6
    fd = (model64(x + h * v) - model64(x - h * v)) / (2 * h)
    np.testing.assert_allclose(model64.jvp(x, v), fd, rtol=1e-6, atol=1e-8)


def test_bad_shapes_and_dtypes(model, data_dir):
    x = rows(data_dir, 2)
    with pytest.raises(ValueError, match=r"\[64\] or \[B, 64\].*\[2, 63\]"):
        model(x[:, :63])
    with pytest.raises(ValueError):
        model(x[None])
    with pytest.raises(ValueError):
        model(np.float64(1.0))
    with pytest.raises(TypeError, match="float32 or float64, not int64"):
        model(np.zeros((2, 64), np.int64))
    with pytest.raises(TypeError):
        model(x.astype(np.complex128))
    with pytest.raises(ValueError, match="batch shape"):
        model.jvp(x, np.zeros((3, 64)))
    with pytest.raises(ValueError, match="batch shape"):
        model.vjp(x, np.zeros(16))
    with pytest.raises(ValueError, match=r"\[16\] or \[B, 16\]"):
        model.vjp(x, np.zeros((2, 64)))


def test_non_finite_input_is_located(model, data_dir):
    x = rows(data_dir, 2).copy()
    x[1, 3] = np.nan
    with pytest.raises(dino.DinoError, match="row 1, column 3"):
        model(x)


def test_empty_batch(model):
    y, J = model.value_and_jacobian(np.zeros((0, 64)))
    assert y.shape == (0, 16) and J.shape == (0, 16, 64)


def test_threads_share_a_model(model, data_dir):
    x = rows(data_dir, 8)
    want = model.value_and_jacobian(x)
    errors = []

    def work(i):
        for _ in range(20):
            y, J = model.value_and_jacobian(x[i])
            if not (np.array_equal(y, want[0][i]) and np.array_equal(J, want[1][i])):
                errors.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_load_errors(spec, tmp_path):
    with pytest.raises(dino.DinoError, match="missing.safetensors"):
        dino.load(spec, tmp_path / "missing.safetensors", backend="cpu")
    with pytest.raises(ValueError):
        dino.load(spec, backend="tpu")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{}{}{")
    with pytest.raises(dino.DinoError, match="junk.safetensors"):
        dino.load(spec, junk, backend="cpu")


def test_cuda_without_gpu_is_an_error(spec):
    try:
        model = dino.load(spec, backend="cuda")
    except dino.DinoError as e:
        assert "GPU" in str(e) or "CUDA" in str(e)
    else:   # a machine with a GPU: the model runs there
        assert model.backend == "cuda"
        model.close()


def test_closed_model(spec):
    m = dino.load(spec, backend="cpu")
    m.close()
    with pytest.raises(dino.DinoError, match="closed"):
        m(np.zeros(64))


# ---------------------------------------------------------------------------- training

def arrays(data_dir, a, b):
    m, q, J = (np.load(data_dir / f) for f in ("m_data.npy", "q_data.npy", "J_data.npy"))
    return {"x": m[a:b], "y": q[a:b], "J": J[a:b]}


def test_train_callback_stops(spec, data_dir, tmp_path):
    seen = []

    def callback(metrics):
        seen.append(metrics)
        return metrics["epoch"] < 2

    save = tmp_path / "stopped.safetensors"
    h = dino.train(spec, data=data_dir, epochs=50, save=save, callback=callback, settings={"eval_every": 1})
    assert h.stopped and len(h) == 2 and [m["epoch"] for m in seen] == [1, 2]
    assert {"train_loss", "lr", "rel_l2", "rel_h1", "seconds", "step"} <= set(seen[0])
    assert h.model.epochs_done == 2 and save.exists()
    assert h.model.load_checkpoint(save)["epoch"] == 2
    h.model.close()


def test_train_on_arrays_in_memory(spec, data_dir, tmp_path):
    h = dino.train(spec, data=arrays(data_dir, 0, 256), test=arrays(data_dir, 1600, 1700), epochs=3,
                   batch=64, settings={"eval_every": 1}, seed=3)
    assert len(h) == 3 and not h.stopped and h[0]["step"] == 4
    assert all("rel_l2" in m and "rel_h1" in m for m in h)
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    x = np.load(data_dir / "m_data.npy")[:3]
    assert h.model(x).shape == (3, 16)
    h.model.close()
    # a tuple (x, y, J), no test set: no test metrics
    d = arrays(data_dir, 0, 64)
    h2 = dino.train(spec, data=(d["x"], d["y"], d["J"]), epochs=1)
    assert len(h2) == 1 and "rel_l2" not in h2[0]
    h2.model.close()


def test_train_errors(spec, data_dir, tmp_path):
    d = arrays(data_dir, 0, 64)
    with pytest.raises(dino.DinoError, match="h1 loss needs Jacobian"):
        dino.train(spec, data=(d["x"], d["y"]), epochs=1)
    with pytest.raises(ValueError, match=r"y must have shape \[64, 16\]"):
        dino.train(spec, data={"x": d["x"], "y": d["y"][:, :15], "J": d["J"]}, epochs=1)
    with pytest.raises(TypeError):
        dino.train(spec, data={"x": d["x"].astype(int), "y": d["y"], "J": d["J"]}, epochs=1)
    with pytest.raises(dino.DinoError, match="m_data.npy"):
        dino.train(spec, data=tmp_path, epochs=1)

    def boom(metrics):
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        dino.train(spec, data=d, epochs=3, callback=boom)


def test_two_models_in_two_threads(spec, checkpoint, data_dir):
    """Two handles of one spec share the compiled module, whose GEMM claims its own packing
    buffers per call; the package locks each model alone, so the two compute at the same time
    (single samples and batches, float64 and float32) and results stay exact."""
    models = [dino.load(spec, checkpoint, backend="cpu") for _ in range(2)]
    assert models[0]._lock is not models[1]._lock
    x = rows(data_dir, 300, start=0)
    want = models[0].jacobian(x)
    want32 = models[0].jacobian(x.astype(np.float32))
    bad = []

    def work(m):
        for i in range(len(x)):
            if not np.array_equal(m.jacobian(x[i]), want[i]):
                bad.append(i)
            if i % 30 == 0:
                b = slice(i, i + 40)
                if not (np.array_equal(m.jacobian(x[b]), want[b]) and
                        np.array_equal(m.jacobian(x[b].astype(np.float32)), want32[b])):
                    bad.append(("batch", i))

    threads = [threading.Thread(target=work, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in models:
        m.close()
    assert not bad


def test_ctrl_c_stops_training(spec, data_dir, tmp_path):
    """SIGINT during dino_train: training stops after the step, saves, and KeyboardInterrupt is
    raised when it returns (the signal is sent once the first epoch is done)."""
    import os
    import signal
    save = tmp_path / "interrupted.safetensors"
    timers = []

    def callback(metrics):
        if not timers:
            timers.append(threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)))
            timers[0].start()

    with pytest.raises(KeyboardInterrupt):
        dino.train(spec, data=data_dir, epochs=100000, save=save, callback=callback)
    assert save.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_classifier(tmp_path):
    """A classifier (tests/specs/classifier.dino): logits, no Jacobian, training on labels."""
    spec = Path(__file__).resolve().parents[1] / "specs" / "classifier.dino"
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 7))
    labels = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    h = dino.train(spec, data={"x": x, "labels": labels}, test={"x": x, "labels": labels}, epochs=3,
                   settings={"batch": 8, "eval_every": 1})
    model = h.model
    assert model.info.classifier and "accuracy" in h[-1] and 0 <= h[-1]["accuracy"] <= 1
    assert model(x).shape == (40, 5) and model(x[0]).shape == (5,)
    with pytest.raises(dino.DinoError, match="no Jacobian"):
        model.value_and_jacobian(x)
    with pytest.raises(dino.DinoError, match="no Jacobian"):
        model.jvp(x, x)
    with pytest.raises(TypeError, match="labels must be integers"):
        dino.train(spec, data={"x": x, "labels": labels.astype(float)}, epochs=1)
    with pytest.raises(dino.DinoError):
        dino.train(spec, data={"x": x, "labels": labels + 5}, epochs=1)   # out of range
    model.close()


def test_train_messages_and_log(spec, data_dir, tmp_path):
    messages = []
    log = tmp_path / "log.csv"
    h = dino.train(spec, data=data_dir, epochs=1, log=log, on_message=lambda level, text: messages.append((level, text)))
    assert any(level == "note" and "workspace" in text for level, text in messages), messages
    lines = log.read_text().splitlines()
    assert lines[0].startswith("epoch,step,seconds,lr,train_loss") and lines[1].startswith("1,50,")
    h.model.close()
    with pytest.raises(dino.DinoError, match="no_such"):
        dino.train(spec, data=data_dir, epochs=1, settings={"no_such": 1})


def test_predict_in_reduced_coordinates(spec, data_dir, tmp_path):
    """model(x, reduced=True) and value_and_jacobian(x, reduced=True): h and G = dh/dz of a basis
    model; lifted with its bases (npy files written here) they are the full-space prediction."""
    rng = np.random.default_rng(0)
    Dm, _ = np.linalg.qr(rng.standard_normal((64, 8)))
    Dq, _ = np.linalg.qr(rng.standard_normal((16, 6)))
    sm, sq = 0.1 * rng.standard_normal(64), 1 + rng.standard_normal(16)
    for name, a in (("Dm", Dm), ("Dq", Dq), ("sm", sm), ("sq", sq)):
        np.save(tmp_path / f"{name}.npy", a)
    rb = tmp_path / "rb.dino"
    rb.write_text('basis {\n    Vm = npy(decoder = "Dm.npy", shift = "sm.npy")\n'
                  '    Vq = npy(decoder = "Dq.npy", shift = "sq.npy")\n}\n'
                  "model rb { input m[64]; output q[16]\n"
                  "    q = decode(mlp(encode(m, Vm), 6, width = 16, depth = 2), Vq) }\n"
                  "loss { l2 q relative; h1 dq/dm relative }\n"
                  "train { epochs 1; batch 64; precision f64 }\n")
    d = arrays(data_dir, 0, 128)
    h = dino.train(rb, data=(d["x"], d["y"], d["J"]), epochs=1)
    model = h.model
    assert model.reduced_dims() == (8, 6)
    x = np.load(data_dir / "m_data.npy")[:5]
    q, J = model.value_and_jacobian(x)
    hr, G = model.value_and_jacobian(x, reduced=True)
    assert hr.shape == (5, 6) and G.shape == (5, 6, 8)
    np.testing.assert_allclose(hr @ Dq.T + sq, q, rtol=0, atol=1e-12 * np.abs(q).max())
    np.testing.assert_allclose(np.einsum("ok,nkj,cj->noc", Dq, G, Dm), J, rtol=0, atol=1e-12 * np.abs(J).max())
    np.testing.assert_array_equal(model(x, reduced=True), hr)
    h1, G1 = model.value_and_jacobian(x[0].astype(np.float32), reduced=True)  # one sample, f32 in and out
    assert h1.shape == (6,) and G1.shape == (6, 8) and h1.dtype == np.float32
    model.close()
    plain = dino.load(spec, backend="cpu")
    with pytest.raises(dino.DinoError, match="has no reduced path"):
        plain(x, reduced=True)
    plain.close()


@pytest.mark.parametrize("name", ["abi_layout", "ode_save_dopri5", "pint_tol", "ode_checkpoint"])
def test_outputs_alone_equal_outputs_with_the_jacobian(name):
    """The generated dino_predict skips the Jacobian's work when no J is asked for: the outputs
    are the same, bit for bit, through ODE solves (rk4, dopri5's step control), Parareal gates
    and checkpointed steps, in f32 and f64."""
    spec = Path(__file__).resolve().parents[1] / "specs" / f"{name}.dino"
    x = np.random.default_rng(0).standard_normal((5, dino.check(spec).in_dim)) * 0.3
    for precision in ("f32", "f64"):
        with dino.load(spec, backend="cpu", precision=precision) as m:
            y, J = m.value_and_jacobian(x)
            np.testing.assert_array_equal(m(x), y)
            np.testing.assert_array_equal(m(x[2]), m.value_and_jacobian(x[2])[0])
            assert np.isfinite(J).all()
