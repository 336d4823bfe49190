"""Who is this face? Person-level statistics and a cached face index for ``identify`` and suggestions.

``PersonMatcher`` is built once from the library's assigned faces (columns only, never whole rows)
and answers in about a millisecond per face: a search over person means, then the same spread test
clustering uses (``cluster.spread_gap_ratio``). ``matcher_for(session)`` keeps one per database and
rebuilds it only when the people changed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from photokit.db.models import Face, Person
from photokit.db.reader import SessionReader
from photokit.errors import PhotokitError
from photokit.faces import listing
from photokit.faces.cluster import person_statistics, spread_gap_ratio
from photokit.faces.cluster_config import ClusterConfig, cluster_config
from photokit.faces.descriptors import active_kind
from photokit.faces.index import FaceIndex, clean_descriptors
from photokit.faces.vocab import DescriptorKind

CANDIDATES = 8  # nearest person means tested per face
TOKEN_TTL_S = 1.0  # how stale another process's edits may be seen (this process's: never)


@dataclass
class LibraryFaces:
    """Assigned faces with a usable descriptor of one kind (the library's active one), as arrays aligned by face."""

    face_ids: np.ndarray
    person_ids: np.ndarray
    photo_ids: np.ndarray
    embeddings: np.ndarray  # (F, D) float32
    assigned_by: list

    @classmethod
    def load(cls, session: Session, include_ignored: bool = False, kind: str | None = None) -> LibraryFaces:
        kind = DescriptorKind(kind or active_kind(session))
        query = (
            select(Face.id, Face.person_id, Face.photo_id, Face.embedding, Face.assigned_by)
            .join(Person, Person.id == Face.person_id)
            .where(Face.embedding.is_not(None), Face.descriptor_kind == str(kind))
            .order_by(Face.id)
        )
        if not include_ignored:
            query = query.where(Person.ignored.is_(False))
        rows = session.execute(query).all()
        size = 4 * kind.dim
        blobs = [r[3] for r in rows if len(r[3]) == size]
        rows = [r for r in rows if len(r[3]) == size]
        emb = np.frombuffer(b"".join(blobs), "<f4").reshape(-1, kind.dim).astype(np.float32)
        ok = clean_descriptors(emb) if len(emb) else np.zeros(0, bool)
        rows = [r for r, keep in zip(rows, ok.tolist()) if keep]
        return cls(
            np.array([r[0] for r in rows], np.int64),
            np.array([r[1] for r in rows], np.int64),
            np.array([r[2] for r in rows], np.int64),
            emb[ok] if len(emb) else np.zeros((0, kind.dim), np.float32),
            [r[4] for r in rows],
        )


@dataclass
class PersonStats:
    """Per person (sorted ids): face count, mean descriptor and shrunk spread."""

    person_ids: np.ndarray
    counts: np.ndarray
    means: np.ndarray
    spreads: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, faces: LibraryFaces, config: ClusterConfig) -> PersonStats:
        return cls(*person_statistics(faces.embeddings, faces.person_ids, config))

    def row(self, person_id: int) -> int:
        return int(np.searchsorted(self.person_ids, person_id))


class PersonMatcher:
    """``identify(embedding)``: the person a face belongs to.

    Candidates are the people with the nearest means (an index of a few thousand vectors), tested
    with the spread test; the reported distance is to the nearest face of the chosen (or nearest)
    person, so a 100k-face library answers in about a millisecond.
    """

    def __init__(self, faces: LibraryFaces, config: ClusterConfig = ClusterConfig()) -> None:
        self.config = config
        self.faces = faces
        self.stats = PersonStats.of(faces, config)
        self.index = FaceIndex.build(self.stats.means, np.arange(len(self.stats.person_ids)), queries=1)
        order = np.argsort(faces.person_ids, kind="stable")
        self._sorted_faces = faces.embeddings[order]
        self._starts = np.searchsorted(faces.person_ids[order], self.stats.person_ids)

    def _nearest_face(self, row: int, query: np.ndarray) -> float:
        start = self._starts[row]
        members = self._sorted_faces[start : start + int(self.stats.counts[row])]
        return float(np.sqrt(((members - query) ** 2).sum(1).min()))

    def identify(self, embedding: np.ndarray) -> tuple[int | None, float]:
        """(person id or None, distance to the nearest face of that person; inf when there is none)."""
        query = np.asarray(embedding, np.float32).reshape(1, -1)
        if query.shape[1] != self.faces.embeddings.shape[1]:
            raise PhotokitError(
                f"a face descriptor of {query.shape[1]} values cannot be compared with this library's "
                f"{self.faces.embeddings.shape[1]}-value descriptors (another descriptor kind)"
            )
        if not len(self.index) or not clean_descriptors(query)[0]:
            return None, float("inf")
        _, rows = self.index.search(query, CANDIDATES)
        prior = (self.config.prior_spread, self.config.prior_weight)
        nearest = float("inf")
        for row in rows[0].tolist():
            if row < 0:
                break
            distance = self._nearest_face(row, query[0])
            nearest = min(nearest, distance)
            if distance > self.config.max_distance:
                continue
            spread = (float(self.stats.spreads[row]), float(self.stats.weights[row]))
            gap = query[0] - self.stats.means[row]
            if spread_gap_ratio(gap, 1, int(self.stats.counts[row]), prior, spread) <= self.config.spread_z:
                return int(self.stats.person_ids[row]), distance
        return None, nearest


def library_token(session: Session) -> tuple:
    """``listing.library_token`` in this session's transaction."""
    return listing.library_token(SessionReader(session))


@dataclass
class _Cached:
    token: tuple
    generation: int
    checked_at: float
    config: ClusterConfig
    matcher: PersonMatcher


_CACHE: dict[str, _Cached] = {}
_LOCK = threading.Lock()
_GENERATION = [0]


def invalidate() -> None:
    """People changed in this process: the next ``matcher_for`` rebuilds."""
    with _LOCK:
        _GENERATION[0] += 1


def matcher_for(session: Session, config: ClusterConfig | None = None) -> PersonMatcher:
    """The cached matcher of this session's database (its active descriptor kind; ``config``: that kind's).

    Rebuilt when this process changed people (``invalidate``) or, checked at most every
    ``TOKEN_TTL_S``, when the library's token changed (another process's edits).
    """
    kind = active_kind(session)
    config = config or cluster_config(kind)
    key = f"{session.get_bind().url}#{kind}"
    now = time.monotonic()
    with _LOCK:
        cached = _CACHE.get(key)
        fresh = cached is not None and cached.generation == _GENERATION[0] and cached.config == config
        if fresh and now - cached.checked_at < TOKEN_TTL_S:
            return cached.matcher
    token = library_token(session)
    if fresh and cached.token == token:
        cached.checked_at = now
        return cached.matcher
    generation = _GENERATION[0]
    matcher = PersonMatcher(LibraryFaces.load(session, kind=kind), config)
    with _LOCK:
        _CACHE[key] = _Cached(token, generation, now, config, matcher)
    return matcher
