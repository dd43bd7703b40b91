"""_errors.py - libdino's failures as Python exceptions, with the located message."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

from . import _lib


@dataclass(frozen=True)
class Diagnostic:
    """One error or note about a spec. line and column are 1-based (0: the whole file);
    [line:column, end_line:end_column) is the range the caret line underlines."""
    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    severity: str   # "error" or "note"
    message: str    # without the location, e.g. "unknown name 'h3'"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


class DinoError(Exception):
    """A failure reported by libdino. `status` is dino.h's status: 1 a user error (bad spec,
    data, file, setting, NaN loss), 2 an internal error. str() is libdino's message, the text
    dinoc and dino-jit print."""

    def __init__(self, message: str, status: int = _lib.EUSER):
        super().__init__(message)
        self.message = message
        self.status = status


class SpecError(DinoError, ValueError):
    """Errors in a spec. str() is every diagnostic as dinoc prints it (location, source line,
    caret); file, line and column locate the first error, and `diagnostics` has them all."""

    def __init__(self, message: str, diagnostics: List[Diagnostic], status: int = _lib.EUSER):
        super().__init__(message, status)
        self.diagnostics = diagnostics
        first = next((d for d in diagnostics if d.severity == "error"), diagnostics[0] if diagnostics else None)
        self.file: Optional[str] = first.file if first else None
        self.line: int = first.line if first else 0
        self.column: int = first.column if first else 0


_LOCATED = re.compile(r"^(.*?):(\d+):(\d+): (error|note): (.*)$")


def diagnostics_from_text(message: str) -> List[Diagnostic]:
    """The `file:line:col: error: message` lines of a complete diagnostic text."""
    out = []
    for line in message.splitlines():
        m = _LOCATED.match(line)
        if m:
            ln, col = int(m.group(2)), int(m.group(3))
            out.append(Diagnostic(m.group(1), ln, col, ln, col, m.group(4), m.group(5)))
    return out


def last_error(status: int) -> DinoError:
    """The exception for this thread's last libdino failure (dino_last_error)."""
    lib = _lib.lib()
    message = _lib.text(lib.dino_last_error())
    if lib.dino_last_error_is_complete():
        diags = diagnostics_from_text(message)
        if diags:
            return SpecError(message.rstrip("\n"), diags, status)
    return DinoError(message, status)


def check(status: int) -> None:
    """Raises the exception for a failing status."""
    if status != _lib.OK:
        raise last_error(status)
