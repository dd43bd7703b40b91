"""_ext.py - finding the package's C extension, dino._fast (python/dino/_fast.c).

It is looked for at $DINO_EXTENSION, in the package (where `pip install .` puts it), then beside
$DINO_LIBRARY (a build folder: the CMake build makes it there). Without it the package works
through ctypes, a few microseconds slower per call, and `import dino` says so with a
RuntimeWarning; DINO_NO_EXTENSION=1 chooses the ctypes path without a warning.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import warnings
from types import ModuleType
from typing import Optional, Tuple


def _from_file(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("dino._fast", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _find() -> Tuple[Optional[ModuleType], str]:
    """(the module, its file) or (None, why not)."""
    if os.environ.get("DINO_NO_EXTENSION"):
        return None, "DINO_NO_EXTENSION is set"
    path = os.environ.get("DINO_EXTENSION")
    if path:
        try:
            return _from_file(path), path
        except (ImportError, OSError) as e:
            return None, f"DINO_EXTENSION={path} does not load: {e}"
    try:
        module = importlib.import_module("dino._fast")
        return module, getattr(module, "__file__", "dino._fast")
    except ImportError as e:
        why = f"dino._fast does not import: {e}"
    library = os.environ.get("DINO_LIBRARY")
    if library:
        folder = os.path.dirname(os.path.abspath(library))
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = os.path.join(folder, "_fast" + suffix)
            if os.path.exists(candidate):
                try:
                    return _from_file(candidate), candidate
                except (ImportError, OSError) as e:
                    return None, f"{candidate} does not load: {e}"
        why += f"; none beside DINO_LIBRARY in {folder}"
    return None, why


module, where = _find()
if module is None and not os.environ.get("DINO_NO_EXTENSION"):
    warnings.warn(f"dino: the C extension is not available ({where}); predictions go through ctypes, "
                  "a few microseconds slower per call", RuntimeWarning, stacklevel=2)
