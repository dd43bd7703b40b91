"""_spec.py - specs: load and check (dino_spec_load), settings, information, generated code."""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Union

from . import _lib
from ._errors import DinoError, Diagnostic, SpecError, check as _check

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class SpecInfo:
    """What a checked spec describes (dino.h's dino_spec_info)."""
    path: str
    name: str             # the model's name
    input: str            # the input's name
    output: str           # the output's name
    in_dim: int
    out_dim: int          # dim(output), or the number of classes
    n_params: int         # elements of the flat parameter vector
    classifier: bool      # cross-entropy on labels, no Jacobian
    precision: str        # "f32" or "f64": the training precision
    epochs: int
    batch: int
    hash: int             # of the spec's text; checkpoints record it
    data_dir: Optional[str]  # the data section's folder, resolved; None when the spec names none
    out_times: int = 0    # a trajectory output (an ode block with `save`): T saved times, out_dim = T x out_step
    out_step: int = 0     # dim(output) at one saved time


def _diagnostics(lib, handle) -> List[Diagnostic]:
    out = []
    for i in range(lib.dino_spec_diagnostic_count(handle)):
        d = lib.dino_spec_diagnostic(handle, i).contents
        out.append(Diagnostic(_lib.text(d.file), d.line, d.col, d.end_line, d.end_col,
                              "note" if d.severity == 1 else "error", _lib.text(d.message)))
    return out


class _Spec:
    """An owned dino_spec handle: checked, with settings applied. Freed by close()."""

    def __init__(self, spec: PathLike, settings: Optional[Mapping[str, object]] = None):
        lib = _lib.lib()
        self._lib = lib
        self.path = os.fspath(spec)
        handle = ctypes.c_void_p()
        status = lib.dino_spec_load(_lib.path_bytes(spec), ctypes.byref(handle))
        if status != _lib.OK:
            if not handle:
                _check(status)
            try:
                diags = _diagnostics(lib, handle)
                text = _lib.text(lib.dino_spec_diagnostics_text(handle)).rstrip("\n")
                if not diags:   # the file could not be read: dino_last_error says why
                    raise DinoError(_lib.text(lib.dino_last_error()) or text, status)
                raise SpecError(text, diags, status)
            finally:
                lib.dino_spec_free(handle)
        self.handle: Optional[ctypes.c_void_p] = handle
        try:
            for key, value in (settings or {}).items():
                if value is None:
                    continue
                _check(lib.dino_spec_set(handle, str(key).encode(), str(value).encode()))
        except BaseException:
            self.close()
            raise

    def info(self) -> SpecInfo:
        i = _lib.SpecInfo()
        _check(self._lib.dino_spec_info_get(self.handle, ctypes.byref(i)))
        return SpecInfo(self.path, _lib.text(i.name), _lib.text(i.input), _lib.text(i.output), i.in_dim,
                        i.out_dim, i.n_params, bool(i.classifier), "f64" if i.f64 else "f32", i.epochs, i.batch,
                        i.hash, _lib.text(i.data_dir) if i.data_dir else None, i.out_times, i.out_step)

    def close(self) -> None:
        if self.handle:
            self._lib.dino_spec_free(self.handle)
            self.handle = None


def check(spec: PathLike, settings: Optional[Mapping[str, object]] = None) -> SpecInfo:
    """Parses and checks a spec file, as `dinoc --check` does.

    Returns what the spec describes; raises SpecError (with file, line, column and every
    diagnostic) when it has errors, DinoError when it can't be read or a setting is bad.
    settings: overrides of the train section, as `dino-jit --set key=value` (epochs, batch, lr,
    seed, precision, ...)."""
    s = _Spec(spec, settings)
    try:
        return s.info()
    finally:
        s.close()


def compile(spec: PathLike, target: str = "c", *, precision: Optional[str] = None, jacobian: str = "auto",
            fuse: str = "auto", arch: Optional[str] = None, out: Optional[PathLike] = None) -> str:
    """Generates a target's text for a spec, as `dinoc` does, and returns it (also written to
    `out` when given).

    target: "c" (the CPU backend's C), "cuda" (stand-alone CUDA for NVRTC), "ptx" (needs NVRTC;
    arch such as "sm_90"), "ir", "ast" or "params". precision: None (the spec's), "f32", "f64".
    jacobian: "auto", "forward", "reverse". fuse (CUDA, PTX): "auto", "none", "tiles"."""
    if target not in _lib.TARGETS:
        raise ValueError(f"unknown target {target!r}: one of {', '.join(_lib.TARGETS)}")
    if precision not in _lib.PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: None, 'f32' or 'f64'")
    if jacobian not in _lib.JACOBIANS:
        raise ValueError(f"unknown jacobian mode {jacobian!r}: one of {', '.join(_lib.JACOBIANS)}")
    if fuse not in _lib.FUSES:
        raise ValueError(f"unknown fuse mode {fuse!r}: one of {', '.join(_lib.FUSES)}")
    s = _Spec(spec)
    try:
        lib = s._lib
        opts = _lib.EmitOptions(_lib.PRECISIONS[precision], _lib.JACOBIANS[jacobian], _lib.FUSES[fuse], 0,
                                arch.encode() if arch else None)
        ptr, n = ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.dino_generate(s.handle, _lib.TARGETS[target], ctypes.byref(opts), ctypes.byref(ptr),
                                 ctypes.byref(n)))
        try:
            result = ctypes.string_at(ptr, n.value).decode("utf-8", "replace")
        finally:
            lib.dino_free(ptr)
    finally:
        s.close()
    if out is not None:
        with open(out, "w", encoding="utf-8") as f:
            f.write(result)
    return result
