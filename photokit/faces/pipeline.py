"""Faces for the library: detect and measure faces on pending photos, store them, cluster them.

Each photo is committed on its own, so Ctrl-C loses at most the photo being processed and the
next run continues with the photos still ``pending``. Faces are described by the library's active
descriptor kind; faces described by another (after a switch) are described again before clustering
(``descriptors.refresh_descriptors``, resumable the same way).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field

import cv2
from sqlalchemy import select
from sqlalchemy.orm import Session

from photokit.db import Database
from photokit.db.models import Face, Photo
from photokit.db.vocab import AssignedBy, FacesStatus
from photokit.errors import PhotokitError
from photokit.faces.analyze import DetectedFace, FaceAnalyzer, FaceConfig
from photokit.faces.assignment import ClusterStats, cluster_faces
from photokit.faces.cluster_config import ClusterConfig
from photokit.faces.descriptors import (
    DescriptorRefresh,
    active_kind,
    refresh_descriptors,
    set_active_kind,
    stale_photo_ids,
)
from photokit.faces.models import require_facenet_weights
from photokit.faces.people import embedding_to_bytes, photo_path
from photokit.faces.quality import box_iou
from photokit.faces.vocab import DescriptorKind
from photokit.library.images import ImageReadError
from photokit.reporting import NULL_REPORTER, Reporter, format_duration, reported_task

# Measured: 79 photos of ../shared/data/faces in 14 s (+3 s model loading) on 2 idle cores (bench_faces).
CPU_SECONDS_PER_PHOTO = 0.2
MAX_REPORTED_ERRORS = 100  # per run, in the summary; every failure stays in Photo.faces_error
KEEP_ID_IOU = 0.5  # a re-detected face keeps its id (and person) when its box overlaps the old one this much


def _fill(row: Face, face: DetectedFace, detector: str) -> None:
    row.detector = detector
    row.box = [float(v) for v in face.box]
    row.score = float(face.score)
    row.landmarks5 = None if face.landmarks5 is None else face.landmarks5.round(2).tolist()
    row.landmarks68 = None if face.landmarks68 is None else face.landmarks68.round(2).tolist()
    row.alignment = None if face.alignment is None else face.alignment.to_json()
    row.embedding = None if face.embedding is None else embedding_to_bytes(face.embedding)
    row.descriptor_kind = str(face.descriptor_kind)
    row.size_px = float(face.size_px)
    row.blur = face.blur
    row.is_gray = bool(face.is_gray)
    row.yaw = face.yaw
    row.cluster_exclusion = face.cluster_exclusion


def store_faces(session: Session, photo: Photo, faces: list[DetectedFace], detector: str) -> dict:
    """Replace a photo's faces with ``faces``, keeping the id (and person) of faces found again.

    A new face matches the old face it overlaps most (IoU > 0.5, greedy, best pairs first). Old
    faces not found again are deleted unless the user assigned them to a person.
    """
    old = list(photo.faces)
    pairs = sorted(
        ((box_iou(o.box, f.box), i, j) for i, o in enumerate(old) for j, f in enumerate(faces)), reverse=True
    )
    matched_old: dict[int, int] = {}
    matched_new: set[int] = set()
    for iou, i, j in pairs:
        if iou <= KEEP_ID_IOU:
            break
        if i in matched_old or j in matched_new:
            continue
        matched_old[i] = j
        matched_new.add(j)
    stats = {"kept": 0, "added": 0, "removed": 0}
    for i, row in enumerate(old):
        if i in matched_old:
            _fill(row, faces[matched_old[i]], detector)
            if row.cluster_exclusion is not None and row.assigned_by == AssignedBy.AUTO:
                row.person_id, row.assigned_by = None, None  # no longer good enough to be clustered
            stats["kept"] += 1
        elif row.assigned_by != AssignedBy.USER:
            session.delete(row)
            stats["removed"] += 1
    for j, face in enumerate(faces):
        if j not in matched_new:
            row = Face(photo_id=photo.id, user_rejected=False)
            _fill(row, face, detector)
            session.add(row)
            stats["added"] += 1
    return stats


def _read_photo(session: Session, photo: Photo):
    """The photo's file, opened but not decoded: the analyzer decodes it at the (reduced) sizes it needs."""
    from photokit.library.pixels import PhotoPixels

    path = photo_path(session, photo.id)
    if path is None:
        raise ImageReadError(f"photo {photo.id}", "missing", "none of its files is present")
    return path, PhotoPixels.open(path)


def _is_transient(exc: BaseException) -> bool:
    """Failures that may go away (an unplugged drive, a permission fixed later, memory): retry next scan."""
    if isinstance(exc, ImageReadError):
        return exc.reason in ("missing", "unreadable")
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


# What one bad photo may raise (unreadable now, too large, a model error): it must not stop the library.
PHOTO_ERRORS = (PhotokitError, MemoryError, RuntimeError, ValueError, cv2.error)


def detect_photo(session: Session, photo: Photo, analyzer: FaceAnalyzer, detector: str) -> tuple[str, int, dict]:
    """Detect, describe and store one photo's faces: (its path, faces found, kept/added/removed counts).
    Raises ``PHOTO_ERRORS``; ``record_photo_failure`` records them."""
    path, rgb = _read_photo(session, photo)
    faces = analyzer.analyze(rgb)
    counts = store_faces(session, photo, faces, detector)
    photo.faces_status, photo.faces_error = FacesStatus.DONE, None
    return path, len(faces), counts


def record_photo_failure(photo: Photo, exc: BaseException) -> bool:
    """Transient causes stay 'pending' so the next scan tries again; the rest are 'failed'. True if transient."""
    transient = _is_transient(exc)
    photo.faces_status = FacesStatus.PENDING if transient else FacesStatus.FAILED
    photo.faces_error = " ".join(str(exc).split()) or type(exc).__name__
    return transient


@dataclass
class FaceRunSummary:
    """What one pass of face detection and clustering did."""

    photos: int  # photos it looked at
    detector: str
    done: int = 0
    failed: int = 0
    retry_later: int = 0  # transient failures: still pending, tried again next run
    faces: int = 0
    kept: int = 0  # faces found again (id and person kept)
    added: int = 0
    removed: int = 0
    errors: list[dict] = field(default_factory=list)  # the first MAX_REPORTED_ERRORS {photo_id, error}
    device: str | None = None
    workers: int | None = None  # Ray workers (`scan --ray`); None: this process
    load_seconds: float = 0.0
    detect_seconds: float = 0.0
    cluster_seconds: float = 0.0
    seconds: float = 0.0
    clustering: ClusterStats = field(default_factory=ClusterStats)
    descriptor: str | None = None  # the library's active descriptor kind
    redescribed: DescriptorRefresh | None = None  # faces described again after a switch of kinds

    def to_json(self) -> dict:
        return {**asdict(self), "clustering": self.clustering.to_json()}


def choose_descriptor(db: Database, descriptor: str | None) -> tuple[str, bool]:
    """The library's descriptor kind after making ``descriptor`` (if given) the active one, and whether
    faces are waiting to be described by it."""
    if descriptor is not None:
        FaceConfig(descriptor=descriptor)  # an unknown kind: one-line error, nothing changed
        if descriptor == DescriptorKind.FACENET512:
            require_facenet_weights()  # never switch a library to a descriptor it cannot compute
    with db.session() as session:
        if descriptor is not None:
            set_active_kind(session, descriptor)
        kind = active_kind(session)
        return str(kind), bool(stale_photo_ids(session, kind))


def process_pending_photos(
    db: Database,
    device: str = "auto",
    detector: str = "mtcnn",
    redo: bool = False,
    reporter: Reporter = NULL_REPORTER,
    config: FaceConfig | None = None,
    cluster_config: ClusterConfig | None = None,
    descriptor: str | None = None,
) -> FaceRunSummary:
    """Detect faces on pending photos (all photos with ``redo``), store them, then cluster incrementally.

    ``descriptor``: make that kind the library's active one (None: keep the library's)."""
    kind, stale = choose_descriptor(db, descriptor)
    config = dataclasses.replace(config or FaceConfig(), detector=detector, descriptor=kind)
    started = time.perf_counter()
    with db.session() as session:
        query = select(Photo.id).order_by(Photo.id)
        if not redo:
            query = query.where(Photo.faces_status == FacesStatus.PENDING)
        photo_ids = list(session.scalars(query))
    summary = FaceRunSummary(photos=len(photo_ids), detector=config.detector, descriptor=kind)
    analyzer = FaceAnalyzer(config, device=device) if photo_ids or stale else None
    if analyzer is not None:
        summary.device = str(analyzer.device)
        _announce(reporter, len(photo_ids), config.detector, analyzer.device)
    detect_started = time.perf_counter()
    summary.load_seconds = round(detect_started - started, 2)
    with reported_task(reporter, "faces", "faces", len(photo_ids)) as task:
        for photo_id in photo_ids:
            # Detection runs outside any transaction: a session holds SQLite's write lock, and another photokit
            # (a second face stage, a scan) must not wait seconds for it.
            failure: BaseException | None = None
            faces: list = []
            path, rgb = "", None
            with db.session(write=False) as session:
                photo = session.get(Photo, photo_id)
                todo = photo is not None and (redo or photo.faces_status == FacesStatus.PENDING)
                try:
                    path, rgb = _read_photo(session, photo) if todo else ("", None)
                except PHOTO_ERRORS as exc:
                    failure = exc
            try:
                faces = analyzer.analyze(rgb) if todo and failure is None else []
            except PHOTO_ERRORS as exc:
                failure = exc
            with db.session() as session:
                status = _store_photo(session, photo_id, todo, redo, failure, faces, path, config.detector, summary)
            reporter.task_advanced(task, 1, status)
    if stale and analyzer is not None:
        summary.redescribed = refresh_descriptors(db, analyzer, reporter)
    cluster_started = time.perf_counter()
    with db.session() as session:
        summary.clustering = cluster_faces(session, cluster_config)
    finished = time.perf_counter()
    summary.detect_seconds = round(cluster_started - detect_started, 2)
    summary.cluster_seconds = round(finished - cluster_started, 2)
    summary.seconds = round(finished - started, 2)
    return summary


def _announce(reporter: Reporter, photos: int, detector: str, device) -> None:
    """The up-front line: how many photos, with what, and (on a CPU) about how long."""
    from photokit.devices import describe_device

    cost = ""
    if device.type == "cpu":
        cost = (
            f", about {format_duration(photos * CPU_SECONDS_PER_PHOTO)} "
            f"({CPU_SECONDS_PER_PHOTO} s per photo as measured on 2 CPU cores)"
        )
    reporter.note(f"faces: {photos} photo(s) with {detector} on {describe_device(device)}{cost}")


def _store_photo(
    session: Session,
    photo_id: int,
    todo: bool,
    redo: bool,
    failure: BaseException | None,
    faces: list,
    path: str,
    detector: str,
    summary: FaceRunSummary,
) -> str | None:
    """Store one photo's detected faces (or its failure), counting into ``summary``; a short status for progress."""
    photo = session.get(Photo, photo_id)
    if not todo or photo is None or (not redo and photo.faces_status != FacesStatus.PENDING):
        return None  # gone, or another photokit did it meanwhile
    if failure is not None:
        # One bad photo (unreadable now, too large, a model error) must not stop the library.
        if record_photo_failure(photo, failure):
            summary.retry_later += 1
        else:
            summary.failed += 1
        if len(summary.errors) < MAX_REPORTED_ERRORS:
            summary.errors.append({"photo_id": photo_id, "error": photo.faces_error})
        return None
    counts = store_faces(session, photo, faces, detector)
    photo.faces_status, photo.faces_error = FacesStatus.DONE, None
    summary.kept += counts["kept"]
    summary.added += counts["added"]
    summary.removed += counts["removed"]
    summary.done += 1
    summary.faces += len(faces)
    return f"{len(faces)} face(s) in {path.rsplit('/', 1)[-1]}"
