"""Faces for the library: detect and measure faces on pending photos, store them, cluster them.

Each photo is committed on its own, so Ctrl-C loses at most the photo being processed and the
next run continues with the photos still ``pending``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

import cv2
from sqlalchemy import select
from sqlalchemy.orm import Session

from photokit.db import Database
from photokit.db.models import Face, Photo
from photokit.errors import PhotokitError
from photokit.faces.analyze import DetectedFace, FaceAnalyzer, FaceConfig
from photokit.faces.cluster import ClusterConfig
from photokit.faces.people import cluster_faces, embedding_to_bytes, photo_path
from photokit.faces.quality import box_iou
from photokit.library.images import ImageReadError
from photokit.settings import Settings

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
            if row.cluster_exclusion is not None and row.assigned_by == "auto":
                row.person_id, row.assigned_by = None, None  # no longer good enough to be clustered
            stats["kept"] += 1
        elif row.assigned_by != "user":
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
    from photokit.library.images import read_rgb

    path = photo_path(session, photo.id)
    if path is None:
        raise ImageReadError(f"photo {photo.id}", "missing", "none of its files is present")
    return path, read_rgb(path)


def _is_transient(exc: BaseException) -> bool:
    """Failures that may go away (an unplugged drive, a permission fixed later, memory): retry next scan."""
    if isinstance(exc, ImageReadError):
        return exc.reason in ("missing", "unreadable")
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def process_pending_photos(
    db: Database,
    settings: Settings,
    device: str = "auto",
    detector: str = "mtcnn",
    redo: bool = False,
    progress: bool = True,
    config: FaceConfig | None = None,
    cluster_config: ClusterConfig | None = None,
) -> dict:
    """Detect faces on pending photos (all photos with ``redo``), store them, then cluster incrementally."""
    del settings  # part of the contract; models come from installed packages, not the model store
    config = dataclasses.replace(config or FaceConfig(), detector=detector)
    started = time.perf_counter()
    with db.session() as session:
        query = select(Photo.id).order_by(Photo.id)
        if not redo:
            query = query.where(Photo.faces_status == "pending")
        photo_ids = list(session.scalars(query))
    summary = {
        "photos": len(photo_ids),
        "done": 0,
        "failed": 0,
        "retry_later": 0,
        "faces": 0,
        "kept": 0,
        "added": 0,
        "removed": 0,
        "detector": config.detector,
        "errors": [],
    }
    analyzer = FaceAnalyzer(config, device=device) if photo_ids else None
    if analyzer is not None:
        summary["device"] = str(analyzer.device)
    detect_started = time.perf_counter()
    summary["load_seconds"] = round(detect_started - started, 2)
    bar = None
    if progress and photo_ids:
        from photokit.devices import describe_device
        from photokit.progress import format_duration, make_progress, stderr_console

        cost = ""
        if analyzer.device.type == "cpu":
            cost = (
                f", about {format_duration(len(photo_ids) * CPU_SECONDS_PER_PHOTO)} "
                f"({CPU_SECONDS_PER_PHOTO} s per photo as measured on 2 CPU cores)"
            )
        stderr_console.print(
            f"faces: {len(photo_ids)} photo(s) with {config.detector} on {describe_device(analyzer.device)}{cost}",
            highlight=False,
        )
        bar = make_progress()
    with bar if bar is not None else contextlib.nullcontext():
        task = bar.add_task("faces", total=len(photo_ids)) if bar is not None else None
        for photo_id in photo_ids:
            # Detection runs outside any transaction: a session holds SQLite's write lock, and another photokit
            # (a second face stage, a scan) must not wait seconds for it.
            failure, faces, path, rgb = None, [], "", None
            with db.session(write=False) as session:
                photo = session.get(Photo, photo_id)
                todo = photo is not None and (redo or photo.faces_status == "pending")
                try:
                    path, rgb = _read_photo(session, photo) if todo else ("", None)
                except (PhotokitError, MemoryError, RuntimeError, ValueError, cv2.error) as exc:
                    failure = exc
            try:
                faces = analyzer.analyze(rgb) if todo and failure is None else []
            except (PhotokitError, MemoryError, RuntimeError, ValueError, cv2.error) as exc:
                failure = exc
            with db.session() as session:
                photo = session.get(Photo, photo_id)
                if not todo or photo is None or (not redo and photo.faces_status != "pending"):
                    pass  # gone, or another photokit did it meanwhile
                elif failure is not None:
                    exc = failure
                    # One bad photo (unreadable now, too large, a model error) must not stop the library.
                    # Transient causes stay 'pending' so the next scan tries again; the rest are 'failed'.
                    transient = _is_transient(exc)
                    photo.faces_status = "pending" if transient else "failed"
                    photo.faces_error = " ".join(str(exc).split()) or type(exc).__name__
                    summary["retry_later" if transient else "failed"] += 1
                    if len(summary["errors"]) < MAX_REPORTED_ERRORS:
                        summary["errors"].append({"photo_id": photo_id, "error": photo.faces_error})
                else:
                    for key, value in store_faces(session, photo, faces, config.detector).items():
                        summary[key] += value
                    photo.faces_status, photo.faces_error = "done", None
                    summary["done"] += 1
                    summary["faces"] += len(faces)
                    if bar is not None:
                        bar.update(task, status=f"{len(faces)} face(s) in {path.rsplit('/', 1)[-1]}")
            if bar is not None:
                bar.advance(task)
    cluster_started = time.perf_counter()
    with db.session() as session:
        summary["clustering"] = cluster_faces(session, cluster_config or ClusterConfig())
    finished = time.perf_counter()
    summary["detect_seconds"] = round(cluster_started - detect_started, 2)
    summary["cluster_seconds"] = round(finished - cluster_started, 2)
    summary["seconds"] = round(finished - started, 2)
    return summary
