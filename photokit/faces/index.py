"""Nearest-neighbour search over face descriptors with bounded memory (faiss), never an n x n matrix.

When the work is small (stored descriptors x expected queries <= ``EXACT_PAIRS``: identifying a few
faces, placing 1,000 new faces in a 100,000-face library, clustering up to ~20,000 faces) the search
is exact (``IndexFlatL2``: faiss compares queries with the stored rows block by block, so memory stays
O(queries x k) and there is nothing to build). Above it (clustering a large library from scratch) an
HNSW graph (Malkov & Yashunin 2018) is built; ``benchmarks/bench_cluster_scale.py`` measures its
recall of the true neighbours. Distances are Euclidean (the metric of both descriptor kinds).
"""

from __future__ import annotations

import numpy as np

from photokit.faces.vocab import DescriptorKind

# Width of an index built from an empty array that carries none (any descriptor kind's vectors work).
DEFAULT_DIM = DescriptorKind.DLIB128.dim
EXACT_PAIRS = 4e8  # stored x queried descriptors: exact search up to this much work, HNSW above
SMALL_BATCH = 64  # queries: fewer are searched on one thread
HNSW_LINKS = 32  # graph degree M
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96


def _faiss():
    import faiss

    return faiss


def clean_descriptors(vectors: np.ndarray) -> np.ndarray:
    """Rows that are finite and not all zero: the descriptors that can be compared at all."""
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2:
        return np.zeros(0, bool)
    return np.isfinite(vectors).all(axis=1) & (np.abs(vectors).sum(axis=1) > 0)


class FaceIndex:
    """Descriptors with integer ids; ``search`` gives each query's ``k`` nearest (distance, id)."""

    def __init__(self, dim: int = DEFAULT_DIM, expected: int = 0, queries: int = 1) -> None:
        faiss = _faiss()
        self.dim = dim
        self.exact = float(expected) * max(queries, 1) <= EXACT_PAIRS
        if self.exact:
            inner = faiss.IndexFlatL2(dim)
        else:
            inner = faiss.IndexHNSWFlat(dim, HNSW_LINKS)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        self._index = faiss.IndexIDMap(inner)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray | None = None, queries: int = 1) -> FaceIndex:
        vectors = np.ascontiguousarray(vectors, np.float32)
        dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else DEFAULT_DIM
        index = cls(dim, expected=len(vectors), queries=queries)
        index.add(vectors, np.arange(len(vectors)) if ids is None else ids)
        return index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim)
        if len(vectors):
            if not clean_descriptors(vectors).all():
                raise ValueError("face descriptors must be finite and non-zero to be indexed")
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, ids), each (len(queries), k), nearest first; missing neighbours: inf and -1."""
        queries = np.ascontiguousarray(queries, np.float32).reshape(-1, self.dim)
        k = max(1, int(k))
        if len(self) == 0 or len(queries) == 0:
            return np.full((len(queries), k), np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        faiss = _faiss()
        threads = faiss.omp_get_max_threads()
        if len(queries) < SMALL_BATCH:  # threads cost more than they bring (and spin on a busy machine)
            faiss.omp_set_num_threads(1)
        try:
            squared, ids = self._index.search(queries, min(k, len(self)))
        finally:
            faiss.omp_set_num_threads(threads)
        dist = np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
        dist[ids < 0] = np.inf
        if ids.shape[1] < k:  # fewer stored descriptors than asked for
            pad = k - ids.shape[1]
            dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=np.inf)
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        return dist, ids

    def nearest(self, query: np.ndarray) -> tuple[float, int]:
        """Distance and id of the single nearest descriptor (inf, -1 when empty)."""
        dist, ids = self.search(np.asarray(query, np.float32).reshape(1, -1), 1)
        return float(dist[0, 0]), int(ids[0, 0])
