"""Who each face is: the clustering passes on the database (incremental and full), and cover faces.

- ``cluster_faces`` places the faces nobody is assigned to yet; people already formed stay.
- ``recluster`` forgets the automatic assignments and clusters them again. Person ids carry over to
  the new groups they overlap most (so a name, a prior or a suggestion's dismissal stays attached);
  people the user curated, and people the caller names in ``keep`` (the CLI: those with a personal
  prior), are kept whole and never deleted. A result that would remove most automatic people is
  refused unless forced: a mistyped option must not wipe a library's people in one command.
- ``refresh_covers`` gives every person a cover face; every change of who is who ends there.

The arithmetic lives in ``cluster.py`` (arrays only); this module moves rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from photokit.db.models import Face, Person
from photokit.db.vocab import AssignedBy
from photokit.errors import PhotokitError, Remedy
from photokit.faces.cluster import Labelled, assign_faces, join_people
from photokit.faces.cluster_config import ClusterConfig, cluster_config
from photokit.faces.descriptors import active_kind
from photokit.faces.index import clean_descriptors
from photokit.faces.matching import LibraryFaces, invalidate
from photokit.faces.vocab import DescriptorKind

SMALL = "small"  # Face.cluster_exclusion of faces under FaceConfig.min_size: they join people, never form one
# A recluster that would remove more than this share of the automatic people is refused unless forced.
MAX_DROPPED_SHARE = 0.5


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
    kept_ids: int | None = None  # recluster only: automatic people whose id carried over to a new group
    small_joined: int = 0  # faces too small to cluster that joined a person

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _labelled(session: Session, kind: DescriptorKind) -> Labelled:
    """Descriptors of every assigned face (columns only: 100k faces load in a fraction of a second)."""
    faces = LibraryFaces.load(session, include_ignored=True, kind=kind)
    return Labelled(faces.embeddings, faces.person_ids, faces.photo_ids)


def _face_rows(session: Session, kind: DescriptorKind, *where) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face ids, photo ids and descriptors (NaN rows: unusable) of the faces of ``kind`` that ``where`` picks."""
    rows = session.execute(
        select(Face.id, Face.photo_id, Face.embedding)
        .where(Face.embedding.is_not(None), Face.descriptor_kind == str(kind), *where)
        .order_by(Face.id)
    ).all()
    emb = np.full((len(rows), kind.dim), np.nan, np.float32)
    for k, row in enumerate(rows):
        if len(row[2]) == 4 * kind.dim:
            emb[k] = np.frombuffer(row[2], "<f4")
    return np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64), emb


_UNASSIGNED = (Face.person_id.is_(None), Face.user_rejected.is_(False))


def _pending(session: Session, kind: DescriptorKind) -> tuple[list[int], np.ndarray, np.ndarray, int]:
    """Unassigned clusterable faces: ids, photo ids, descriptors; and how many have an unusable descriptor."""
    ids, photo_ids, emb = _face_rows(session, kind, *_UNASSIGNED, Face.cluster_exclusion.is_(None))
    bad = int((~clean_descriptors(emb)).sum()) if len(ids) else 0
    return ids.tolist(), photo_ids, emb, bad


def _join_small_faces(session: Session, config: ClusterConfig, kind: DescriptorKind) -> list[dict]:
    """Faces too small to cluster join the person they clearly belong to (``cluster.join_people``)."""
    ids, photo_ids, emb = _face_rows(session, kind, *_UNASSIGNED, Face.cluster_exclusion == SMALL)
    if not len(ids):
        return []
    labels = join_people(emb, photo_ids, _labelled(session, kind), config)
    return [{"id": int(f), "person_id": int(p), "assigned_by": AssignedBy.AUTO} for f, p in zip(ids, labels) if p]


def carried_over_ids(groups: dict[int, list[int]], previous: dict[int, int], free: set[int]) -> dict[int, int]:
    """Which new group takes which former person id: largest overlap first, each id at most once.

    ``groups``: new label -> its face ids; ``previous``: face id -> the person it was in; ``free``:
    ids that may be taken. Greedy on overlap (not on group size), so a small group made wholly of a
    former person keeps that person's id rather than losing it to a large group holding a few of its faces.
    """
    overlaps = Counter((label, previous[f]) for label, faces in groups.items() for f in faces if f in previous)
    taken: dict[int, int] = {}
    used: set[int] = set()
    for (label, person_id), _ in sorted(overlaps.items(), key=lambda item: (-item[1], item[0])):
        if label not in taken and person_id not in used and person_id in free:
            taken[label] = person_id
            used.add(person_id)
    return taken


def cluster_faces(
    session: Session, config: ClusterConfig | None = None, previous: dict[int, int] | None = None
) -> ClusterStats:
    """Incremental pass: place every unassigned clusterable face; people already formed stay.

    Only faces of the library's active descriptor kind take part (``config``: that kind's defaults).

    ``previous`` (face id -> the person it was in before a recluster) lets a re-formed group keep
    its old person id, so ids (and what hangs off them, like personal priors) survive a recluster.
    Faces whose stored descriptor is zero, not finite or of the wrong size are counted
    (``bad_descriptor``) and left unassigned. Then faces too small to cluster may join a person.
    """
    kind = active_kind(session)
    config = config or cluster_config(kind)
    face_ids, photo_ids, embeddings, bad = _pending(session, kind)
    stats = ClusterStats(clustered_faces=len(face_ids), bad_descriptor=bad)
    if face_ids:
        pending = (face_ids, photo_ids, embeddings)
        updates = _place_pending(session, config, kind, previous or {}, stats, pending)
        session.execute(update(Face), updates)
        stats.assigned = len(updates)
        session.flush()
    joined = _join_small_faces(session, config, kind)
    if joined:
        session.execute(update(Face), joined)
    stats.small_joined = len(joined)
    session.expire_all()
    refresh_covers(session)
    return stats


def _place_pending(
    session: Session,
    config: ClusterConfig,
    kind: DescriptorKind,
    previous: dict[int, int],
    stats: ClusterStats,
    pending: tuple,
) -> list[dict]:
    """The assignments of the pending faces: existing people, carried-over ids, new people (created here)."""
    face_ids, photo_ids, embeddings = pending
    labelled = _labelled(session, kind)
    labels = assign_faces(embeddings, photo_ids, labelled, config)
    groups: dict[int, list[int]] = {}
    for face_id, label in zip(face_ids, labels.tolist()):
        groups.setdefault(label, []).append(face_id)
    stats.unassigned = len(groups.pop(0, []))
    new_groups = {label: faces for label, faces in groups.items() if label < 0}
    free = set(session.scalars(select(Person.id))) - {int(p) for p in np.unique(labelled.person_ids)}
    person_of = {label: label for label in groups if label > 0}
    person_of |= carried_over_ids(new_groups, previous, free)
    new_people = {label: Person() for label in sorted(new_groups) if label not in person_of}
    if new_people:
        session.add_all(new_people.values())
        session.flush()
        person_of |= {label: person.id for label, person in new_people.items()}
    stats.new_people = len(new_people)
    return [
        {"id": f, "person_id": person_of[label], "assigned_by": AssignedBy.AUTO}
        for label, faces in groups.items()
        for f in faces
    ]


def fixed_person_ids(session: Session) -> set[int]:
    """People the user has curated (named, ignored, merged or given faces): recluster keeps them whole."""
    curated = set(session.scalars(select(Person.id).where((Person.name.is_not(None)) | Person.ignored.is_(True))))
    curated |= set(session.scalars(select(Face.person_id).where(Face.assigned_by == AssignedBy.USER).distinct()))
    curated.discard(None)  # a face with no person
    return curated


def recluster(
    session: Session, config: ClusterConfig | None = None, keep: Collection[int] = (), force: bool = False
) -> ClusterStats:
    """Full pass: forget automatic assignments (not the user's) and cluster everything again.

    Faces not yet described by the library's active kind (a switch of kinds under way) keep their person.

    ``keep``: more people to keep whole and never delete (the CLI passes those with a personal prior,
    which was built from their faces). Unless ``force``, raises ``PhotokitError`` (remedy
    ``FORCE_RECLUSTER``) when the result would remove more than ``MAX_DROPPED_SHARE`` of the
    automatic people. Runs in the caller's transaction: refused, interrupted (Ctrl-C) or failed, it
    is rolled back whole and the previous assignment stands.
    """
    fixed = fixed_person_ids(session) | {int(p) for p in keep}
    automatic = (Face.person_id.is_not(None)) & ((Face.assigned_by.is_(None)) | (Face.assigned_by != AssignedBy.USER))
    automatic &= Face.descriptor_kind == str(active_kind(session))
    rows = session.execute(select(Face.id, Face.person_id).where(automatic)).all()
    previous = {face_id: person_id for face_id, person_id in rows if person_id not in fixed}
    if previous:
        session.execute(update(Face), [{"id": f, "person_id": None, "assigned_by": None} for f in previous])
    session.expire_all()
    stats = cluster_faces(session, config, previous=previous)
    stats.released = len(previous)
    before = set(previous.values())
    after = set(session.scalars(select(Face.person_id).where(Face.person_id.in_(before)).distinct()))
    stats.kept_ids = len(after)
    dropped = len(before) - len(after)
    if not force and dropped > MAX_DROPPED_SHARE * len(before):
        raise PhotokitError(
            f"reclustering with these options would remove {dropped} of the {len(before)} people found "
            "automatically (their faces would be left unassigned or joined to others); nothing was changed",
            Remedy.FORCE_RECLUSTER,
        )
    stats.removed_people = delete_empty_people(session, keep={int(p) for p in keep})
    refresh_covers(session)
    return stats


def delete_empty_people(session: Session, keep: Collection[int] = ()) -> int:
    """Drop people with no faces left, unless the user named or ignored them or they are in ``keep``."""
    used = select(Face.person_id).where(Face.person_id.is_not(None)).distinct()
    query = delete(Person).where(Person.id.not_in(used), Person.name.is_(None), Person.ignored.is_(False))
    if keep:
        query = query.where(Person.id.not_in(sorted(keep)))
    result = session.execute(query)
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
