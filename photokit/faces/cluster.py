"""Identity clustering of 128-D dlib face descriptors: pure functions on arrays, no database.

The algorithm is incremental and density-aware, like Immich's facial recognition job:

1. Every new face counts its neighbours: faces (new or already clustered) within ``max_distance``.
   A face with at least ``min_faces`` faces in its neighbourhood (itself included) is a *core* face.
2. New faces are visited densest first. A face joins the person of its nearest already-labelled
   neighbour (a person it may join, see below). Failing that, a core face founds a new person;
   a non-core face is *deferred*.
3. Deferred faces get one more chance once every core face has been placed: they join the nearest
   labelled neighbour's person, or stay unassigned (a lone face is not a person yet).

A person may receive a face only when it has no face of the same photo (two faces of one photo are
two people) and the face is not farther than ``max_centroid_distance`` from the person's mean
descriptor (which stops chains of look-alikes from merging two people through single links).

Defaults were chosen from measurements on ``../shared/data/faces/deepface`` (62 labelled photos,
13 people): same-person descriptor distances have a 95th percentile of 0.50 and a maximum of
0.62, different people a minimum of 0.52 and a 1st percentile of 0.66. ``max_distance=0.5`` keeps
every single link between different people out while the neighbourhood graph still connects each
person; ``max_centroid_distance=0.55`` lets a face join a person whose mean it is close to.
Sweeping ``max_distance`` over 0.45 / 0.5 / 0.55 gave pairwise precision 1.00 / 1.00 / 0.88 and
recall 0.95 / 1.00 / 1.00 there; ``min_faces=3`` (Immich's default) loses the people with only two
photos. ``benchmarks/bench_faces.py`` re-measures all of it (``threshold_study``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClusterConfig:
    max_distance: float = 0.5  # face-to-face link (dlib's own "same person" rule of thumb is 0.6)
    max_centroid_distance: float = 0.55  # face to a person's mean descriptor
    min_faces: int = 2  # neighbourhood size (itself included) that lets a face found a person


@dataclass
class Labelled:
    """Faces already in people: their descriptors, person ids and photo ids."""

    embeddings: np.ndarray  # (M, 128) float32
    person_ids: np.ndarray  # (M,) int
    photo_ids: np.ndarray  # (M,) int

    @classmethod
    def empty(cls, dim: int = 128) -> Labelled:
        return cls(np.zeros((0, dim), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) between descriptor rows."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def assign_faces(
    embeddings: np.ndarray,
    photo_ids: np.ndarray,
    labelled: Labelled | None = None,
    config: ClusterConfig = ClusterConfig(),
    first_new_label: int = -1,
) -> np.ndarray:
    """Person label of each new face: an existing person id, a new label, or 0 (unassigned).

    New people get negative labels ``first_new_label, first_new_label - 1, ...`` so they never
    collide with existing (positive) person ids. ``labelled`` people are never changed.
    """
    embeddings = np.asarray(embeddings, np.float32).reshape(len(photo_ids), -1)
    photo_ids = np.asarray(photo_ids, np.int64)
    labelled = labelled if labelled is not None else Labelled.empty(embeddings.shape[1] if len(embeddings) else 128)
    n, m = len(embeddings), len(labelled.embeddings)
    labels = np.zeros(n, np.int64)
    if n == 0:
        return labels

    all_emb = np.concatenate([labelled.embeddings.astype(np.float32), embeddings])
    all_label = np.concatenate([labelled.person_ids.astype(np.int64), labels])  # updated in place below
    dist = pairwise_distances(embeddings, all_emb)  # (n, m + n)
    neighbours = dist <= config.max_distance
    density = neighbours.sum(1)  # includes the face itself

    # Running per-person descriptor sums (for centroids) and photo sets (for the same-photo rule).
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    photos: dict[int, set[int]] = {}
    for emb, pid, photo in zip(labelled.embeddings, labelled.person_ids, labelled.photo_ids):
        pid = int(pid)
        sums[pid] = sums.get(pid, 0.0) + emb.astype(np.float64)
        counts[pid] = counts.get(pid, 0) + 1
        photos.setdefault(pid, set()).add(int(photo))

    def best_person(i: int) -> int:
        row = dist[i]
        for j in np.argsort(row, kind="stable"):
            if row[j] > config.max_distance:
                break
            person = int(all_label[j])
            if person == 0 or j == m + i:
                continue
            if int(photo_ids[i]) in photos[person]:
                continue
            centroid = sums[person] / counts[person]
            if np.linalg.norm(embeddings[i] - centroid) > config.max_centroid_distance:
                continue
            return person
        return 0

    def place(i: int, person: int) -> None:
        labels[i] = person
        all_label[m + i] = person
        sums[person] = sums.get(person, 0.0) + embeddings[i].astype(np.float64)
        counts[person] = counts.get(person, 0) + 1
        photos.setdefault(person, set()).add(int(photo_ids[i]))

    next_label = first_new_label
    deferred = []
    for i in np.argsort(-density, kind="stable"):
        person = best_person(i)
        if person:
            place(i, person)
        elif density[i] >= config.min_faces:
            place(i, next_label)
            next_label -= 1
        else:
            deferred.append(i)
    for i in deferred:
        person = best_person(i)
        if person:
            place(i, person)
    return labels
