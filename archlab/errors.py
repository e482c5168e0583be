"""The one base class of every error archlab raises for bad *user* input.

The CLI turns exactly these into ``archlab VERB: error: <message>`` with exit code 2; anything
else that escapes a verb is a bug and keeps its traceback. Each subclass also derives from the
built-in exception a Python caller would expect (``ValueError``, ``FileNotFoundError``, ...), so
``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ArchlabError",
    "UsageError",
    "DataError",
    "MissingDependencyError",
    "OutputConflictError",
]


class ArchlabError(Exception):
    """Base of every user-facing archlab error; its message names the problem and the value."""


class UsageError(ArchlabError, ValueError):
    """Bad command-line or API input (an option out of range, an unknown name, ...)."""


class DataError(ArchlabError, ValueError):
    """An image dataset that is missing, empty, wrongly laid out or corrupt."""


class MissingDependencyError(ArchlabError, ImportError):
    """An optional library is needed for this feature; the message says how to install it."""


class OutputConflictError(ArchlabError, FileExistsError):
    """Writing an output would destroy a file that is not archlab's to replace, or one in use."""
