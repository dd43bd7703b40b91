"""_train.py - dino.train(): the runtime's training loop on a data folder or on arrays in memory,
with a per-epoch callback."""
from __future__ import annotations

import ctypes
import signal
import threading
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _lib
from ._errors import DinoError, check as _check
from ._model import Model, _open
from ._spec import PathLike

Arrays = Union[Mapping[str, np.ndarray], Sequence[np.ndarray]]
Callback = Callable[[Dict[str, float]], Optional[bool]]


class History(list):
    """The metrics of every epoch (a list of dicts, as the callback saw them), with:
    model: the trained Model (usable for prediction and save()); stopped: True when the callback
    stopped training early."""
    model: Model
    stopped: bool


def _arrays(data: Arrays, model: Model, which: str, keep: list) -> _lib.Arrays:
    """A dino_arrays over float64 C-order copies of x, y, J (or labels), kept alive in keep."""
    if isinstance(data, Mapping):
        unknown = set(data) - {"x", "y", "J", "labels"}
        if unknown:
            raise ValueError(f"the {which} arrays: unknown keys {sorted(unknown)} (x, y, J, labels)")
        x, y, J, labels = data.get("x"), data.get("y"), data.get("J"), data.get("labels")
    else:
        seq = list(data)
        if not 2 <= len(seq) <= 3:
            raise ValueError(f"the {which} arrays: (x, y) or (x, y, J), not {len(seq)} arrays")
        x, y = seq[0], seq[1]
        J = seq[2] if len(seq) == 3 else None
        labels = y if model.info.classifier else None
        y = None if model.info.classifier else y
    if x is None:
        raise ValueError(f"the {which} arrays need x")
    i, o = model.in_dim, model.out_dim

    def f64(a, name, shape):
        a = np.asarray(a)
        if a.dtype.kind != "f":
            raise TypeError(f"the {which} set's {name} must be float32 or float64, not {a.dtype}")
        if a.shape != shape:
            raise ValueError(f"the {which} set's {name} must have shape {list(shape)}, not {list(a.shape)}")
        a = np.ascontiguousarray(a, dtype=np.float64)
        keep.append(a)
        return a.ctypes.data

    xa = np.asarray(x)
    n = xa.shape[0] if xa.ndim == 2 else -1
    r = _lib.Arrays(n, f64(x, "x", (n, i)), None, None, None)
    if model.info.classifier:
        if labels is None:
            raise ValueError(f"the {which} set needs labels for the classifier")
        lab = np.asarray(labels)
        if lab.dtype.kind not in "iu" or lab.shape != (n,):
            raise TypeError(f"the {which} set's labels must be integers of shape [{n}], not {lab.dtype} {list(lab.shape)}")
        lab = np.ascontiguousarray(lab, dtype=np.intc)
        keep.append(lab)
        r.labels = lab.ctypes.data
    else:
        if y is None:
            raise ValueError(f"the {which} set needs y")
        r.y = f64(y, "y", (n, o))
        if J is not None:
            r.J = f64(J, "J", (n, o, i))
    return r


def _metrics(e: _lib.Epoch) -> Dict[str, float]:
    m = {"epoch": e.epoch, "epochs": e.epochs, "step": e.step, "seconds": e.seconds,
         "epoch_seconds": e.epoch_seconds, "lr": e.lr, "train_loss": e.train_loss}
    if e.has_rel_l2:
        m["rel_l2"] = e.rel_l2
    if e.has_rel_h1:
        m["rel_h1"] = e.rel_h1
    if e.has_accuracy:
        m["accuracy"] = e.accuracy
    return m


def train(spec: PathLike, data: Union[PathLike, Arrays, None] = None, epochs: Optional[int] = None,
          save: Optional[PathLike] = None, *, test: Optional[Arrays] = None,
          callback: Optional[Callback] = None, load: Optional[PathLike] = None,
          backend: str = "auto", precision: Optional[str] = None, batch: Optional[int] = None,
          lr: Optional[float] = None, seed: Optional[int] = None,
          settings: Optional[Mapping[str, object]] = None, log: Optional[PathLike] = None,
          on_message: Optional[Callable[[str, str], None]] = None) -> History:
    """Trains a spec's model, as `dino-jit` does, and returns the history of its epochs.

    data: a folder with the spec's data files (None: the spec's data section's folder), or
    arrays in memory: {"x": m [N, in], "y": q [N, out], "J": dq/dm [N, out, in]} (J optional
    unless the loss has an h1 term; a classifier takes "labels" [N]) or a tuple (x, y[, J]).
    With arrays, test= gives the test set in the same form (none: no test metrics).
    epochs, batch, lr, seed, precision ("f32"/"f64") and settings ({"key": value}, as
    `--set key=value`) override the spec's train section. save: the checkpoint written after
    each evaluation and at the end. load: a checkpoint to start from (a dino checkpoint
    resumes its training state). log: a CSV log.

    callback(metrics) is called after every epoch with a dict: epoch, epochs, step, seconds,
    epoch_seconds, lr, train_loss and, when evaluated, rel_l2, rel_h1 or accuracy. Returning
    False stops training (the history then has stopped = True); an exception raised in it stops
    training and is raised again. on_message(level, text) receives notes and warnings.

    Raises SpecError for errors in the spec, DinoError for bad data, a NaN loss, and the rest."""
    over = dict(settings or {})
    for key, value in (("epochs", epochs), ("batch", batch), ("lr", lr), ("seed", seed)):
        if value is not None:
            over[key] = value
    model = _open(spec, backend, precision, "auto", over)
    try:
        return _train(model, data, save, test, callback, load, log, on_message)
    except BaseException:
        model.close()
        raise


def _train(model: Model, data, save, test, callback, load, log, on_message) -> History:
    lib = model._lib
    handle = model._live()
    if load is not None:
        model.load_checkpoint(load)
    dh = ctypes.c_void_p()
    if data is None or isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        if test is not None:
            raise ValueError("test= goes with arrays in memory; a data folder is split as the spec says")
        _check(lib.dino_data_load(handle, _lib.path_bytes(data) if data is not None else None, ctypes.byref(dh)))
    else:
        keep: List[np.ndarray] = []
        tr = _arrays(data, model, "training", keep)
        te = _arrays(test, model, "test", keep) if test is not None else None
        _check(lib.dino_data_from_arrays(handle, ctypes.byref(tr), ctypes.byref(te) if te else None,
                                         ctypes.byref(dh)))
        lib.dino_data_allow_release(dh, 2)   # DINO_SET_TEST: arrays have no validation set
    # the data are freed after training: the reduced path may free the full-space rows once
    # projected (the test rows only without a validation set, as dino-jit)
    lib.dino_data_allow_release(dh, 0)   # DINO_SET_TRAIN
    lib.dino_data_allow_release(dh, 1)   # DINO_SET_VALID
    history = History()
    history.model = model
    history.stopped = False
    raised: List[BaseException] = []

    def on_epoch(e, _user):
        try:
            m = _metrics(e.contents)
            history.append(m)
            if callback is not None and callback(m) is False:
                history.stopped = True
                return 1
            return 0
        except BaseException as exc:   # stop, and raise it after dino_train returns
            raised.append(exc)
            return 1

    def on_msg(level, text, _user):
        if on_message is not None:
            try:
                on_message("warning" if level == 1 else "note", _lib.text(text))
            except BaseException as exc:
                raised.append(exc)
                lib.dino_request_stop(handle)

    interrupted: List[bool] = []

    def on_sigint(_sig, _frame):
        # Ctrl-C: Python runs this between two steps (in on_progress); training stops after
        # the step, saving when save= is set, and KeyboardInterrupt is raised after it.
        interrupted.append(True)
        lib.dino_request_stop(handle)

    def on_progress(_epoch, _step, _steps, _user):
        pass   # a point where Python runs pending signal handlers

    cb_epoch, cb_msg, cb_progress = _lib.ON_EPOCH(on_epoch), _lib.ON_MESSAGE(on_msg), _lib.ON_PROGRESS(on_progress)
    opts = _lib.TrainOptions(_lib.path_bytes(save) if save is not None else None,
                             _lib.path_bytes(log) if log is not None else None, 0, cb_epoch, cb_msg,
                             cb_progress, None)
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, on_sigint) if main else None
    try:
        with model._lock:
            st = lib.dino_train(handle, dh, ctypes.byref(opts))
    finally:
        if main:   # a handler installed outside Python reads as None: restore the default
            signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)
        lib.dino_data_free(dh)
    if interrupted:
        raise KeyboardInterrupt
    if raised:
        raise raised[0]
    if st == _lib.STOPPED:
        history.stopped = True
    elif st != _lib.OK:
        _check(st)
    if save is not None and st == _lib.OK:
        with model._lock:
            _check(lib.dino_model_save(handle, _lib.path_bytes(save)))
    return history
