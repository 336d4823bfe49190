"""User-facing errors. The CLI prints ``str(error)`` on one line and exits with ``exit_code``."""

from __future__ import annotations


class PhotokitError(Exception):
    """An expected failure the user can act on (bad input, missing file, missing model...)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        from photokit.pathtext import shown

        super().__init__(" ".join(shown(str(message)).split()))  # one printable line


class MissingModelError(PhotokitError):
    """A model file that a command needs is not installed; the message says how to install it."""


class DatabaseError(PhotokitError):
    """The library database cannot be opened, is locked, or is not a photokit database."""
