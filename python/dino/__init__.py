"""dino: trained DINO surrogates and neural ODEs from Python, over libdino (include/dino.h).

    import dino
    model = dino.load("spec.dino", "model.safetensors")     # checks, compiles (cached), loads
    q = model(m)                        # m [B, in] -> [B, out]   (or one sample [in] -> [out])
    q, J = model.value_and_jacobian(m)  # J [B, out, in]
    Jv, JTw = model.jvp(m, v), model.vjp(m, w)
    history = dino.train("spec.dino", data="DIR", epochs=100, save="model.safetensors")

Importing needs no GPU and no compiler; libdino is loaded on first use. Errors are raised as
DinoError, and errors in a spec as SpecError with file, line and column. See docs/python.md.
"""
from . import _ext
from ._errors import DinoError, Diagnostic, SpecError
from ._model import Model, load
from ._spec import SpecInfo, check, compile
from ._train import History, train

__version__ = "0.1.0"

#: The file of the C extension (dino._fast) that predictions go through, or None when the package
#: works through ctypes alone (import said why in a RuntimeWarning, unless DINO_NO_EXTENSION).
extension = _ext.where if _ext.module is not None else None


def library_version() -> str:
    """The version of the libdino that is loaded ("MAJOR.MINOR.PATCH")."""
    from . import _lib
    return _lib.text(_lib.lib().dino_version())


__all__ = ["load", "train", "check", "compile", "Model", "History", "SpecInfo", "DinoError", "SpecError",
           "Diagnostic", "library_version", "extension", "__version__"]
