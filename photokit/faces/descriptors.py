"""The library's face descriptor kind: which one is active, and switching kinds.

A library has one active ``DescriptorKind`` (``library_info`` key ``descriptor_kind``; dlib's 128-D one
unless the user chose another). Only faces described by the active kind are ever compared: clustering,
``identify``, suggestions and restoration's identity checks load those alone. Switching kinds
(``photokit scan --descriptor KIND``) recomputes the other faces' descriptors from their stored
landmarks, one photo per transaction, so an interrupted switch continues where it stopped; faces not
redone yet simply take no part meanwhile. Distances per kind: ``faces.cluster_config``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from photokit.db.models import Face, LibraryInfo, Photo
from photokit.db.reader import SessionReader
from photokit.db.vocab import AssignedBy
from photokit.faces import listing
from photokit.faces.listing import ACTIVE_KIND_KEY
from photokit.faces.vocab import DescriptorKind
from photokit.reporting import NULL_REPORTER, Reporter, reported_task

NO_EMBEDDING = "no_embedding"  # Face.cluster_exclusion of a face without a usable descriptor


def active_kind(session: Session) -> DescriptorKind:
    """The library's descriptor kind (dlib's unless the user chose another), in this session's transaction."""
    return listing.active_kind(SessionReader(session))


def set_active_kind(session: Session, kind: str) -> bool:
    """Make ``kind`` the library's descriptor kind; True when that is a change."""
    kind = DescriptorKind(kind)
    row = session.get(LibraryInfo, ACTIVE_KIND_KEY)
    if row is None:
        if kind is DescriptorKind.DLIB128:
            return False  # the default: nothing to record
        session.add(LibraryInfo(key=ACTIVE_KIND_KEY, value=str(kind)))
        return True
    changed = row.value != kind
    row.value = str(kind)
    return changed


def stale_faces(kind: str):
    """Condition on ``Face``: described by another kind (or by none yet) and redescribable (landmarks kept)."""
    return or_(Face.descriptor_kind.is_(None), Face.descriptor_kind != str(kind)), Face.landmarks68.is_not(None)


def stale_photo_ids(session: Session, kind: str) -> list[int]:
    """Photos with faces still to be described by ``kind``."""
    return list(session.scalars(select(Face.photo_id).where(*stale_faces(kind)).distinct().order_by(Face.photo_id)))


@dataclass
class DescriptorRefresh:
    """What redescribing a library's faces did (``photokit scan`` after a switch of kinds)."""

    kind: str
    photos: int = 0  # photos whose faces were redescribed
    faces: int = 0
    no_descriptor: int = 0  # faces the new kind could not describe (left out of clustering)
    failed_photos: int = 0  # photos that could not be read now: tried again next time


def refresh_descriptors(db, analyzer, reporter: Reporter = NULL_REPORTER) -> DescriptorRefresh:
    """Describe every face not described by ``analyzer``'s kind yet, from its stored landmarks.

    One photo per transaction (resumable); the photo is decoded outside any transaction. A photo that
    cannot be read now is skipped and tried again on the next run; its faces stay out of comparisons."""
    from photokit.faces.pipeline import PHOTO_ERRORS, _read_photo

    kind = analyzer.descriptor_kind
    result = DescriptorRefresh(kind=str(kind))
    with db.session(write=False) as session:
        photo_ids = stale_photo_ids(session, kind)
    if not photo_ids:
        return result
    reporter.note(f"faces: describing the faces of {len(photo_ids)} photo(s) again with {kind}")
    with reported_task(reporter, "descriptors", f"{kind} descriptors", len(photo_ids)) as task:
        for photo_id in photo_ids:
            try:
                with db.session(write=False) as session:
                    query = select(Face.id, Face.landmarks68).where(Face.photo_id == photo_id, *stale_faces(kind))
                    rows = session.execute(query).all()
                    photo = session.get(Photo, photo_id)
                    _, pixels = _read_photo(session, photo) if photo is not None and rows else ("", None)
                described = {f: analyzer.describe(pixels, lm) for f, lm in rows} if pixels is not None else {}
            except PHOTO_ERRORS:
                result.failed_photos += 1
                reporter.task_advanced(task, 1)
                continue
            with db.session() as session:
                _store_descriptors(session, described, analyzer, result)
            result.photos += 1
            reporter.task_advanced(task, 1)
    return result


def _store_descriptors(session: Session, described: dict, analyzer, result: DescriptorRefresh) -> None:
    """Write new descriptors; a face the new kind cannot describe leaves clustering (and its automatic person)."""
    from photokit.faces.analyze import DetectedFace
    from photokit.faces.people import embedding_to_bytes

    for face_id, embedding in described.items():
        row = session.get(Face, face_id)
        if row is None:
            continue  # removed meanwhile
        row.descriptor_kind = str(analyzer.descriptor_kind)
        row.embedding = None if embedding is None else embedding_to_bytes(embedding)
        result.faces += 1
        if embedding is None:
            result.no_descriptor += 1
            row.cluster_exclusion = NO_EMBEDDING
            if row.assigned_by == AssignedBy.AUTO:
                row.person_id, row.assigned_by = None, None
        elif row.cluster_exclusion == NO_EMBEDDING:
            face = DetectedFace(box=tuple(row.box), score=row.score, embedding=embedding, size_px=row.size_px)
            row.cluster_exclusion = analyzer.exclusion(face)
