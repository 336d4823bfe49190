"""Identity clustering of face descriptors: pure functions on arrays, no database.

Constrained agglomeration on a k-nearest-neighbour graph, with a merge test that adapts to each
identity's own spread:

1. Every new face looks up its ``neighbours`` nearest faces (new or already in people) through a
   ``FaceIndex`` (exact search for small libraries, HNSW for large ones; never an n x n matrix).
   Pairs farther apart than ``max_distance`` are never linked.
2. The links are visited shortest first (Kruskal). Each group of faces keeps its size ``n``, the sum
   of its descriptors and of their squared norms, hence its mean ``mu`` and its spread ``v`` (mean
   squared distance of a face to ``mu``; shrunk towards the prior ``prior_spread`` with the weight
   of ``prior_weight`` faces, so a group of two does not trust its own spread yet).
3. Two groups A and B join when their means are as close as two samples of ONE identity would be:
   ``|mu_A - mu_B|^2 <= z^2 * v_AB * max(1/n_A + 1/n_B, group_floor)`` with ``v_AB`` the pooled
   spread; ``z = spread_z`` when a lone face is involved, ``merge_z`` between two groups (an identity
   is several looks, not one blob: the floor and the larger z let its groups meet). A tight identity
   (controlled portraits) thus accepts only close faces, a loose one (web photos across decades)
   faces farther away. Two lone faces, or two group means, never join farther apart than
   ``pair_distance``, and two groups never join when their union would be more than
   ``max_spread_growth`` times as spread as the looser of them, so a wrong merge cannot inflate a
   spread and snowball (measured: without it, 40 portrait identities collapse into 34).
4. Cannot-link: a group never takes a second face of a photo it has a face of (two faces of one
   photo are two people), and two existing people never join (that is the user's ``merge``).
5. Faces still alone join the group they fit best, up to ``place_z``, when the next-best group fits
   ``place_margin`` times worse (a face between two people stays unassigned: better no person than
   the wrong one). Groups of ``min_faces`` faces become new people; the rest stay unassigned.

Incremental: existing people enter as groups with their statistics and are never changed except by
receiving new faces, so a new photo is placed without re-clustering the library. The defaults were
chosen on the three development sets (``benchmarks/bench_faces.py`` measures them; see README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from photokit.faces.cluster_config import ClusterConfig
from photokit.faces.index import DEFAULT_DIM, FaceIndex, clean_descriptors


@dataclass
class Labelled:
    """Faces already in people: their descriptors, person ids and photo ids."""

    embeddings: np.ndarray  # (M, D) float32
    person_ids: np.ndarray  # (M,) int
    photo_ids: np.ndarray  # (M,) int

    @classmethod
    def empty(cls, dim: int = DEFAULT_DIM) -> Labelled:
        return cls(np.zeros((0, dim), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) between descriptor rows (small sets only: no index)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def group_sums(vectors: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group sums of rows (float64), by sorting once (``np.add.at`` is ~50x slower on 100k rows)."""
    out = np.zeros((n_groups, vectors.shape[1]))
    if len(vectors):
        order = np.argsort(group, kind="stable")
        starts = np.searchsorted(group[order], np.arange(n_groups))
        present = np.bincount(group, minlength=n_groups) > 0
        out[present] = np.add.reduceat(vectors[order].astype(np.float64), starts[present], axis=0)
    return out


def shrunk_spread(scatter, counts, config: ClusterConfig):
    """(spread v, weight in faces) from a group's scatter (sum of squared distances to its mean).

    ``v = (scatter + w0 * prior_spread) / (n - 1 + w0)``: the prior counts as ``w0 = prior_weight``
    faces, so a group's own spread takes over as it grows. Works on scalars and arrays.
    """
    weight = np.asarray(counts, np.float64) - 1 + config.prior_weight
    spread = (np.maximum(scatter, 0.0) + config.prior_weight * config.prior_spread) / np.maximum(weight, 1e-9)
    return spread, weight


def spread_gap_ratio(gap: np.ndarray, na: int, nb: int, a: tuple, b: tuple, floor: float = 0.0) -> float:
    """How many expected same-identity gaps apart two group means are (``a``, ``b``: (spread, weight)).

    Two disjoint samples of one identity with spread v have means about ``sqrt(v (1/na + 1/nb))`` apart;
    v is pooled from both groups.
    """
    (va, wa), (vb, wb) = a, b
    pooled = (va * wa + vb * wb) / (wa + wb)
    return math.sqrt(float(gap @ gap) / (pooled * max(1.0 / na + 1.0 / nb, floor)))


class Groups:
    """Union-find over groups of faces, with the sufficient statistics of the merge test."""

    def __init__(self, sums: np.ndarray, sq: np.ndarray, counts: np.ndarray, person: np.ndarray, config) -> None:
        self.parent = list(range(len(counts)))
        self.sums = sums.astype(np.float64)
        self.sq = sq.astype(np.float64).tolist()
        self.counts = counts.astype(np.int64).tolist()
        self.person = person.astype(np.int64).tolist()
        self.photos: list[set | None] = [None] * len(counts)
        self.config = config

    def find(self, a: int) -> int:
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    def spread(self, a: int) -> tuple[float, float]:
        """(shrunk spread v, its weight in faces) of root ``a``."""
        n = self.counts[a]
        spread, weight = shrunk_spread(self.sq[a] - float(self.sums[a] @ self.sums[a]) / n, n, self.config)
        return float(spread), float(weight)

    def compatible(self, a: int, b: int) -> bool:
        """Whether roots ``a`` and ``b`` may be one identity: cannot-links, then the spread test."""
        if self.person[a] and self.person[b]:
            return False
        pa, pb = self.photos[a], self.photos[b]
        if len(pa) > len(pb):
            pa, pb = pb, pa
        if any(p in pb for p in pa):
            return False
        na, nb = self.counts[a], self.counts[b]
        gap = self.sums[a] / na - self.sums[b] / nb
        if float(gap @ gap) > self.config.pair_distance**2:  # lone faces, and group means: never farther
            return False
        if min(na, nb) >= 2:  # two groups whose union is much looser than either are two people
            scatter = sum(self.sq[r] - float(self.sums[r] @ self.sums[r]) / self.counts[r] for r in (a, b))
            merged = (scatter + na * nb / (na + nb) * float(gap @ gap)) / (na + nb - 1)
            if merged > self.config.max_spread_growth * max(self.spread(a)[0], self.spread(b)[0]):
                return False
        ratio = spread_gap_ratio(gap, na, nb, self.spread(a), self.spread(b), self.config.group_floor)
        limit = self.config.merge_z if min(na, nb) >= 2 else self.config.spread_z
        return ratio <= limit

    def union(self, a: int, b: int) -> int:
        if self.counts[a] < self.counts[b]:
            a, b = b, a
        self.parent[b] = a
        self.sums[a] += self.sums[b]
        self.sq[a] += self.sq[b]
        self.counts[a] += self.counts[b]
        self.person[a] = self.person[a] or self.person[b]
        self.photos[a] |= self.photos[b]
        self.photos[b] = None
        return a


def _groups(embeddings, photo_ids, labelled: Labelled, config: ClusterConfig) -> tuple[Groups, np.ndarray]:
    """Groups: one per existing person (its statistics), then one per new face. Also node of each labelled face."""
    persons, node_of_labelled = np.unique(labelled.person_ids.astype(np.int64), return_inverse=True)
    dim = embeddings.shape[1]
    p = len(persons)
    sums = np.zeros((p + len(embeddings), dim))
    sums[:p] = group_sums(labelled.embeddings, node_of_labelled, p)
    sums[p:] = embeddings
    sq = np.zeros(p + len(embeddings))
    sq[:p] = np.bincount(node_of_labelled, (labelled.embeddings.astype(np.float64) ** 2).sum(1), minlength=p)
    sq[p:] = (embeddings.astype(np.float64) ** 2).sum(1)
    counts = np.concatenate([np.bincount(node_of_labelled, minlength=p), np.ones(len(embeddings), np.int64)])
    groups = Groups(sums, sq, counts, np.concatenate([persons, np.zeros(len(embeddings), np.int64)]), config)
    for node in range(p):
        groups.photos[node] = set()
    for node, photo in zip(node_of_labelled.tolist(), labelled.photo_ids.tolist()):
        groups.photos[node].add(photo)
    for i, photo in enumerate(photo_ids.tolist()):
        groups.photos[p + i] = {photo}
    return groups, node_of_labelled


def _links(embeddings: np.ndarray, labelled: Labelled, node_of_labelled: np.ndarray, config: ClusterConfig):
    """Candidate links (node, node) of the kNN graph, shortest first; and each new face's neighbour nodes."""
    m, n, p = len(labelled.embeddings), len(embeddings), int(node_of_labelled.max(initial=-1)) + 1
    index = FaceIndex(embeddings.shape[1], expected=m + n, queries=n)
    index.add(labelled.embeddings, np.arange(m))
    index.add(embeddings, np.arange(m, m + n))
    dist, ids = index.search(embeddings, config.neighbours + 1)  # +1: a face finds itself
    node_of = np.concatenate([node_of_labelled, np.arange(p, p + n)])
    near = np.where((ids >= 0) & (dist <= config.max_distance), node_of[np.maximum(ids, 0)], -1)
    src = np.repeat(np.arange(p, p + n), dist.shape[1])
    dist, ids = dist.ravel(), ids.ravel()
    keep = (ids >= 0) & (dist <= config.max_distance)
    src, dst, dist = src[keep], node_of[ids[keep]], dist[keep]
    keep = src != dst
    order = np.argsort(dist[keep], kind="stable")
    return src[keep][order], dst[keep][order], near


def _place_lone_faces(groups: Groups, emb: np.ndarray, near: np.ndarray, p: int) -> None:
    """Faces still alone join the group they fit clearly best (``place_z``, ``place_margin``), surest first."""
    cfg = groups.config
    prior = (cfg.prior_spread, cfg.prior_weight)
    offers = []
    for i in range(len(emb)):
        node = p + i
        if groups.find(node) != node or groups.counts[node] != 1:
            continue
        ratios = {}
        for other in near[i].tolist():
            root = groups.find(other) if other >= 0 else -1
            if root < 0 or root == node or root in ratios or (groups.counts[root] < 2 and not groups.person[root]):
                continue
            n = groups.counts[root]
            ratios[root] = spread_gap_ratio(emb[i] - groups.sums[root] / n, 1, n, prior, groups.spread(root))
        ranked = sorted(ratios.items(), key=lambda item: item[1])
        clear = len(ranked) == 1 or (len(ranked) > 1 and ranked[1][1] >= cfg.place_margin * ranked[0][1])
        if ranked and ranked[0][1] <= cfg.place_z and clear:
            offers.append((ranked[0][1], node, ranked[0][0]))
    for _, node, root in sorted(offers):
        root = groups.find(root)
        if not any(photo in groups.photos[root] for photo in groups.photos[node]):
            groups.union(root, node)


def assign_faces(
    embeddings: np.ndarray,
    photo_ids: np.ndarray,
    labelled: Labelled | None = None,
    config: ClusterConfig = ClusterConfig(),
    first_new_label: int = -1,
) -> np.ndarray:
    """Person label of each new face: an existing person id, a new label, or 0 (unassigned).

    New people get negative labels ``first_new_label, first_new_label - 1, ...`` so they never
    collide with existing (positive) person ids. ``labelled`` people are never changed. Faces whose
    descriptor is missing, zero or not finite stay unassigned (0).
    """
    photo_ids = np.asarray(photo_ids, np.int64)
    embeddings = np.asarray(embeddings, np.float32).reshape(len(photo_ids), -1)
    dim = embeddings.shape[1] if embeddings.shape[1] else DEFAULT_DIM
    labelled = labelled if labelled is not None else Labelled.empty(dim)
    labels = np.zeros(len(embeddings), np.int64)
    usable = clean_descriptors(embeddings) if len(embeddings) else np.zeros(0, bool)
    if not usable.any():
        return labels
    good = clean_descriptors(labelled.embeddings) if len(labelled.embeddings) else np.zeros(0, bool)
    labelled = Labelled(labelled.embeddings[good], labelled.person_ids[good], labelled.photo_ids[good])
    emb, photos = embeddings[usable], photo_ids[usable]
    groups, node_of_labelled = _groups(emb, photos, labelled, config)
    src, dst, near = _links(emb, labelled, node_of_labelled, config)
    rejected = []
    for k, (a, b) in enumerate(zip(src.tolist(), dst.tolist())):
        ra, rb = groups.find(a), groups.find(b)
        if ra == rb:
            continue
        if groups.compatible(ra, rb):
            groups.union(ra, rb)
        else:
            rejected.append(k)
    for k in rejected:  # groups have grown: a link refused early may now pass the test
        ra, rb = groups.find(int(src[k])), groups.find(int(dst[k]))
        if ra != rb and groups.compatible(ra, rb):
            groups.union(ra, rb)
    p = len(groups.counts) - len(emb)
    _place_lone_faces(groups, emb, near, p)
    roots = [groups.find(p + i) for i in range(len(emb))]
    new_label: dict[int, int] = {}
    out = np.zeros(len(emb), np.int64)
    for i, root in enumerate(roots):
        if groups.person[root]:
            out[i] = groups.person[root]
        elif groups.counts[root] >= config.min_faces:
            if root not in new_label:
                new_label[root] = first_new_label - len(new_label)
            out[i] = new_label[root]
    labels[usable] = out
    return labels


def person_statistics(embeddings: np.ndarray, person_ids: np.ndarray, config: ClusterConfig):
    """Per person (sorted ids): (ids, face counts, mean descriptors, shrunk spreads, their weights)."""
    persons, node = np.unique(person_ids, return_inverse=True)
    node = node.reshape(-1)
    counts = np.bincount(node, minlength=len(persons)).astype(np.int64)
    sums = group_sums(embeddings, node, len(persons))
    sq = np.bincount(node, (embeddings.astype(np.float64) ** 2).sum(1), minlength=len(persons))
    safe = np.maximum(counts, 1)
    spreads, weights = shrunk_spread(sq - (sums * sums).sum(1) / safe, counts, config)
    return persons, counts, sums / safe[:, None], spreads, weights


def join_people(
    embeddings: np.ndarray, photo_ids: np.ndarray, labelled: Labelled, config: ClusterConfig = ClusterConfig()
) -> np.ndarray:
    """Person id (or 0) of faces that may join existing people but never form one (faces too small to cluster).

    Their descriptors are noisier, so two kinds of evidence must agree: the person's spread test
    (within ``spread_z``, as ``identify``; any other person whose mean is within ``max_distance``
    fits ``place_margin`` times worse) and the face's own neighbourhood (its ``join_votes`` nearest
    faces are within ``max_distance`` and all that person's). Measured in docs/faces.md.
    The person must have no face of the photo yet. People are not updated as faces join, so noisy
    faces cannot pull a person towards someone else.
    """
    photo_ids = np.asarray(photo_ids, np.int64)
    embeddings = np.asarray(embeddings, np.float32).reshape(len(photo_ids), -1)
    out = np.zeros(len(embeddings), np.int64)
    good = clean_descriptors(labelled.embeddings) if len(labelled.embeddings) else np.zeros(0, bool)
    usable = clean_descriptors(embeddings) if len(embeddings) else np.zeros(0, bool)
    if good.sum() < config.join_votes or not usable.any():
        return out
    labelled = Labelled(labelled.embeddings[good], labelled.person_ids[good], labelled.photo_ids[good])
    persons, counts, means, spreads, weights = person_statistics(labelled.embeddings, labelled.person_ids, config)
    photos: dict[int, set] = {}
    for person, photo in zip(labelled.person_ids.tolist(), labelled.photo_ids.tolist()):
        photos.setdefault(person, set()).add(photo)
    rows = np.flatnonzero(usable)
    _, near_people = FaceIndex.build(means, queries=len(rows)).search(embeddings[rows], config.neighbours)
    face_dist, near_faces = FaceIndex.build(labelled.embeddings, queries=len(rows)).search(
        embeddings[rows], config.join_votes
    )
    prior = (config.prior_spread, config.prior_weight)
    for k, row in enumerate(rows.tolist()):
        x = embeddings[row].astype(np.float64)
        ratios = sorted(
            (spread_gap_ratio(x - means[c], 1, int(counts[c]), prior, (spreads[c], weights[c])), c)
            for c in near_people[k].tolist()
            if c >= 0 and float(np.linalg.norm(x - means[c])) <= config.max_distance
        )
        clear = len(ratios) == 1 or (len(ratios) > 1 and ratios[1][0] >= config.place_margin * ratios[0][0])
        if not ratios or ratios[0][0] > config.spread_z or not clear:
            continue
        person = int(persons[ratios[0][1]])
        votes = labelled.person_ids[near_faces[k][near_faces[k] >= 0]]
        if (face_dist[k] > config.max_distance).any() or (votes != person).any():
            continue
        if int(photo_ids[row]) not in photos[person]:
            out[row] = person
            photos[person].add(int(photo_ids[row]))
    return out
