"""People: identity clustering on the database, and the user's curation (name, merge, move, ignore).

Who decides what:
- Clustering only ever touches faces with ``assigned_by`` NULL or ``'auto'``; ``'user'`` faces,
  faces the user rejected (``user_rejected``) and every face of a curated person (named, ignored,
  or holding a face the user put there) are the user's and are never moved automatically. New faces
  may still join a curated person.
- A merge or a move marks the faces involved ``'user'``; ``remove-face`` marks the face rejected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from photokit.db.models import Face, Person, PhotoLocation
from photokit.db.vocab import AssignedBy
from photokit.errors import PhotokitError
from photokit.faces.cluster import ClusterConfig, Labelled, assign_faces
from photokit.faces.index import clean_descriptors
from photokit.faces.matching import LibraryFaces, invalidate

EMBEDDING_DIM = 128
MAX_ID = 2**63 - 1  # ids are 64-bit integers in every database photokit supports
# `people list` hides unnamed people with fewer faces than this unless --all (likely strangers).
SMALL_GROUP = 3


# -- storage --------------------------------------------------------------------------------
def embedding_to_bytes(embedding: np.ndarray) -> bytes:
    array = np.asarray(embedding, dtype="<f4").reshape(-1)
    if array.shape != (EMBEDDING_DIM,):
        raise ValueError(f"a face embedding has {EMBEDDING_DIM} values, got {array.size}")
    return array.tobytes()


def embedding_from_bytes(data: bytes) -> np.ndarray:
    array = np.frombuffer(data, dtype="<f4")
    if array.shape != (EMBEDDING_DIM,):
        raise ValueError(f"stored face embedding has {array.size} values, expected {EMBEDDING_DIM}")
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
        raise PhotokitError(f"unknown person '{ref}' (see `photokit people list --all`)")
    return person


def resolve_face(session: Session, ref: int | str) -> Face:
    text = str(ref).strip()
    face = session.get(Face, int(text)) if text.isascii() and text.isdigit() and int(text) <= MAX_ID else None
    if face is None:
        raise PhotokitError(f"unknown face '{ref}' (face ids are shown by `photokit people show PERSON`)")
    return face


def identify(
    session: Session, embedding: np.ndarray, config: ClusterConfig = ClusterConfig()
) -> tuple[Person | None, float]:
    """The non-ignored person ``embedding`` belongs to, and the distance to the nearest known face.

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


# -- clustering -----------------------------------------------------------------------------
def _fixed_person_ids(session: Session) -> set[int]:
    """People the user has curated (named, ignored, merged or given faces): recluster keeps them whole."""
    curated = set(session.scalars(select(Person.id).where((Person.name.is_not(None)) | Person.ignored.is_(True))))
    curated |= set(session.scalars(select(Face.person_id).where(Face.assigned_by == AssignedBy.USER).distinct()))
    return curated


@dataclass
class ClusterStats:
    """What a clustering pass did."""

    clustered_faces: int = 0  # unassigned clusterable faces it looked at
    assigned: int = 0
    new_people: int = 0
    unassigned: int = 0
    bad_descriptor: int = 0  # faces left unassigned: stored descriptor zero, not finite or of the wrong size
    released: int | None = None  # recluster only: automatic assignments forgotten first
    removed_people: int | None = None  # recluster only: people left without faces

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _labelled(session: Session) -> Labelled:
    """Descriptors of every assigned face (columns only: 100k faces load in a fraction of a second)."""
    faces = LibraryFaces.load(session, include_ignored=True)
    return Labelled(faces.embeddings, faces.person_ids, faces.photo_ids)


def _pending(session: Session) -> tuple[list[int], np.ndarray, np.ndarray, int]:
    """Unassigned clusterable faces: ids, photo ids, descriptors; and how many have an unusable descriptor."""
    rows = session.execute(
        select(Face.id, Face.photo_id, Face.embedding)
        .where(
            Face.person_id.is_(None),
            Face.embedding.is_not(None),
            Face.cluster_exclusion.is_(None),
            Face.user_rejected.is_(False),
        )
        .order_by(Face.id)
    ).all()
    emb = np.full((len(rows), EMBEDDING_DIM), np.nan, np.float32)
    for k, row in enumerate(rows):
        if len(row[2]) == 4 * EMBEDDING_DIM:
            emb[k] = np.frombuffer(row[2], "<f4")
    bad = int((~clean_descriptors(emb)).sum()) if rows else 0
    return [r[0] for r in rows], np.array([r[1] for r in rows], np.int64), emb, bad


def cluster_faces(
    session: Session, config: ClusterConfig = ClusterConfig(), previous: dict[int, int] | None = None
) -> ClusterStats:
    """Incremental pass: place every unassigned clusterable face; people already formed stay.

    ``previous`` (face id -> the person it was in before a recluster) lets a re-formed group keep
    its old person id, so ids (and what hangs off them, like personal priors) survive a recluster.
    Faces whose stored descriptor is zero, not finite or of the wrong size are counted
    (``bad_descriptor``) and left unassigned.
    """
    face_ids, photo_ids, embeddings, bad = _pending(session)
    stats = ClusterStats(clustered_faces=len(face_ids), bad_descriptor=bad)
    if not face_ids:
        return stats
    labelled = _labelled(session)
    labels = assign_faces(embeddings, photo_ids, labelled, config)
    groups: dict[int, list[int]] = {}
    for face_id, label in zip(face_ids, labels.tolist()):
        groups.setdefault(label, []).append(face_id)
    stats.unassigned = len(groups.pop(0, []))
    taken = {int(p) for p in np.unique(labelled.person_ids)}
    existing = set(session.scalars(select(Person.id)))
    updates: list[dict] = []
    new_people: list[tuple[Person, list[int]]] = []
    for label, faces in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        person_id = label
        if label < 0:  # a new group: its faces' former person if that one is free, else a new person
            votes = Counter(previous[f] for f in faces if previous and f in previous)
            person_id = next((pid for pid, _ in votes.most_common() if pid not in taken and pid in existing), None)
            if person_id is None:
                new_people.append((Person(), faces))
                continue
            taken.add(person_id)
        updates += [{"id": f, "person_id": person_id, "assigned_by": AssignedBy.AUTO} for f in faces]
    if new_people:
        session.add_all([person for person, _ in new_people])
        session.flush()
        for person, faces in new_people:
            updates += [{"id": f, "person_id": person.id, "assigned_by": AssignedBy.AUTO} for f in faces]
        stats.new_people = len(new_people)
    session.execute(update(Face), updates)
    stats.assigned = len(updates)
    session.expire_all()
    refresh_covers(session)
    return stats


def recluster(session: Session, config: ClusterConfig = ClusterConfig()) -> ClusterStats:
    """Full pass: forget automatic assignments (not the user's) and cluster everything again.

    Runs in the caller's transaction: interrupted (Ctrl-C) or failed, it is rolled back whole and
    the previous assignment stands.
    """
    fixed = _fixed_person_ids(session)
    automatic = (Face.person_id.is_not(None)) & ((Face.assigned_by.is_(None)) | (Face.assigned_by != AssignedBy.USER))
    rows = session.execute(select(Face.id, Face.person_id).where(automatic)).all()
    previous = {face_id: person_id for face_id, person_id in rows if person_id not in fixed}
    if previous:
        session.execute(update(Face), [{"id": f, "person_id": None, "assigned_by": None} for f in previous])
    session.expire_all()
    stats = cluster_faces(session, config, previous=previous)
    stats.released = len(previous)
    stats.removed_people = _delete_empty_people(session)
    refresh_covers(session)
    return stats


def _delete_empty_people(session: Session) -> int:
    """Drop people with no faces left, unless the user named or ignored them."""
    used = select(Face.person_id).where(Face.person_id.is_not(None)).distinct()
    result = session.execute(
        delete(Person).where(Person.id.not_in(used), Person.name.is_(None), Person.ignored.is_(False))
    )
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


def refresh_covers(session: Session) -> None:
    """Give every person a cover face: keep a valid one, else the largest clusterable, sharpest face.

    Every change of who is who ends here, so this is also where the cached identify index is dropped.
    """
    session.flush()
    invalidate()
    by_person: dict[int, list] = {}
    columns = (Face.id, Face.person_id, Face.cluster_exclusion, Face.size_px, Face.blur)  # not whole rows
    for face in session.execute(select(*columns).where(Face.person_id.is_not(None))):
        by_person.setdefault(face.person_id, []).append(face)
    for person in session.scalars(select(Person)):
        faces = by_person.get(person.id, [])
        if person.cover_face_id in {f.id for f in faces}:
            continue
        if not faces:
            person.cover_face_id = None
            continue
        best = max(faces, key=lambda f: (f.cluster_exclusion is None, f.size_px or 0.0, f.blur or 0.0, -f.id))
        person.cover_face_id = best.id
    session.flush()


# -- curation -------------------------------------------------------------------------------
def name_person(session: Session, person: Person, name: str) -> Person:
    name = " ".join(str(name).split())
    if not name:
        raise PhotokitError("a person's name cannot be empty")
    if name.isdigit():
        raise PhotokitError(f"'{name}' would be read as a person id; choose a name that is not only digits")
    other = session.scalar(select(Person).where(Person.name == name, Person.id != person.id))
    if other is not None:
        raise PhotokitError(f"person {other.id} is already named '{name}' (use `photokit people merge` to join them)")
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
    _delete_empty_people(session)
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
    """People, most faces first. Without ``include_all``: no ignored people, no small unnamed groups."""
    # One aggregate query: listing must stay instant with 100k faces (no per-person face loading).
    counts = (
        select(
            Person.id,
            Person.name,
            Person.cover_face_id,
            Person.ignored,
            func.count(Face.id),
            func.count(func.distinct(Face.photo_id)),
        )
        .outerjoin(Face, Face.person_id == Person.id)
        .group_by(Person.id)
        .order_by(Person.id)
    )
    rows = [
        {
            "id": pid,
            "name": name,
            "faces": int(n_faces),
            "photos": int(n_photos),
            "cover_face": cover,
            "ignored": bool(ignored),
        }
        for pid, name, cover, ignored, n_faces, n_photos in session.execute(counts)
    ]
    if not include_all:
        rows = [r for r in rows if not r["ignored"] and (r["name"] is not None or r["faces"] >= small_group)]
    return sorted(rows, key=lambda r: (-r["faces"], r["id"]))


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
    "ClusterConfig",
    "ClusterStats",
    "cluster_faces",
    "embedding_from_bytes",
    "embedding_to_bytes",
    "identify",
    "ignore_person",
    "list_people",
    "merge_people",
    "move_faces",
    "name_person",
    "person_detail",
    "recluster",
    "remove_face",
    "resolve_face",
    "resolve_person",
    "split_faces",
]
