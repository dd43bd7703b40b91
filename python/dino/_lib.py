"""_lib.py - libdino through ctypes: finding the shared library and declaring dino.h.

Nothing here is public. The structures mirror include/dino.h field for field; a change there
is a change here. The library is found, in this order, at $DINO_LIBRARY, beside this file (where
`pip install .` puts it), then wherever the system's loader finds `libdino.so.0`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int, c_longlong, c_size_t,
                    c_ulonglong, c_void_p)
from typing import Optional

# ---------------------------------------------------------------------------- dino.h's types

OK, EUSER, EINTERNAL, STOPPED = 0, 1, 2, 3

BACKENDS = {"auto": 0, "cpu": 1, "cuda": 2}
PRECISIONS = {None: 0, "spec": 0, "f32": 1, "f64": 2}
JACOBIANS = {"auto": 0, "forward": 1, "reverse": 2}
TARGETS = {"cuda": 0, "c": 1, "ptx": 2, "ir": 3, "ast": 4, "params": 5}
FUSES = {"auto": 0, "none": 1, "tiles": 2}


class Diagnostic(Structure):
    _fields_ = [("file", c_char_p), ("line", c_int), ("col", c_int), ("end_line", c_int),
                ("end_col", c_int), ("severity", c_int), ("message", c_char_p)]


class SpecInfo(Structure):
    _fields_ = [("name", c_char_p), ("input", c_char_p), ("output", c_char_p), ("in_dim", c_int),
                ("out_dim", c_int), ("n_params", c_longlong), ("classifier", c_int), ("f64", c_int),
                ("epochs", c_longlong), ("batch", c_int), ("hash", c_ulonglong), ("data_dir", c_char_p),
                ("out_times", c_int), ("out_step", c_int)]


class EmitOptions(Structure):
    _fields_ = [("precision", c_int), ("jacobian", c_int), ("fuse", c_int), ("no_share", c_int),
                ("arch", c_char_p)]


ON_MESSAGE = CFUNCTYPE(None, c_int, c_char_p, c_void_p)


class OpenOptions(Structure):
    # on_message: notes while opening (a damaged cache entry rebuilt); NULL here: dropped
    _fields_ = [("backend", c_int), ("precision", c_int), ("jacobian", c_int), ("on_message", ON_MESSAGE),
                ("user", c_void_p)]


class BackendInfo(Structure):
    _fields_ = [("backend", c_int), ("name", c_char_p), ("gpu_declined", c_char_p), ("gpu_failed", c_int),
                ("from_cache", c_int), ("f64", c_int)]


class CheckpointInfo(Structure):
    _fields_ = [("has_state", c_int), ("epoch", c_longlong), ("spec_matches", c_int)]


class Arrays(Structure):
    _fields_ = [("n", c_longlong), ("x", c_void_p), ("y", c_void_p), ("J", c_void_p), ("labels", c_void_p)]


class Epoch(Structure):
    _fields_ = [("epoch", c_longlong), ("epochs", c_longlong), ("step", c_longlong), ("seconds", c_double),
                ("epoch_seconds", c_double), ("lr", c_double), ("train_loss", c_double), ("evaluated", c_int),
                ("has_rel_l2", c_int), ("has_rel_h1", c_int), ("has_accuracy", c_int), ("rel_l2", c_double),
                ("rel_h1", c_double), ("accuracy", c_double), ("line", c_char_p)]


ON_EPOCH = CFUNCTYPE(c_int, POINTER(Epoch), c_void_p)
ON_PROGRESS = CFUNCTYPE(None, c_longlong, c_longlong, c_longlong, c_void_p)


class TrainOptions(Structure):
    _fields_ = [("save", c_char_p), ("log", c_char_p), ("until", c_longlong), ("on_epoch", ON_EPOCH),
                ("on_message", ON_MESSAGE), ("on_progress", ON_PROGRESS), ("user", c_void_p)]


# ---------------------------------------------------------------------------- the functions

_P = c_void_p  # opaque handles and arrays are passed as addresses
_SIGNATURES = {
    "dino_version": (c_char_p, []),
    "dino_last_error": (c_char_p, []),
    "dino_last_error_is_complete": (c_int, []),
    "dino_free": (None, [_P]),
    "dino_spec_load": (c_int, [c_char_p, POINTER(_P)]),
    "dino_spec_from_text": (c_int, [c_char_p, c_char_p, c_size_t, POINTER(_P)]),
    "dino_spec_free": (None, [_P]),
    "dino_spec_diagnostic_count": (c_size_t, [_P]),
    "dino_spec_diagnostic": (POINTER(Diagnostic), [_P, c_size_t]),
    "dino_spec_error_count": (c_int, [_P]),
    "dino_spec_diagnostics_text": (c_char_p, [_P]),
    "dino_spec_info_get": (c_int, [_P, POINTER(SpecInfo)]),
    "dino_spec_set": (c_int, [_P, c_char_p, c_char_p]),
    "dino_generate": (c_int, [_P, c_int, POINTER(EmitOptions), POINTER(c_void_p), POINTER(c_size_t)]),
    "dino_model_open": (c_int, [_P, POINTER(OpenOptions), POINTER(_P)]),
    "dino_model_free": (None, [_P]),
    "dino_model_backend": (c_int, [_P, POINTER(BackendInfo)]),
    "dino_model_progress": (c_int, [_P, POINTER(c_longlong), POINTER(c_longlong)]),
    "dino_model_save": (c_int, [_P, c_char_p]),
    "dino_model_load": (c_int, [_P, c_char_p, POINTER(CheckpointInfo)]),
    "dino_data_load": (c_int, [_P, c_char_p, POINTER(_P)]),
    "dino_data_from_arrays": (c_int, [_P, POINTER(Arrays), POINTER(Arrays), POINTER(_P)]),
    "dino_data_rows": (c_int, [_P, POINTER(c_longlong), POINTER(c_longlong), POINTER(c_int)]),
    "dino_data_allow_release": (c_int, [_P, c_int]),
    "dino_data_free": (None, [_P]),
    "dino_train": (c_int, [_P, _P, POINTER(TrainOptions)]),
    "dino_request_stop": (None, [_P]),
    "dino_predict": (c_int, [_P, c_longlong, _P, _P, _P]),
    "dino_predict_f32": (c_int, [_P, c_longlong, _P, _P, _P]),
    "dino_jvp": (c_int, [_P, c_longlong, _P, _P, _P, _P]),
    "dino_vjp": (c_int, [_P, c_longlong, _P, _P, _P, _P]),
    "dino_model_reduced_dims": (c_int, [_P, POINTER(c_int), POINTER(c_int)]),
    "dino_predict_reduced": (c_int, [_P, c_longlong, _P, _P, _P]),
}

_lib: Optional[ctypes.CDLL] = None
_lock = threading.Lock()


def _candidates() -> list:
    env = os.environ.get("DINO_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(f for f in os.listdir(here) if f.startswith("libdino.so"))
    paths = [os.path.join(here, f) for f in found]
    system = ctypes.util.find_library("dino")
    paths += [system] if system else []
    return paths + ["libdino.so.0"]


def lib() -> ctypes.CDLL:
    """The loaded libdino, declared (loaded on first use, so that `import dino` never fails)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path in _candidates():
            try:
                handle = ctypes.CDLL(path)
                break
            except OSError as e:
                tried.append(f"{path}: {e}")
        else:
            raise OSError("libdino was not found (set DINO_LIBRARY to its path, or `pip install .` "
                          "from the repository); tried " + "; ".join(tried))
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(handle, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _lib = handle
        return _lib


def text(b: Optional[bytes]) -> str:
    return b.decode("utf-8", "replace") if b is not None else ""


def path_bytes(p) -> bytes:
    return os.fsencode(os.fspath(p))
