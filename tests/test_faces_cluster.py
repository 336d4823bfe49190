"""Identity clustering as pure functions on synthetic descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from photokit.errors import PhotokitError
from photokit.faces.cluster import Labelled, assign_faces
from photokit.faces.cluster_config import ClusterConfig
from photokit.faces.evaluation import pairwise_precision_recall
from photokit.faces.index import FaceIndex


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


@pytest.mark.parametrize("queries", [1, 10**7])  # exact search, and the HNSW graph large jobs get
def test_index_finds_the_true_nearest_neighbours(queries):
    rng = np.random.default_rng(1)
    stored, probe = rng.normal(size=(300, 128)).astype(np.float32), rng.normal(size=(20, 128)).astype(np.float32)
    index = FaceIndex(128, expected=len(stored), queries=queries)
    assert index.exact == (queries == 1)
    index.add(stored, np.arange(100, 400))
    dist, ids = index.search(probe, 5)
    expected = np.linalg.norm(probe[:, None] - stored[None], axis=-1)  # small, for the check only
    order = np.argsort(expected, axis=1)[:, :5]
    assert (ids == order + 100).mean() >= 0.95
    assert np.allclose(dist[:, 0], expected.min(1), atol=1e-3)
    d, i = FaceIndex(128).search(probe, 3)  # empty: no neighbours, never an error
    assert np.isinf(d).all() and (i == -1).all()
    with pytest.raises(ValueError):
        index.add(np.full((1, 128), np.nan, np.float32), np.array([1]))


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
    emb, _ = _identities(1, 6, spread=0.05)
    photos = np.array([7, 7, 8, 8, 9, 9])  # look-alike pairs (twins): two faces in each photo
    labels = assign_faces(emb, photos)
    for photo in (7, 8, 9):
        assert len(set(labels[photos == photo].tolist())) == 2
    assert (labels != 0).all()
    lone = assign_faces(emb[:3], photos[:3])  # the second face of photo 7 has nobody to pair with
    assert lone[0] != lone[1] and 0 in lone[:2].tolist()


def test_new_faces_join_existing_people_which_stay_unchanged():
    emb, truth = _identities(3, 4)
    old = np.array([0, 1, 4, 5, 8, 9])
    new = np.setdiff1d(np.arange(len(emb)), old)
    labelled = Labelled(emb[old], np.array([11, 11, 22, 22, 33, 33]), old + 100)
    labels = assign_faces(emb[new], new + 100, labelled)
    person_of = {0: 11, 1: 22, 2: 33}
    assert labels.tolist() == [person_of[t] for t in truth[new]]


def test_spread_test_stops_chains():
    # a chain of faces 0.3 apart: every link is short but the ends are far apart
    direction = np.zeros(128, np.float32)
    direction[0] = 1.0
    chain = np.stack([direction * (0.3 * k + 1.0) for k in range(8)])
    loose = assign_faces(
        chain,
        np.arange(8),
        config=ClusterConfig(spread_z=50.0, merge_z=50.0, pair_distance=4.0, max_spread_growth=100.0),
    )
    guarded = assign_faces(chain, np.arange(8), config=ClusterConfig())
    assert len(set(loose.tolist()) - {0}) == 1
    assert len(set(guarded.tolist()) - {0}) > 1


def test_tight_identities_are_not_merged_by_a_fixed_threshold():
    # Two tight identities 0.35 apart (controlled portraits): a fixed 0.5 link would merge them.
    emb, truth = _identities(2, 10, spread=0.08, seed=3)
    centre = emb[truth == 0].mean(0)
    emb[truth == 1] = emb[truth == 1] - emb[truth == 1].mean(0) + centre
    emb[truth == 1, 0] += 0.35
    labels = assign_faces(emb, np.arange(len(emb)))
    precision, recall = pairwise_precision_recall(labels.tolist(), truth.tolist())
    assert precision == 1.0 and recall == 1.0


def test_a_loose_identity_is_placed_whole():
    # Identities spread wide (web photos across decades): a core of typical faces, and faces with no
    # other face within 0.5 (a fixed 0.5 link would leave them out) that still belong.
    emb, truth = _identities(3, 12, spread=0.35, seed=4)
    rng = np.random.default_rng(5)
    outliers = np.arange(len(emb)) % 12 >= 9
    for i in np.flatnonzero(outliers):
        centre = emb[(truth == truth[i]) & ~outliers].mean(0)
        noise = rng.normal(size=128)
        emb[i] = centre + 0.48 * noise / np.linalg.norm(noise)
    nearest = np.sort(np.linalg.norm(emb[:, None] - emb[None], axis=-1), axis=1)[:, 1]  # small: test only
    assert (nearest[outliers] > 0.5).all()
    labels = assign_faces(emb, np.arange(len(emb)))
    precision, recall = pairwise_precision_recall(labels.tolist(), truth.tolist())
    assert precision == 1.0 and recall >= 0.9 and (labels != 0).mean() >= 0.95


def test_unusable_descriptors_stay_unassigned():
    emb, _ = _identities(1, 5, spread=0.05)
    emb[1] = np.nan
    emb[2] = 0.0
    labels = assign_faces(emb, np.arange(5))
    assert labels[1] == 0 and labels[2] == 0
    assert len(set(labels[[0, 3, 4]].tolist())) == 1 and labels[0] != 0
    bad_labelled = Labelled(np.full((2, 128), np.nan, np.float32), np.array([5, 5]), np.array([90, 91]))
    assert (assign_faces(emb[[0, 3]], np.array([0, 3]), bad_labelled) != 5).all()


@pytest.mark.parametrize(
    "options", [{"max_distance": float("nan")}, {"max_distance": -0.1}, {"spread_z": 0}, {"min_faces": 0}]
)
def test_options_are_validated(options):
    with pytest.raises(PhotokitError):
        ClusterConfig(**options)


def test_pairwise_precision_recall_counts_pairs():
    # predicted: {a,b,c} together (one wrong), d alone, e unassigned; truth: {a,b}, {c,d,e}
    precision, recall = pairwise_precision_recall([1, 1, 1, 2, None], ["x", "x", "y", "y", "y"])
    assert precision == pytest.approx(1 / 3) and recall == pytest.approx(1 / 4)


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


def test_new_groups_take_the_old_ids_they_overlap_most():
    from photokit.faces.assignment import carried_over_ids

    previous = {f: 7 for f in range(6)} | {f: 8 for f in range(6, 11)} | {f: 7 for f in range(20, 27)}
    groups = {-1: list(range(11)), -2: list(range(20, 27)), -3: [30, 31]}
    # -1 (the largest group) holds 6 faces of 7, but -2 is 7 faces, all of 7: it keeps 7, -1 takes 8
    assert carried_over_ids(groups, previous, free={7, 8}) == {-2: 7, -1: 8}
    assert carried_over_ids(groups, previous, free={8}) == {-1: 8}  # only free ids are given
    assert carried_over_ids(groups, {}, free={7, 8}) == {}


def _person(rng, centre, n, first_photo, spread=0.1):
    noise = rng.normal(size=(n, 128))
    return (centre + spread * noise / np.linalg.norm(noise, axis=1, keepdims=True)).astype(np.float32), np.arange(
        first_photo, first_photo + n
    )


def test_faces_too_small_to_cluster_join_only_a_person_they_clearly_belong_to():
    from photokit.faces.cluster import join_people

    rng = np.random.default_rng(5)
    ca, cb = rng.normal(size=128), rng.normal(size=128)
    ca, cb = 0.5 + 0.3 * ca / np.linalg.norm(ca), 0.5 + 0.3 * cb / np.linalg.norm(cb)  # 0.42 apart
    ea, pa = _person(rng, ca, 10, 0)
    eb, pb = _person(rng, cb, 10, 100)
    people = Labelled(np.vstack([ea, eb]), np.array([7] * 10 + [9] * 10), np.concatenate([pa, pb]))
    near_a = (ca + 0.02).astype(np.float32)
    between = ((ca + cb) / 2).astype(np.float32)
    far = (ca + 3.0).astype(np.float32)
    queries = np.stack([near_a, near_a, between, far, far + 0.01])
    photos = np.array([500, 3, 501, 502, 503])  # the second one is in a photo person 7 already has a face of
    assert join_people(queries, photos, people).tolist() == [7, 0, 0, 0, 0]  # never a new person
    # its three nearest faces must all be that person's: plant one of 9's faces next to it
    planted = Labelled(
        np.vstack([people.embeddings, near_a + 0.001]),
        np.append(people.person_ids, 9),
        np.append(people.photo_ids, 999),
    )
    assert join_people(queries[:1], photos[:1], planted).tolist() == [0]
    assert join_people(queries[:1], photos[:1], Labelled.empty()).tolist() == [0]
