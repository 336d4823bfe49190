"""The library's face descriptor kind: which one is active, its distance scale, and switching kinds.

A library has one active ``DescriptorKind`` (``library_info`` key ``descriptor_kind``; dlib's 128-D one
unless the user chose another). Only faces described by the active kind are ever compared: clustering,
``identify``, suggestions and restoration's identity checks load those alone. Switching kinds
(``photokit scan --descriptor KIND``) recomputes the other faces' descriptors from their stored
landmarks, one photo per transaction, so an interrupted switch continues where it stopped; faces not
redone yet simply take no part meanwhile.

Distances differ between kinds. photokit's clustering defaults were measured in dlib's units, so for
another kind every distance is multiplied by ``DISTANCE_SCALE`` (squared distances by its square).
The scale is the ratio of the two published verification thresholds for the very same weights: deepface
(serengil/deepface, ``deepface/config/threshold.py``) decides "same person" with dlib's descriptor at
Euclidean 0.6 and with "Facenet512" (David Sandberg's 20180402-114759 VGGFace2 model, the weights
facenet-pytorch republishes) at 1.04 on L2-normalised descriptors; FaceNet's paper (Schroff et al.
2015, Fig. 1) puts same-person pairs of its own model under about 1.1. Without the real weights on the
development machine the facenet values could not be calibrated on the development sets (docs/faces.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from photokit.db.models import Face, LibraryInfo, Photo
from photokit.db.vocab import AssignedBy
from photokit.errors import PhotokitError
from photokit.faces.cluster import ClusterConfig
from photokit.faces.vocab import DescriptorKind
from photokit.reporting import NULL_REPORTER, Reporter, reported_task

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ACTIVE_KIND_KEY = "descriptor_kind"  # library_info key
NO_EMBEDDING = "no_embedding"  # Face.cluster_exclusion of a face without a usable descriptor
DLIB_SAME_PERSON = 0.6  # dlib's documented threshold (dlib.net, face_recognition); deepface uses the same
FACENET_SAME_PERSON = 1.04  # deepface's "Facenet512" euclidean_l2 threshold (see the module docstring)
DISTANCE_SCALE = {DescriptorKind.DLIB128: 1.0, DescriptorKind.FACENET512: FACENET_SAME_PERSON / DLIB_SAME_PERSON}
Config = TypeVar("Config", bound="DataclassInstance")  # a settings dataclass with distance fields
# ClusterConfig fields that are distances (scaled by DISTANCE_SCALE) and squared distances (by its square).
_DISTANCES = ("max_distance", "pair_distance")
_SQUARED = ("prior_spread",)


def distance_scale(kind: str) -> float:
    """How much larger this kind's distances are than dlib's for the same pair of faces (about)."""
    return DISTANCE_SCALE[DescriptorKind(kind)]


def in_units_of(kind: str, config: Config, *distances: str, squared: tuple[str, ...] = ()) -> Config:
    """``config`` (a dataclass) with its fields ``distances`` (and ``squared`` distances), given in dlib's
    units, in ``kind``'s."""
    s = distance_scale(kind)
    scaled = {name: getattr(config, name) * s for name in distances}
    return dataclasses.replace(config, **scaled, **{name: getattr(config, name) * s * s for name in squared})


def cluster_config(kind: str, **overrides) -> ClusterConfig:
    """The clustering defaults for ``kind`` (dlib's unchanged), with ``overrides`` (in that kind's units)."""
    return dataclasses.replace(in_units_of(kind, ClusterConfig(), *_DISTANCES, squared=_SQUARED), **overrides)


def active_kind(session: Session) -> DescriptorKind:
    """The library's descriptor kind (dlib's unless the user chose another)."""
    value = session.scalar(select(LibraryInfo.value).where(LibraryInfo.key == ACTIVE_KIND_KEY))
    if value is None:
        return DescriptorKind.DLIB128
    try:
        return DescriptorKind(value)
    except ValueError:
        raise PhotokitError(
            f"the library's face descriptor kind '{value}' is unknown to this photokit "
            f"(known: {', '.join(DescriptorKind)}); was it written by a newer version?"
        ) from None


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
