"""What clustering probably got wrong, ranked, so a user fixes it with `people merge` / `people move`.

- *Merges*: two people whose means are as close as two halves of one identity would be (the spread
  test of ``cluster.py``, with the looser ``SUGGEST_Z``), with no photo in common. Found through a
  nearest-neighbour search over person means (a few thousand vectors even for 100k faces).
- *Moves*: an automatically placed face that fails its own person's spread test but passes another
  person's, which has no face of the same photo.

Two people the user named differently are never suggested as one; faces the user placed are never
suggested to move; a suggestion the user dismissed (``dismissals.py``) is not made again. Each
suggestion has an id (``m3-7``: people 3 and 7; ``f131-7``: face 131 to person 7) to dismiss it by.

``cached_suggestions`` keeps the last result in a file keyed on the library's state (assignments,
people, names, dismissals), so `people list` shows the pending count without recomputing it.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from photokit.db.models import DismissedSuggestion, Person
from photokit.db.reader import SessionReader
from photokit.faces import listing
from photokit.faces.cluster import spread_gap_ratio
from photokit.faces.cluster_config import ClusterConfig, cluster_config
from photokit.faces.descriptors import active_kind
from photokit.faces.index import FaceIndex
from photokit.faces.matching import LibraryFaces, PersonStats
from photokit.faces.vocab import SuggestionKind
from photokit.store.atomic import atomic_write_text

SUGGEST_Z = 1.5  # x the clustering's spread_z: how close is "probably one person"
CANDIDATES = 8  # nearest person means looked at per person / per face


def merge_id(a: int, b: int) -> str:
    return f"m{min(a, b)}-{max(a, b)}"


def move_id(face: int, to_person: int) -> str:
    return f"f{face}-{to_person}"


@dataclass
class MergeSuggestion:
    keep: int  # the larger person: `photokit people merge KEEP OTHER`
    other: int
    score: float  # expected same-identity gaps between the two means (lower = surer)
    distance: float  # between the two means


@dataclass
class MoveSuggestion:
    face: int
    from_person: int
    to_person: int
    score: float  # how much better the face fits ``to_person`` (own ratio - other ratio)


@dataclass
class Suggestions:
    merges: list[MergeSuggestion] = field(default_factory=list)
    moves: list[MoveSuggestion] = field(default_factory=list)
    total: int | None = None  # pending before a limit cut the lists (None: the lists are whole)

    @property
    def pending(self) -> int:
        return len(self.merges) + len(self.moves) if self.total is None else self.total

    def limited(self, limit: int | None) -> Suggestions:
        """At most ``limit`` of each kind; ``pending`` still counts them all."""
        if not limit:
            return self
        return replace(self, merges=self.merges[:limit], moves=self.moves[:limit], total=self.pending)

    def to_json(self) -> dict:
        return {
            "pending": self.pending,
            "merges": [{"id": merge_id(m.keep, m.other), **asdict(m)} for m in self.merges],
            "moves": [{"id": move_id(m.face, m.to_person), **asdict(m)} for m in self.moves],
        }

    @classmethod
    def from_json(cls, doc: dict) -> Suggestions:
        merges = [MergeSuggestion(**{k: v for k, v in m.items() if k != "id"}) for m in doc["merges"]]
        moves = [MoveSuggestion(**{k: v for k, v in m.items() if k != "id"}) for m in doc["moves"]]
        return cls(merges, moves)


def _photos_by_person(faces: LibraryFaces) -> dict[int, set]:
    photos: dict[int, set] = {}
    for person, photo in zip(faces.person_ids.tolist(), faces.photo_ids.tolist()):
        photos.setdefault(person, set()).add(photo)
    return photos


def _ratio(stats: PersonStats, gap: np.ndarray, a: int, b: int) -> float:
    return spread_gap_ratio(
        gap,
        int(stats.counts[a]),
        int(stats.counts[b]),
        (float(stats.spreads[a]), float(stats.weights[a])),
        (float(stats.spreads[b]), float(stats.weights[b])),
    )


def _merges(stats: PersonStats, photos: dict, names: dict, limit_z: float, config: ClusterConfig) -> list:
    index = FaceIndex.build(stats.means, np.arange(len(stats.person_ids)), queries=len(stats.person_ids))
    dist, idx = index.search(stats.means, CANDIDATES + 1)
    seen, out = set(), []
    for a in range(len(stats.person_ids)):
        for d, b in zip(dist[a].tolist(), idx[a].tolist()):
            if b < 0 or b == a or (min(a, b), max(a, b)) in seen or d > config.max_distance:
                continue
            seen.add((min(a, b), max(a, b)))
            pa, pb = int(stats.person_ids[a]), int(stats.person_ids[b])
            if names.get(pa) and names.get(pb) and names[pa] != names[pb]:
                continue  # the user named them as two people
            if photos[pa] & photos[pb]:
                continue
            score = _ratio(stats, stats.means[a] - stats.means[b], a, b)
            if score <= limit_z:
                keep, other = (pa, pb) if stats.counts[a] >= stats.counts[b] else (pb, pa)
                out.append(MergeSuggestion(keep, other, round(score, 3), round(float(d), 4)))
    return sorted(out, key=lambda m: (m.score, m.keep, m.other))


def _moves(faces: LibraryFaces, stats: PersonStats, photos: dict, config: ClusterConfig) -> list:
    automatic = np.array([by != "user" for by in faces.assigned_by], bool)
    if not automatic.any():
        return []
    index = FaceIndex.build(stats.means, np.arange(len(stats.person_ids)), queries=int(automatic.sum()))
    rows = np.flatnonzero(automatic)
    dist, idx = index.search(faces.embeddings[rows], min(CANDIDATES, len(stats.person_ids)))
    prior = (config.prior_spread, config.prior_weight)
    out = []
    for k, row in enumerate(rows.tolist()):
        own = stats.row(int(faces.person_ids[row]))
        n_own = int(stats.counts[own])
        if n_own < 2:
            continue
        x = faces.embeddings[row].astype(np.float64)
        rest = (stats.means[own] * n_own - x) / (n_own - 1)  # the person without this face
        own_spread = (float(stats.spreads[own]), float(stats.weights[own]))
        own_ratio = spread_gap_ratio(x - rest, 1, n_own - 1, prior, own_spread)
        if own_ratio <= config.spread_z:
            continue
        for d, other in zip(dist[k].tolist(), idx[k].tolist()):
            if other < 0 or other == own or d > config.max_distance:
                continue
            to_person = int(stats.person_ids[other])
            if int(faces.photo_ids[row]) in photos[to_person]:
                continue
            other_spread = (float(stats.spreads[other]), float(stats.weights[other]))
            ratio = spread_gap_ratio(x - stats.means[other], 1, int(stats.counts[other]), prior, other_spread)
            if ratio <= config.spread_z and ratio < own_ratio:
                out.append(
                    MoveSuggestion(
                        int(faces.face_ids[row]), int(faces.person_ids[row]), to_person, round(own_ratio - ratio, 3)
                    )
                )
            break  # only the nearest other person
    return sorted(out, key=lambda m: (-m.score, m.face))


_DISMISSED = (
    DismissedSuggestion.kind,
    DismissedSuggestion.person_id,
    DismissedSuggestion.other_person_id,
    DismissedSuggestion.face_id,
)


def _dismissed(session: Session) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Dismissed merges (person, person; smaller id first) and moves (face, person)."""
    rows = session.execute(select(*_DISMISSED)).all()
    merges = {(a, b) for kind, a, b, _ in rows if kind == SuggestionKind.MERGE and b is not None}
    moves = {(f, a) for kind, a, _, f in rows if kind == SuggestionKind.MOVE and f is not None}
    return merges, moves


def suggest(session: Session, config: ClusterConfig | None = None, limit: int | None = None) -> Suggestions:
    """Ranked merge and move suggestions over the non-ignored people (``limit`` of each kind), less dismissed ones.

    Faces of the library's active descriptor kind only (``config``: that kind's defaults)."""
    config = config or cluster_config(active_kind(session))
    faces = LibraryFaces.load(session)
    if len(faces.face_ids) == 0:
        return Suggestions()
    stats = PersonStats.of(faces, config)
    photos = _photos_by_person(faces)
    names = dict(session.execute(select(Person.id, Person.name).where(Person.name.is_not(None))).all())
    no_merge, no_move = _dismissed(session)
    merges = [
        m
        for m in _merges(stats, photos, names, SUGGEST_Z * config.spread_z, config)
        if (min(m.keep, m.other), max(m.keep, m.other)) not in no_merge
    ]
    moves = [m for m in _moves(faces, stats, photos, config) if (m.face, m.to_person) not in no_move]
    return Suggestions(merges, moves).limited(limit)


def cached_suggestions(
    session: Session, cache_file: Path | None, config: ClusterConfig | None = None, limit: int | None = None
) -> Suggestions:
    """``suggest``, answered from ``cache_file`` while the library's state is the one it was computed for
    (``listing.suggestions_token``: ``people list`` checks the same token without the ORM).

    The cache is a convenience: an unreadable or unwritable file (a read-only home) only costs a recompute.
    """
    config = config or cluster_config(active_kind(session))
    token = listing.suggestions_token(SessionReader(session), config)
    doc = listing.cached_suggestions_document(cache_file, token)
    if doc is not None:
        with contextlib.suppress(KeyError, TypeError):
            return Suggestions.from_json(doc).limited(limit)
    found = suggest(session, config)
    if cache_file is not None:
        with contextlib.suppress(OSError):
            atomic_write_text(cache_file, json.dumps({"token": token, **found.to_json()}))
    return found.limited(limit)
