"""What ``people list`` shows, read through a :class:`~photokit.db.reader.SqlReader`: the people with their
counts, and whether the suggestions kept in the cache file are still those of the library's state.

No SQLAlchemy, no numpy (the command must start in well under half a second). Each query is defined here once; the ORM
code (``people.list_people``, ``matching.library_token``, ``suggest.cached_suggestions``) runs the same SQL
through a ``SessionReader``, so both ways give the same numbers and the same cache token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import SupportsInt

from photokit.db.reader import SqlReader
from photokit.errors import PhotokitError
from photokit.faces.cluster_config import ClusterConfig, cluster_config
from photokit.faces.vocab import DescriptorKind

# `people list` hides unnamed people with fewer faces than this unless --all (likely strangers).
SMALL_GROUP = 3
CACHE_FORMAT = 2  # bump when what a cached suggestion holds, or how the token is made, changes

# One aggregate query: listing must stay instant with 100k faces (no per-person face loading).
PEOPLE_SQL = """
SELECT people.id, people.name, people.cover_face_id, people.ignored,
       COUNT(faces.id), COUNT(DISTINCT faces.photo_id)
FROM people LEFT OUTER JOIN faces ON faces.person_id = people.id
GROUP BY people.id, people.name, people.cover_face_id, people.ignored
ORDER BY people.id
"""
# Casts keep the token portable: PostgreSQL multiplies no booleans, and 32-bit products of ids overflow.
ASSIGNED_FACES_SQL = """
SELECT COUNT(id), MAX(id), SUM(person_id), SUM(CAST(id AS BIGINT) * person_id)
FROM faces WHERE person_id IS NOT NULL
"""
PEOPLE_STATE_SQL = "SELECT COUNT(id), MAX(id), SUM(id * CAST(ignored AS INTEGER)) FROM people"
NAMES_SQL = "SELECT id, name FROM people WHERE name IS NOT NULL ORDER BY id"
ACTIVE_KIND_KEY = "descriptor_kind"  # library_info key of the library's descriptor kind
ACTIVE_KIND_SQL = "SELECT value FROM library_info WHERE key = :key"
DISMISSED_SQL = "SELECT kind, person_id, other_person_id, face_id FROM dismissed_suggestions ORDER BY id"


def list_people(reader: SqlReader, include_all: bool = False, small_group: int = SMALL_GROUP) -> list[dict]:
    """People, most faces first. Without ``include_all``: no ignored people, no small unnamed groups."""
    rows = [
        {
            "id": int(pid),
            "name": name,
            "faces": int(n_faces),
            "photos": int(n_photos),
            "cover_face": cover,
            "ignored": bool(ignored),
        }
        for pid, name, cover, ignored, n_faces, n_photos in reader.rows(PEOPLE_SQL)
    ]
    if not include_all:
        rows = [r for r in rows if not r["ignored"] and (r["name"] is not None or r["faces"] >= small_group)]
    return sorted(rows, key=lambda r: (-r["faces"], r["id"]))


def _number(value: SupportsInt | None) -> int | None:
    """Sums come back as int (SQLite) or Decimal (PostgreSQL's SUM of BIGINT): one form for the token."""
    return None if value is None else int(value)


def library_token(reader: SqlReader) -> tuple:
    """Changes whenever an assignment, a person or the ignored flags change (a few ms on 100k faces)."""
    faces = reader.rows(ASSIGNED_FACES_SQL)[0]
    people = reader.rows(PEOPLE_STATE_SQL)[0]
    return tuple(_number(v) for v in (*faces, *people))


def active_kind(reader: SqlReader) -> DescriptorKind:
    """The library's descriptor kind (dlib's unless the user chose another)."""
    found = reader.rows(ACTIVE_KIND_SQL, {"key": ACTIVE_KIND_KEY})
    if not found or found[0][0] is None:
        return DescriptorKind.DLIB128
    try:
        return DescriptorKind(found[0][0])
    except ValueError:
        raise PhotokitError(
            f"the library's face descriptor kind '{found[0][0]}' is unknown to this photokit "
            f"(known: {', '.join(DescriptorKind)}); was it written by a newer version?"
        ) from None


def suggestions_token(reader: SqlReader, config: ClusterConfig | None = None) -> str:
    """Changes whenever suggestions may: assignments, people, ignored flags, names, dismissals, options
    (``config``: the active descriptor kind's clustering defaults unless given)."""
    config = config or cluster_config(active_kind(reader))
    names = [(int(pid), str(name)) for pid, name in reader.rows(NAMES_SQL)]
    dismissed = [(str(kind), *map(_number, ids)) for kind, *ids in reader.rows(DISMISSED_SQL)]
    state = (CACHE_FORMAT, library_token(reader), names, dismissed, config)
    return hashlib.sha256(repr(state).encode()).hexdigest()


def cached_suggestions_document(cache_file: Path | None, token: str) -> dict | None:
    """The suggestions kept in ``cache_file`` when they were computed for ``token``; None otherwise (no file,
    an unreadable or damaged one, another state: the cache is a convenience, never an error)."""
    if cache_file is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(cache_file.read_text())
        if isinstance(doc, dict) and doc.get("token") == token:
            return doc
    return None


def cached_pending(reader: SqlReader, cache_file: Path | None, config: ClusterConfig | None = None) -> int | None:
    """How many suggestions are pending, from the cache file; None when it does not hold the current answer
    (the caller then computes the suggestions, which needs numpy and the ORM)."""
    doc = cached_suggestions_document(cache_file, suggestions_token(reader, config))
    if doc is None:
        return None
    with contextlib.suppress(KeyError, TypeError):
        return len(doc["merges"]) + len(doc["moves"])  # what Suggestions.from_json(doc).pending counts
    return None
