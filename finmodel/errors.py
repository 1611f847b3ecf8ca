"""The exception tree: every error finmodel raises on purpose is a FinmodelError."""

from __future__ import annotations


class FinmodelError(Exception):
    """Base of every error raised by finmodel."""


class InputError(FinmodelError):
    """A case file or an input value is missing, malformed or out of bounds.

    The message names the file (when there is one), the field path, the value given and
    what was expected.
    """


class ModelError(FinmodelError):
    """A model definition is inconsistent (a programming error in a business module)."""


class SolverError(FinmodelError):
    """A scalar solver found no root in its bracket or did not converge."""


class ExportError(FinmodelError):
    """A workbook or JSON file could not be written."""
