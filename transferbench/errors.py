"""User-facing errors.

Anything the user can fix (a wrong name, a bad file, a bad option) is raised as
:class:`UserError`. The CLI prints its one-line message and exits with status 2, so a
mistake never surfaces as a traceback from deep inside torch or datasets.
"""

from __future__ import annotations


class UserError(Exception):
    """An error in the user's input: names the file/option/field and what was expected."""


class DataError(UserError):
    """A data file or folder is missing, empty, corrupt or inconsistent."""


class WeightsError(UserError):
    """A weights file is missing, unsafe, or does not fit the architecture."""
