"""The closed vocabularies stored in the library database. ``StrEnum`` members are their stored strings,
so rows written before these types existed (and plain-string comparisons) keep working."""

from __future__ import annotations

from enum import StrEnum


class FacesStatus(StrEnum):
    """``Photo.faces_status``: where a photo is in face detection."""

    PENDING = "pending"  # not processed yet, or a transient failure to retry
    DONE = "done"
    FAILED = "failed"  # a lasting failure (``Photo.faces_error`` says why)


class AssignedBy(StrEnum):
    """``Face.assigned_by``: who put a face in its person."""

    AUTO = "auto"  # clustering; a recluster may move it
    USER = "user"  # the user; never changed automatically


class JobStatus(StrEnum):
    """``EnhanceJob.status``: one photo of a restoration batch."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"  # nothing to restore (no faces)
    FAILED = "failed"


class LocationStatus(StrEnum):
    """``PhotoLocation.status``: whether a file of a photo is still where it was found."""

    PRESENT = "present"
    MISSING = "missing"
    MOVED = "moved"
