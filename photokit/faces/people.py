"""People: looking them up, and the user's curation (name, merge, move, split, ignore).

The clustering passes that place faces are in ``assignment.py``. Who decides what:
- Clustering only ever touches faces with ``assigned_by`` NULL or ``'auto'``; ``'user'`` faces,
  faces the user rejected (``user_rejected``) and every face of a curated person (named, ignored,
  or holding a face the user put there) are the user's and are never moved automatically. New faces
  may still join a curated person.
- A merge or a move marks the faces involved ``'user'``; ``remove-face`` marks the face rejected.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from photokit.db.models import Face, Person, PhotoLocation
from photokit.db.reader import SessionReader
from photokit.db.vocab import AssignedBy
from photokit.errors import PhotokitError, Remedy
from photokit.faces import listing
from photokit.faces.assignment import delete_empty_people, refresh_covers
from photokit.faces.cluster_config import ClusterConfig
from photokit.faces.listing import SMALL_GROUP
from photokit.faces.matching import invalidate
from photokit.faces.vocab import DescriptorKind

MAX_ID = 2**63 - 1  # ids are 64-bit integers in every database photokit supports


# -- storage --------------------------------------------------------------------------------
_DIMS = tuple(sorted({kind.dim for kind in DescriptorKind}))


def embedding_to_bytes(embedding: np.ndarray) -> bytes:
    array = np.asarray(embedding, dtype="<f4").reshape(-1)
    if array.size not in _DIMS:
        raise ValueError(f"a face embedding has {' or '.join(map(str, _DIMS))} values, got {array.size}")
    return array.tobytes()


def embedding_from_bytes(data: bytes, kind: str | None = None) -> np.ndarray:
    """A stored descriptor; with ``kind``, one of that kind's size (any known size otherwise)."""
    array = np.frombuffer(data, dtype="<f4")
    sizes = (DescriptorKind(kind).dim,) if kind is not None else _DIMS
    if array.size not in sizes:
        raise ValueError(f"stored face embedding has {array.size} values, expected {' or '.join(map(str, sizes))}")
    return array.astype(np.float32)


# -- lookup ---------------------------------------------------------------------------------
def resolve_person(session: Session, ref: str) -> Person:
    """A person by id (digits) or exact name, then case-insensitive name."""
    ref = str(ref).strip()
    person = None
    if ref.isascii() and ref.isdigit() and int(ref) <= MAX_ID:  # '²' is a digit; ids are 64-bit
        person = session.get(Person, int(ref))
    if person is None and ref:
        person = session.scalar(select(Person).where(Person.name == ref))
        if person is None:
            matches = session.scalars(select(Person).where(func.lower(Person.name) == ref.lower())).all()
            person = matches[0] if len(matches) == 1 else None
    if person is None:
        raise PhotokitError(f"unknown person '{ref}'", Remedy.LIST_PEOPLE)
    return person


def resolve_face(session: Session, ref: int | str) -> Face:
    text = str(ref).strip()
    face = session.get(Face, int(text)) if text.isascii() and text.isdigit() and int(text) <= MAX_ID else None
    if face is None:
        raise PhotokitError(f"unknown face '{ref}'", Remedy.SHOW_PERSON_FACES)
    return face


def identify(
    session: Session, embedding: np.ndarray, config: ClusterConfig | None = None
) -> tuple[Person | None, float]:
    """The non-ignored person ``embedding`` belongs to, and the distance to the nearest known face.

    ``embedding`` must be of the library's active descriptor kind (``config``: that kind's defaults).
    Returns (None, distance) when no person near it passes the clustering's spread test (distance is
    inf when the library has no people or the descriptor is unusable). The face index is cached per
    database and rebuilt only when people changed, so routing many faces costs ~1 ms each.
    """
    from photokit.faces.matching import matcher_for

    person_id, distance = matcher_for(session, config).identify(embedding)
    return (session.get(Person, person_id) if person_id is not None else None), distance


def photo_path(session: Session, photo_id: int) -> str | None:
    """A present location of a photo (the first one seen), else any known location."""
    locations = session.scalars(
        select(PhotoLocation).where(PhotoLocation.photo_id == photo_id).order_by(PhotoLocation.id)
    ).all()
    for loc in locations:
        if loc.status == "present":
            return loc.path
    return locations[0].path if locations else None


# -- curation -------------------------------------------------------------------------------
def name_person(session: Session, person: Person, name: str) -> Person:
    name = " ".join(str(name).split())
    if not name:
        raise PhotokitError("a person's name cannot be empty")
    if name.isdigit():
        raise PhotokitError(f"'{name}' would be read as a person id; choose a name that is not only digits")
    other = session.scalar(select(Person).where(Person.name == name, Person.id != person.id))
    if other is not None:
        raise PhotokitError(f"person {other.id} is already named '{name}'", Remedy.MERGE_PEOPLE)
    person.name = name
    session.flush()
    return person


def merge_people(session: Session, target: Person, source: Person) -> Person:
    """Move every face of ``source`` into ``target`` and delete ``source``; all their faces become the user's."""
    if target.id == source.id:
        raise PhotokitError(f"cannot merge person {target.id} with itself")
    name = target.name or source.name
    ignored = target.ignored and source.ignored
    for face in list(source.faces) + list(target.faces):
        face.person = target  # through the relationship, so deleting ``source`` does not orphan them
        face.assigned_by = AssignedBy.USER
    source.name = None
    session.flush()
    session.delete(source)
    target.name = name
    target.ignored = ignored
    session.flush()
    refresh_covers(session)
    return target


def _after_reassignment(session: Session) -> None:
    """Faces changed hands: drop people left empty and pick covers again."""
    session.flush()
    delete_empty_people(session)
    session.expire_all()
    refresh_covers(session)


def move_faces(session: Session, face_refs: list, person: Person) -> list[Face]:
    faces = [resolve_face(session, ref) for ref in face_refs]
    for face in faces:
        face.person_id = person.id
        face.assigned_by = AssignedBy.USER
        face.user_rejected = False
    _after_reassignment(session)
    return faces


def remove_face(session: Session, face_ref) -> Face:
    """'This face is not that person': unassign it and never assign it automatically again."""
    face = resolve_face(session, face_ref)
    face.person_id = None
    face.assigned_by = None
    face.user_rejected = True
    _after_reassignment(session)
    return face


def split_faces(session: Session, face_refs: list, name: str | None = None) -> Person:
    """'These faces are someone else': a new person made of them (the user's decision, never undone)."""
    person = Person(name=None, ignored=False)
    session.add(person)
    session.flush()
    if name is not None:
        name_person(session, person, name)
    move_faces(session, face_refs, person)
    return person


def ignore_person(session: Session, person: Person, ignored: bool = True) -> Person:
    person.ignored = ignored
    session.flush()
    invalidate()
    return person


# -- reports --------------------------------------------------------------------------------
def person_summary(session: Session, person: Person) -> dict:
    faces = person.faces
    return {
        "id": person.id,
        "name": person.name,
        "faces": len(faces),
        "photos": len({f.photo_id for f in faces}),
        "cover_face": person.cover_face_id,
        "ignored": bool(person.ignored),
    }


def list_people(session: Session, include_all: bool = False, small_group: int = SMALL_GROUP) -> list[dict]:
    """``listing.list_people`` inside an ORM session (the web gallery's listings)."""
    return listing.list_people(SessionReader(session), include_all, small_group)


def face_record(session: Session, face: Face) -> dict:
    return {
        "id": face.id,
        "photo_id": face.photo_id,
        "path": photo_path(session, face.photo_id),
        "box": [round(float(v), 1) for v in face.box],
        "score": round(float(face.score), 4),
        "size_px": round(float(face.size_px or 0.0), 1),
        "blur": None if face.blur is None else round(float(face.blur), 1),
        "is_gray": bool(face.is_gray),
        "yaw": None if face.yaw is None else round(float(face.yaw), 1),
        "cluster_exclusion": face.cluster_exclusion,
        "assigned_by": face.assigned_by,
    }


def person_detail(session: Session, person: Person) -> dict:
    detail = person_summary(session, person)
    detail["face_list"] = [face_record(session, f) for f in sorted(person.faces, key=lambda f: f.id)]
    return detail


__all__ = [
    "embedding_from_bytes",
    "embedding_to_bytes",
    "identify",
    "ignore_person",
    "list_people",
    "merge_people",
    "move_faces",
    "name_person",
    "person_detail",
    "remove_face",
    "resolve_face",
    "resolve_person",
    "split_faces",
]
