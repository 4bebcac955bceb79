"""The domain errors of collapse-guard, in one place.

Every user mistake raises one of these with a message that says what to fix. The service maps them
to HTTP status codes in a single exception handler and the CLI to one line and an exit code, so
nothing above the numeric layers needs to know which function raised.
"""

from __future__ import annotations


class CollapseGuardError(Exception):
    """Base class of every error collapse-guard raises on purpose."""


class InvalidInputError(CollapseGuardError, ValueError):
    """The caller passed something the function cannot use (wrong type, shape, or value)."""


class EmptyCorpusError(InvalidInputError):
    """A corpus with no documents, or a document with no text."""


class DimensionMismatchError(InvalidInputError):
    """Vectors whose dimension differs from the reference or model they are used with."""


class InsufficientDataError(InvalidInputError):
    """Too few documents for the requested computation; the message states the minimum."""


class ModelNotFoundError(CollapseGuardError):
    """The configured embedding model cannot be loaded from local files."""


class ReferenceMismatchError(CollapseGuardError):
    """A stored reference was built with another embedding model or dimension."""


class CorruptReferenceError(CollapseGuardError):
    """A stored reference is missing files or its files disagree with each other."""


class NotFittedError(CollapseGuardError):
    """An estimator was used before `fit` was called."""
