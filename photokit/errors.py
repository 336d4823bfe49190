"""User-facing errors. The CLI prints ``str(error)`` on one line and exits with ``exit_code``."""

from __future__ import annotations

from enum import StrEnum


class Remedy(StrEnum):
    """What the user can do about an error. The CLI (or the web app) turns it into its own words, so
    library messages never name a command-line flag."""

    REBUILD_PRIOR = "rebuild_prior"  # the stored prior must be rebuilt from scratch
    BUILD_PRIOR = "build_prior"  # the person has no prior yet
    RESTART = "restart"  # unfinished work cannot be resumed with these options: start over
    OTHER_DEVICE = "other_device"  # the asked-for accelerator is not there
    INSTALL_OR_MSE_LOSS = "install_or_mse_loss"  # a loss backbone is missing: install it, or use MSE
    SMALLER_SCALE = "smaller_scale"  # the output would be too large
    INSTALL_FROM_FILE = "install_from_file"  # a model must be installed from a file the user has
    INSTALL_MODEL = "install_model"  # an optional model is missing or damaged: (re)install it
    FORCE_RECLUSTER = "force_recluster"  # a recluster would remove most people: check the options, or force it
    LIST_PEOPLE = "list_people"  # an unknown person: the full list of people says who exists
    SHOW_PERSON_FACES = "show_person_faces"  # an unknown face: a person's page lists their face ids
    MERGE_PEOPLE = "merge_people"  # the name belongs to another person: merge the two instead
    SCAN_LIBRARY = "scan_library"  # the library has no people (or no file for a face) yet: scan first
    FEWER_HELD_OUT = "fewer_held_out"  # too few faces for this many held out: hold out fewer, or add photos
    INSTALL_GENERATOR = "install_generator"  # no face generator is installed
    UPGRADE_DATABASE = "upgrade_database"  # the library's schema is older than this photokit
    UPGRADE_DATABASE_AS_WRITER = "upgrade_database_as_writer"  # ... and this user may not write it
    INSTALL_DIRECTION = "install_direction"  # an unknown model name: an edit direction installs from a file
    OTHER_LIBRARY = "other_library"  # the database file belongs to something else: point at another library


class PhotokitError(Exception):
    """An expected failure the user can act on (bad input, missing file, missing model...)."""

    exit_code = 2
    remedy: Remedy | None = None

    def __init__(self, message: str, remedy: Remedy | None = None, **context: object) -> None:
        from photokit.pathtext import shown

        super().__init__(" ".join(shown(str(message)).split()))  # one printable line
        if remedy is not None:
            self.remedy = remedy
        self.context = context  # what the remedy needs (a person id, a model name)


class MissingModelError(PhotokitError):
    """A model file that a command needs is not installed; the message says how to install it."""


class DatabaseError(PhotokitError):
    """The library database cannot be opened, is locked, or is not a photokit database."""
