"""Identity clustering as pure functions on synthetic descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from photokit.faces.cluster import ClusterConfig, Labelled, assign_faces, pairwise_distances
from photokit.faces.evaluation import pairwise_precision_recall


def _identities(n_people: int, per_person: int, spread: float = 0.15, seed: int = 0):
    """Descriptors of ``n_people`` well-separated identities; dlib-like scale (same < 0.5 < different)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, 128))
    centres *= 0.6 / np.linalg.norm(centres, axis=1, keepdims=True)  # ~0.85 apart
    emb, truth = [], []
    for p, centre in enumerate(centres):
        for _ in range(per_person):
            noise = rng.normal(size=128)
            emb.append(centre + spread * noise / np.linalg.norm(noise))
            truth.append(p)
    return np.array(emb, np.float32), np.array(truth)


def test_pairwise_distances_match_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 128)), rng.normal(size=(7, 128))
    expected = np.linalg.norm(a[:, None] - b[None], axis=-1)
    assert np.allclose(pairwise_distances(a, b), expected, atol=1e-6)


def test_separated_identities_are_recovered():
    emb, truth = _identities(4, 5)
    labels = assign_faces(emb, np.arange(len(emb)))
    precision, recall = pairwise_precision_recall(labels.tolist(), truth.tolist())
    assert precision == 1.0 and recall == 1.0
    assert len(set(labels.tolist())) == 4 and (labels < 0).all()


def test_lone_face_is_not_a_person():
    emb, _ = _identities(3, 1)
    labels = assign_faces(emb, np.arange(3))
    assert (labels == 0).all()


def test_two_faces_of_one_photo_never_share_a_person():
    emb, _ = _identities(1, 4, spread=0.05)
    photos = np.array([7, 7, 8, 9])  # the first two faces are in the same photo (a twin, a mirror...)
    labels = assign_faces(emb, photos)
    assert labels[0] != labels[1]
    assert (labels != 0).all()


def test_new_faces_join_existing_people_which_stay_unchanged():
    emb, truth = _identities(3, 4)
    old = np.array([0, 1, 4, 5, 8, 9])
    new = np.setdiff1d(np.arange(len(emb)), old)
    labelled = Labelled(emb[old], np.array([11, 11, 22, 22, 33, 33]), old + 100)
    labels = assign_faces(emb[new], new + 100, labelled)
    person_of = {0: 11, 1: 22, 2: 33}
    assert labels.tolist() == [person_of[t] for t in truth[new]]


def test_centroid_guard_stops_chains():
    # a chain of faces 0.4 apart: every link is within max_distance but the ends are far apart
    direction = np.zeros(128, np.float32)
    direction[0] = 1.0
    chain = np.stack([direction * 0.4 * k for k in range(6)])
    loose = assign_faces(chain, np.arange(6), config=ClusterConfig(max_centroid_distance=10.0))
    guarded = assign_faces(chain, np.arange(6), config=ClusterConfig())
    assert len(set(loose.tolist()) - {0}) == 1
    assert len(set(guarded.tolist()) - {0}) > 1


def test_min_faces_controls_new_people():
    emb, _ = _identities(2, 2, spread=0.05)
    assert (assign_faces(emb, np.arange(4), config=ClusterConfig(min_faces=2)) != 0).all()
    assert (assign_faces(emb, np.arange(4), config=ClusterConfig(min_faces=3)) == 0).all()


@pytest.mark.parametrize(
    "predicted, truth, expected",
    [
        ([1, 1, 2, 2], ["a", "a", "b", "b"], (1.0, 1.0)),
        ([1, 1, 1, 1], ["a", "a", "b", "b"], (2 / 6, 1.0)),
        ([1, 2, 3, 4], ["a", "a", "b", "b"], (1.0, 0.0)),
        ([None, None, 3, 3], ["a", "a", "b", "b"], (1.0, 0.5)),
    ],
)
def test_pairwise_precision_recall(predicted, truth, expected):
    assert pairwise_precision_recall(predicted, truth) == pytest.approx(expected)
