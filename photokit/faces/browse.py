"""Read-only views of people and faces for galleries: one page of a person's faces, a photo's faces.

Listing people is ``people.list_people``; these add what a browser needs and the CLI does not (pages of
thousands of faces without loading them all, the faces of one photo with who each is).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from photokit.db.models import Face, Person, Photo, PhotoLocation


@dataclass(frozen=True)
class FaceTile:
    id: int
    photo_id: int
    size_px: float
    assigned_by: str | None
    cluster_exclusion: str | None


@dataclass(frozen=True)
class FacePage:
    person_id: int
    total: int  # faces of the person
    photos: int  # distinct photos they are in
    offset: int
    limit: int
    faces: list[FaceTile]

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.faces) < self.total


def person_face_page(session: Session, person_id: int, offset: int = 0, limit: int = 200) -> FacePage:
    """Faces ``offset .. offset+limit`` of a person, by id (stable while the user curates), plus counts."""
    total, photos = session.execute(
        select(func.count(Face.id), func.count(func.distinct(Face.photo_id))).where(Face.person_id == person_id)
    ).one()
    rows = session.execute(
        select(Face.id, Face.photo_id, Face.size_px, Face.assigned_by, Face.cluster_exclusion)
        .where(Face.person_id == person_id)
        .order_by(Face.id)
        .offset(max(0, offset))
        .limit(max(1, limit))
    ).all()
    tiles = [FaceTile(r[0], r[1], float(r[2] or 0.0), r[3], r[4]) for r in rows]
    return FacePage(person_id, int(total), int(photos), max(0, offset), max(1, limit), tiles)


@dataclass(frozen=True)
class PhotoFace:
    id: int
    box: tuple[float, float, float, float]
    person_id: int | None
    person_name: str | None
    assigned_by: str | None
    user_rejected: bool
    cluster_exclusion: str | None


def photo_faces(session: Session, photo_id: int) -> list[PhotoFace]:
    """Every face of a photo with who it is (left to right)."""
    rows = session.execute(
        select(Face, Person.name).outerjoin(Person, Person.id == Face.person_id).where(Face.photo_id == photo_id)
    ).all()
    faces = [
        PhotoFace(
            f.id,
            tuple(float(v) for v in f.box),
            f.person_id,
            name,
            f.assigned_by,
            bool(f.user_rejected),
            f.cluster_exclusion,
        )
        for f, name in rows
    ]
    return sorted(faces, key=lambda f: (f.box[0], f.id))


def photo_locations(session: Session, photo_id: int) -> list[PhotoLocation]:
    """Where a photo's content lives, present locations first."""
    rows = session.scalars(select(PhotoLocation).where(PhotoLocation.photo_id == photo_id)).all()
    return sorted(rows, key=lambda loc: (loc.status != "present", loc.id))


def get_photo(session: Session, photo_id: int) -> Photo | None:
    return session.get(Photo, photo_id)
