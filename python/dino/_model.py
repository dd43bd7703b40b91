"""_model.py - a trained model on NumPy arrays: outputs, Jacobians, and products with them.

Predictions go through the package's C extension (dino._fast, _ext.py) when the input is a
C-ordered float32/float64 ndarray of the right shape (float64 for jvp and vjp), and through
ctypes otherwise (copies, conversions and the error messages are the Python path's); both call
the same libdino functions and give the same bits.

Thread safety: Models may be shared between threads and used from several at once. Each model
has its own lock (a libdino handle is used by one thread at a time: dino.h), so calls on one
model are serialised, and calls on different models run at the same time: Python's GIL is
released while libdino computes (on both paths). Two models of one spec share the compiled module, whose GEMM
claims its own packing buffers per call (issue 19), so they do not disturb each other (tests/
python: test_two_models_in_two_threads). Parallel work within one call is the backend's
(OpenMP threads, the GPU).
"""
from __future__ import annotations

import ctypes
import threading
from typing import Mapping, Optional, Tuple

import numpy as np

from . import _ext, _lib
from ._errors import DinoError, check as _check
from ._spec import PathLike, SpecInfo, _Spec

_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)


_char_at = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


def _address(a: np.ndarray) -> int:
    """The address of a C-contiguous array's first element. Through the buffer protocol when the
    array is writable and not empty (0.4 us), else through __array_interface__ (2 us: it builds
    a dict, which is most of this package's time per call for one sample)."""
    try:
        return _addressof(_char_at(a))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return a.__array_interface__["data"][0]


class Model:
    """A spec's generated code loaded on a backend, with its parameters. Made by dino.load() or
    returned by dino.train() (as History.model).

    Inputs are NumPy arrays of float32 or float64, one sample `[in]` or a batch `[B, in]`, in C
    or Fortran order: predictions read a C-contiguous array of either dtype in place and copy any
    other once into C order (jvp and vjp take float64 rows, copying other arrays once into that
    form). Results have the input's dtype (float32 in, float32 out) and its
    batch shape: `model(x)` is `[out]` or `[B, out]`, the Jacobian `[out, in]` or `[B, out, in]`.
    The model computes in its own precision (`precision`), whatever the input's dtype.
    """

    def __init__(self, spec: _Spec, handle: ctypes.c_void_p):
        self._spec = spec
        self._handle = handle
        self._h = None      # set last: if this raises, _open frees the handle (and close() must not)
        self._fast = None   # the C extension's predictions (None: ctypes alone)
        self._lock = threading.RLock()   # reentrant: a training callback may use its model
        lib = spec._lib
        self._lib = lib
        self._predict = lib.dino_predict
        self._predict_f32 = lib.dino_predict_f32
        info = spec.info()
        self.info: SpecInfo = info
        self.in_dim: int = info.in_dim
        self.out_dim: int = info.out_dim
        b = _lib.BackendInfo()
        _check(lib.dino_model_backend(handle, ctypes.byref(b)))
        self.backend: str = "cuda" if b.backend == _lib.BACKENDS["cuda"] else "cpu"
        self.backend_name: str = _lib.text(b.name)
        self.gpu_declined: str = _lib.text(b.gpu_declined)
        self.precision: str = "f64" if b.f64 else "f32"
        if _ext.module is not None:
            def address(fn) -> int:
                return ctypes.cast(fn, ctypes.c_void_p).value
            self._fast = _ext.module.Predictor(
                handle.value, address(lib.dino_predict), address(lib.dino_predict_f32), address(lib.dino_jvp),
                address(lib.dino_vjp), self.in_dim, self.out_dim, self._lock, np.empty, np.ndarray, _F32, _F64,
                _check, DinoError)
        self._h = handle.value

    # ------------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Frees the model (also done when it is garbage-collected)."""
        with self._lock:
            if self._fast is not None:
                self._fast.close()
            if self._h:
                self._lib.dino_model_free(self._h)
                self._h = None
                self._spec.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return (f"dino.Model({self.info.name!r}: {self.info.input}[{self.in_dim}] -> {self.info.output}"
                f"[{self.out_dim}], {self.info.n_params} parameters, {self.precision}, {self.backend_name})")

    def _live(self) -> int:
        if not self._h:
            raise DinoError("the model is closed")
        return self._h

    # ------------------------------------------------------------------------ arrays

    @staticmethod
    def _input(x, name: str, dim: int, keep_f32: bool = False) -> Tuple[np.ndarray, np.dtype, bool]:
        """x as C order [B, dim] (in place when it already is), in float64 or, with keep_f32, in
        its own float32 or float64 (for dino_predict_f32 / dino_predict); its dtype; and whether
        it was a single sample."""
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        dt = x.dtype
        if dt != _F64 and dt != _F32:
            raise TypeError(f"{name} must be float32 or float64, not {dt}")
        if x.ndim not in (1, 2) or x.shape[-1] != dim:
            raise ValueError(f"{name} must have shape [{dim}] or [B, {dim}], not {list(x.shape)}")
        want = dt if keep_f32 else _F64
        if dt != want or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=want)
        return x, dt, x.ndim == 1

    def _prediction_input(self, x) -> Tuple[np.ndarray, bool]:
        """x for dino_predict (float64) or dino_predict_f32 (float32): see _input."""
        x, _, single = self._input(x, "the input", self.in_dim, keep_f32=True)
        return x, single

    @staticmethod
    def _out(a: np.ndarray, dt: np.dtype) -> np.ndarray:
        return a if dt == _F64 else a.astype(dt)

    # ------------------------------------------------------------------------ evaluation

    def __call__(self, x: np.ndarray, *, reduced: bool = False) -> np.ndarray:
        """The outputs: x [in] -> [out], or [B, in] -> [B, out] (a classifier's logits).
        reduced=True: the network's output h [rank_out] before the output's decode (see
        reduced_dims)."""
        if reduced:
            return self._reduced(x, False)[0]
        if self._fast is not None:
            r = self._fast.value(x)
            if r is not NotImplemented:
                return r
        x, single = self._prediction_input(x)
        dt = x.dtype
        n = 1 if single else x.shape[0]
        y = np.empty((self.out_dim,) if single else (n, self.out_dim), dt)
        fn = self._predict if dt is _F64 or dt == _F64 else self._predict_f32
        with self._lock:
            st = fn(self._live(), n, _address(x), _address(y), None)
        if st:
            _check(st)
        return y

    predict = __call__

    def value_and_jacobian(self, x: np.ndarray, *, reduced: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """The outputs and their Jacobians with respect to the input: x [in] -> ([out],
        [out, in]), or [B, in] -> ([B, out], [B, out, in]). Classifiers have no Jacobian.
        reduced=True: in reduced coordinates, h [rank_out] and G = dh/dz [rank_out, rank_in]
        (see reduced_dims)."""
        if reduced:
            return self._reduced(x, True)  # type: ignore[return-value]
        if self._fast is not None:
            r = self._fast.value_and_jacobian(x)
            if r is not NotImplemented:
                return r
        x, single = self._prediction_input(x)
        dt = x.dtype
        n = 1 if single else x.shape[0]
        o, i = self.out_dim, self.in_dim
        y = np.empty((o,) if single else (n, o), dt)
        J = np.empty((o, i) if single else (n, o, i), dt)
        fn = self._predict if dt is _F64 or dt == _F64 else self._predict_f32
        with self._lock:
            st = fn(self._live(), n, _address(x), _address(y), _address(J))
        if st:
            _check(st)
        return y, J

    def reduced_dims(self) -> Tuple[int, int]:
        """(rank_in, rank_out) of a basis model whose output is `out = decode(h, B2)`: the sizes of
        z (`encode(x, B)`, or x itself when the input is also used elsewhere) and h. DinoError
        saying why when the model has no such path. Predictions in reduced coordinates
        (model(x, reduced=True), model.value_and_jacobian(x, reduced=True)) take full-space
        inputs x, encode them with the model's bases, and return h and G = dh/dz: the full-space
        output is D h + shift and its Jacobian D G E^T."""
        r_in, r_out = ctypes.c_int(), ctypes.c_int()
        with self._lock:
            _check(self._lib.dino_model_reduced_dims(self._live(), ctypes.byref(r_in), ctypes.byref(r_out)))
        return r_in.value, r_out.value

    def _reduced(self, x, jac: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        r_in, r_out = self.reduced_dims()
        x, dt, single = self._input(x, "the input", self.in_dim)
        n = 1 if single else x.shape[0]
        h = np.empty((r_out,) if single else (n, r_out))
        G = np.empty((r_out, r_in) if single else (n, r_out, r_in)) if jac else None
        with self._lock:
            st = self._lib.dino_predict_reduced(self._live(), n, _address(x), _address(h),
                                                _address(G) if G is not None else None)
        if st:
            _check(st)
        return self._out(h, dt), (self._out(G, dt) if G is not None else None)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """The Jacobian alone: [in] -> [out, in], or [B, in] -> [B, out, in]."""
        return self.value_and_jacobian(x)[1]

    def _product(self, fn, x, v, vdim: int, rdim: int, vname: str) -> np.ndarray:
        x, dt, single = self._input(x, "the input", self.in_dim)
        v, _, _ = self._input(v, vname, vdim)
        if v.ndim != x.ndim or (x.ndim == 2 and v.shape[0] != x.shape[0]):
            raise ValueError(f"{vname} must have the input's batch shape {list(x.shape[:-1]) + [vdim]}, "
                             f"not {list(v.shape)}")
        n = 1 if single else x.shape[0]
        r = np.empty((rdim,) if single else (n, rdim))
        with self._lock:
            st = fn(self._live(), n, _address(x), _address(v), None, _address(r))
        if st:
            _check(st)
        return self._out(r, dt)

    def jvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """J(x) v, the Jacobian times a tangent: v [in] -> [out] per sample (x and v both one
        sample, or both [B, ...])."""
        if self._fast is not None:
            r = self._fast.jvp(x, v)
            if r is not NotImplemented:
                return r
        return self._product(self._lib.dino_jvp, x, v, self.in_dim, self.out_dim, "the tangent v")

    def vjp(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """J(x)^T w, the transposed Jacobian times a cotangent: w [out] -> [in] per sample."""
        if self._fast is not None:
            r = self._fast.vjp(x, w)
            if r is not NotImplemented:
                return r
        return self._product(self._lib.dino_vjp, x, w, self.out_dim, self.in_dim, "the cotangent w")

    # ------------------------------------------------------------------------ parameters

    def save(self, path: PathLike) -> None:
        """Writes the parameters and the training state as a safetensors checkpoint."""
        with self._lock:
            _check(self._lib.dino_model_save(self._live(), _lib.path_bytes(path)))

    def load_checkpoint(self, path: PathLike) -> dict:
        """Reads a checkpoint (dino's, or parameters alone from PyTorch) into the model. Returns
        {"has_state", "epoch", "spec_matches"} (spec_matches: True, False, or None unknown)."""
        ci = _lib.CheckpointInfo()
        with self._lock:
            _check(self._lib.dino_model_load(self._live(), _lib.path_bytes(path), ctypes.byref(ci)))
        return {"has_state": bool(ci.has_state), "epoch": ci.epoch,
                "spec_matches": None if ci.spec_matches < 0 else bool(ci.spec_matches)}

    @property
    def epochs_done(self) -> int:
        """Epochs trained, counting those of a loaded checkpoint."""
        e = ctypes.c_longlong()
        with self._lock:
            _check(self._lib.dino_model_progress(self._live(), ctypes.byref(e), None))
        return e.value


def _open(spec: PathLike, backend: str, precision: Optional[str], jacobian: str,
          settings: Optional[Mapping[str, object]]) -> Model:
    if backend not in _lib.BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: 'auto', 'cpu' or 'cuda'")
    if precision not in _lib.PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: None, 'f32' or 'f64'")
    if jacobian not in _lib.JACOBIANS:
        raise ValueError(f"unknown jacobian mode {jacobian!r}: 'auto', 'forward' or 'reverse'")
    s = _Spec(spec, settings)
    try:
        handle = ctypes.c_void_p()
        opts = _lib.OpenOptions(_lib.BACKENDS[backend], _lib.PRECISIONS[precision], _lib.JACOBIANS[jacobian])
        _check(s._lib.dino_model_open(s.handle, ctypes.byref(opts), ctypes.byref(handle)))
    except BaseException:
        s.close()
        raise
    try:
        return Model(s, handle)
    except BaseException:
        s._lib.dino_model_free(handle)
        s.close()
        raise


def load(spec: PathLike, checkpoint: Optional[PathLike] = None, backend: str = "auto", *,
         precision: Optional[str] = None, jacobian: str = "auto",
         settings: Optional[Mapping[str, object]] = None) -> Model:
    """Checks a spec, generates and compiles its code (cached) for a backend, and loads a
    checkpoint's parameters into it.

    spec: the .dino file. checkpoint: a safetensors file (None: the spec's initial parameters).
    backend: "auto" (the GPU when one is usable, else the CPU), "cpu" or "cuda". precision:
    None (the spec's training precision), "f32" or "f64". jacobian: "auto", "forward" or
    "reverse" mode. Raises SpecError for errors in the spec, DinoError for anything else."""
    model = _open(spec, backend, precision, jacobian, settings)
    if checkpoint is not None:
        try:
            model.load_checkpoint(checkpoint)
        except BaseException:
            model.close()
            raise
    return model
