"""ORM models. The schema is created and evolved only by the Alembic scripts in ``migrations/``.

One ``Photo`` per distinct content (sha256); every place that content lives is a ``PhotoLocation``
(duplicates = one photo, several locations). Files that could not be read are ``SkippedFile`` rows.
Faces belong to photos; people group faces. ``EnhanceJob`` rows are the job queue of heavy work (album
restoration, prior builds, face detection) that workers claim with a lease (``photokit.jobs``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from photokit.pathtext import from_db, to_db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class PathText(TypeDecorator):
    """A file path: any str ``os.fsdecode`` can give (non-UTF-8 names included), kept as reversible text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else to_db(value)

    def process_result_value(self, value, dialect):
        return None if value is None else from_db(value)


class Base(DeclarativeBase):
    pass


class LibraryInfo(Base):
    """Facts about this library; ``library_id`` (a UUID made when the database was created) lets files kept
    outside the database (personal priors) prove they belong to it."""

    __tablename__ = "library_info"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Photo(Base):
    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)  # after EXIF orientation
    height: Mapped[int] = mapped_column(Integer)
    orientation: Mapped[int | None] = mapped_column(Integer, nullable=True)  # EXIF tag 274
    taken_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    camera_make: Mapped[str | None] = mapped_column(String(128), nullable=True)
    camera_model: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Face processing state: 'pending' until detection ran, then 'done' or 'failed'.
    faces_status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    faces_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    locations: Mapped[list[PhotoLocation]] = relationship(back_populates="photo", cascade="all, delete-orphan")
    faces: Mapped[list[Face]] = relationship(back_populates="photo", cascade="all, delete-orphan")


class PhotoLocation(Base):
    """A path where a photo's content was seen. Rows are never deleted: a file that disappeared is
    ``status='missing'`` (with ``missing_since``); one whose content turned up elsewhere is
    ``'moved'`` and the new location names it in ``moved_from``."""

    __tablename__ = "photo_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(PathText, unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="present", index=True)  # present|missing|moved
    first_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    missing_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    moved_from: Mapped[str | None] = mapped_column(PathText, nullable=True)

    photo: Mapped[Photo] = relationship(back_populates="locations")


class SkippedFile(Base):
    """A file the scan could not use (corrupt, truncated, empty, not an image), with the reason."""

    __tablename__ = "skipped_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(PathText, unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32), index=True)  # empty|not_image|corrupt|truncated|unreadable
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ScanRun(Base):
    """History of scans: when, which roots, and the summary counts."""

    __tablename__ = "scan_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    roots: Mapped[list] = mapped_column(JSON, default=list)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    ignored: Mapped[bool] = mapped_column(Boolean, default=False)
    cover_face_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    faces: Mapped[list[Face]] = relationship(back_populates="person")


class Face(Base):
    """One detected face. Geometry is in the photo's pixel coordinates after EXIF orientation."""

    __tablename__ = "faces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    detector: Mapped[str] = mapped_column(String(16))  # mtcnn|hog
    box: Mapped[list] = mapped_column(JSON)  # [x0, y0, x1, y1]
    score: Mapped[float] = mapped_column(Float)
    landmarks5: Mapped[list | None] = mapped_column(JSON, nullable=True)  # 5 x [x, y]
    landmarks68: Mapped[list | None] = mapped_column(JSON, nullable=True)  # 68 x [x, y]
    alignment: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # FaceAlignment.to_json()
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # float32[kind's dimension]
    # Which network described the face (photokit.faces.vocab.DescriptorKind; ``embedding`` None: it failed).
    # Unnamed, it is dlib's, like every descriptor stored before the kind was recorded (migration 0010).
    descriptor_kind: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True, default="dlib128")
    size_px: Mapped[float] = mapped_column(Float, default=0.0)
    blur: Mapped[float | None] = mapped_column(Float, nullable=True)  # variance of Laplacian
    is_gray: Mapped[bool] = mapped_column(Boolean, default=False)
    yaw: Mapped[float | None] = mapped_column(Float, nullable=True)  # degrees, from landmarks
    # Why this face is kept out of clustering (None = it takes part): 'small', 'low_score', 'no_embedding'.
    cluster_exclusion: Mapped[str | None] = mapped_column(String(32), nullable=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # 'auto' = clustering put it there; 'user' = a person decided (never undone automatically).
    assigned_by: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # The user said "not this person": the face stays unassigned and is never auto-assigned again.
    user_rejected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    photo: Mapped[Photo] = relationship(back_populates="faces")
    person: Mapped[Person | None] = relationship(back_populates="faces")


class DismissedSuggestion(Base):
    """A suggestion the user said no to, so `people suggest` stops making it: ``kind`` 'merge' (``person_id``
    and ``other_person_id`` are two people, the smaller id first) or 'move' (``face_id`` is not ``person_id``).
    Deleting a person or a face deletes what was dismissed about it."""

    __tablename__ = "dismissed_suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # photokit.faces.vocab.SuggestionKind
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    other_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), nullable=True, index=True
    )
    face_id: Mapped[int | None] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EnhanceJob(Base):
    """One job of a batch: queued, running (held by ``worker`` until ``lease_expires_at``), done (with its
    output) or failed (with the reason). ``kind`` says what it is (``photokit.jobs.JobKind``); for album
    restoration ``source_path`` is the photo, for other kinds the job's subject (a person, a photo id)."""

    __tablename__ = "enhance_jobs"
    __table_args__ = (
        UniqueConstraint("batch_key", "source_path", name="uq_enhance_job"),
        Index("ix_enhance_jobs_claim", "batch_key", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_key: Mapped[str] = mapped_column(String(64), index=True)  # hash of (inputs, output dir, options)
    source_path: Mapped[str] = mapped_column(PathText)
    output_path: Mapped[str | None] = mapped_column(PathText, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued|running|done|failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    report: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="enhance", server_default="enhance")
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class BackgroundJob(Base):
    """Long work started from the web gallery (a prior build, an album restoration). A server restart finds
    ``queued``/``running`` rows and runs them again; the work itself resumes (EnhanceJob rows, prior
    checkpoints). ``cancel_requested`` is the flag the worker checks between units of work."""

    __tablename__ = "background_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # restore_album|prior_build
    title: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    # queued|running|done|failed|cancelled
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress_done: Mapped[float] = mapped_column(Float, default=0.0)
    progress_total: Mapped[float | None] = mapped_column(Float, nullable=True)
    stage: Mapped[str | None] = mapped_column(Text, nullable=True)  # what the current progress counts
    notes: Mapped[list] = mapped_column(JSON, default=list)  # [[level, sentence], ...]: estimates, warnings
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
