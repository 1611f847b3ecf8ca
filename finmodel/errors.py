"""The exception tree: every error finmodel raises on purpose is a FinmodelError; and how a
value is shown in a message (short, no control characters)."""

from __future__ import annotations

import re
from typing import Any

#: Longest repr of a value a message quotes; the rest is elided with its length.
SHOWN_CHARS = 60
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class FinmodelError(Exception):
    """Base of every error raised by finmodel."""


class InputError(FinmodelError, ValueError):
    """A case file or an input value is missing, malformed or out of bounds.

    The message names the file (when there is one), the field path or argument, the value
    given and what was expected. A ``ValueError``, so callers that catch bad values catch it.
    """


class ModelError(FinmodelError):
    """A model definition is inconsistent (a programming error in a business module)."""


class SolverError(FinmodelError):
    """A scalar solver found no root in its bracket or did not converge."""


class ExportError(FinmodelError):
    """A workbook or JSON file could not be written."""


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for a message: at most ``limit`` characters, the rest elided."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        text = f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    if len(text) > limit:
        text = f"{text[:limit - 1]}…({len(text)} chars)"
    return escape_controls(text)


def escape_controls(text: str) -> str:
    """``text`` with control characters (terminal escapes, bidi overrides) as ``\\xNN`` /
    ``\\uNNNN``, so printing it cannot drive the terminal. Newlines and tabs stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                        else f"\\u{ord(m.group()):04x}", text)


def shown_name(name: Any, limit: int = 120) -> str:
    """A field path or key for a message: as written when it is a short string, else as
    :func:`shown` gives it."""
    if isinstance(name, str) and len(name) <= limit:
        return escape_controls(name)
    return shown(name, limit)
