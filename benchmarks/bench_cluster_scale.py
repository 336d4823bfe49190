"""Identity clustering at library scale, through the real path: database rows -> `people recluster`.

    python -m benchmarks.run_all cluster_scale            # 100,000 faces of 2,000 people
    python -m benchmarks.run_all cluster_scale --quick    # 10,000 faces of 200 people

Synthetic 128-D descriptors whose same-person / different-person distance distributions match those
measured on real faces (``REAL_DISTANCES``, dlib on ../shared/data/faces; re-measured by
``bench_faces``): each identity has a centre, each face adds noise of its own size. The generated
statistics are measured on random pairs (never an n x n matrix) and reported next to the real ones.

Cases, each in a fresh process so ``peak_rss_mb`` is that case's own peak:
- ``recluster``: every face unassigned -> ``recluster`` (kNN graph, agglomeration, writes, covers);
- ``add_1000``: 1,000 new faces (of known people and of new ones) -> ``cluster_faces``, incremental;
- ``identify``: ``identify(session, descriptor)`` per face, with the cached index warm (wall and CPU
  milliseconds: on a machine shared by many processes the wall time is mostly waiting for a core);
- ``suggest``: ``people suggest`` on the clustered library;
- ``pending_count_cold`` / ``pending_count_cached``: the pending-suggestions count `people list` shows,
  computed (no cache file yet) and then read back from the cache (the library unchanged).
Timings share 2 cores with other work: the load average is recorded.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

# dlib descriptors, largest face of each labelled photo of ../shared/data/faces/deepface (bench_faces).
REAL_DISTANCES = {"same_p50": 0.39, "same_p95": 0.50, "diff_min": 0.52, "diff_p1": 0.646, "diff_p5": 0.733}
DIM = 128
NOISE_MEDIAN = 0.275  # per-face noise radius (median); two faces of one person: ~0.39 apart
NOISE_SPREAD = 0.17  # log-normal sigma of the noise radius: p95 of same-person distances ~0.50
CENTRE_SCALE = 0.52  # identity centres: different people ~0.73 apart at p5


def synthetic_library(n_faces: int, n_people: int, seed: int = 0):
    """(descriptors float32, person labels): people of 2-200 faces (a family library is uneven)."""
    rng = np.random.default_rng(seed)
    spectrum = 1.0 / np.sqrt(np.arange(1, DIM + 1))  # real descriptors: variance in few directions
    spectrum *= np.sqrt(DIM) / np.linalg.norm(spectrum)
    centres = rng.normal(size=(n_people, DIM)) * spectrum * CENTRE_SCALE / np.sqrt(DIM)
    weights = np.minimum(rng.pareto(1.5, n_people) + 1.0, 40.0)  # the largest person: ~1-2 % of faces
    counts = np.maximum(2, np.round(weights / weights.sum() * n_faces)).astype(int)
    while counts.sum() > n_faces:
        counts[np.argmax(counts)] -= counts.sum() - n_faces
    counts[0] += n_faces - counts.sum()
    labels = np.repeat(np.arange(n_people), counts)
    noise = rng.normal(size=(n_faces, DIM))
    radius = NOISE_MEDIAN * np.exp(NOISE_SPREAD * rng.normal(size=n_faces)) / np.sqrt(2)
    noise *= (radius / np.linalg.norm(noise, axis=1))[:, None] * np.sqrt(2)
    return (centres[labels] + noise + 0.5).astype(np.float32), labels


def distance_stats(emb: np.ndarray, labels: np.ndarray, pairs: int = 200_000, seed: int = 1) -> dict:
    """Same / different-person distance percentiles on random pairs."""
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(labels.max() + 1))
    sizes = np.bincount(labels)
    a = rng.integers(0, len(emb), pairs)
    offs = rng.integers(0, np.maximum(sizes[labels[a]], 1))
    b = order[starts[labels[a]] + offs]
    same = np.linalg.norm(emb[a] - emb[b], axis=1)[a != b]
    c, d = rng.integers(0, len(emb), (2, pairs))
    diff = np.linalg.norm(emb[c] - emb[d], axis=1)[labels[c] != labels[d]]
    return {
        "same_p50": round(float(np.median(same)), 3),
        "same_p95": round(float(np.percentile(same, 95)), 3),
        "diff_min": round(float(diff.min()), 3),
        "diff_p1": round(float(np.percentile(diff, 1)), 3),
        "diff_p5": round(float(np.percentile(diff, 5)), 3),
    }


def _fill_database(url: str, emb: np.ndarray, first_photo: int = 1, faces_per_photo: int = 1) -> list[int]:
    """Insert photos and faces as rows (as a scan would leave them); returns the face ids."""
    from sqlalchemy import create_engine, insert, select

    from photokit.db.models import Face, Photo
    from photokit.faces.people import embedding_to_bytes

    engine = create_engine(url)
    n_photos = (len(emb) + faces_per_photo - 1) // faces_per_photo
    photos = [
        {"id": first_photo + i, "sha256": f"{first_photo + i:064x}", "size": 1, "format": "jpeg", "width": 640,
         "height": 480, "faces_status": "done"}
        for i in range(n_photos)
    ]  # fmt: skip
    faces = [
        {"photo_id": first_photo + i // faces_per_photo, "detector": "mtcnn", "box": [10, 10, 110, 110],
         "score": 0.99, "size_px": 100.0, "blur": 50.0, "embedding": embedding_to_bytes(e), "user_rejected": False}
        for i, e in enumerate(emb)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Photo), photos)
        before = conn.scalar(select(Face.id).order_by(Face.id.desc()).limit(1)) or 0
        conn.execute(insert(Face), faces)
        ids = list(conn.scalars(select(Face.id).where(Face.id > before).order_by(Face.id)))
    engine.dispose()
    return ids


def _case(name: str, url: str, queue, payload) -> None:
    """One case in a fresh process: (seconds, peak RSS MB, details)."""
    from photokit.db import Database
    from photokit.db.session import create_db_engine

    db = Database(create_db_engine(url), url)
    started, cpu = time.perf_counter(), time.process_time()
    details: dict = {}
    with db.session() as session:
        if name == "recluster":
            from photokit.faces.assignment import recluster

            details = recluster(session).to_json()
        elif name == "add":
            from photokit.faces.assignment import cluster_faces

            details = cluster_faces(session).to_json()
        elif name == "identify":
            from photokit.faces.people import identify

            identify(session, payload[0])  # builds the cached index
            details["index_build_seconds"] = round(time.perf_counter() - started, 3)
            started, cpu = time.perf_counter(), time.process_time()
            details["found"] = sum(identify(session, e)[0] is not None for e in payload)
            details["per_face_ms"] = round((time.perf_counter() - started) / len(payload) * 1000, 3)
            details["per_face_cpu_ms"] = round((time.process_time() - cpu) / len(payload) * 1000, 3)
        elif name == "suggest":
            from photokit.faces.suggest import suggest

            found = suggest(session)
            details = {"merges": len(found.merges), "moves": len(found.moves)}
        elif name == "pending":  # what `people list` adds: the pending count, from the cache when it is fresh
            from photokit.faces.suggest import cached_suggestions

            details = {"pending": cached_suggestions(session, payload).pending}
    details["cpu_seconds"] = round(time.process_time() - cpu, 3)  # all threads: compare with seconds x cores
    seconds = time.perf_counter() - started
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, details))


def _run_case(name: str, url: str, payload=None) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(name, url, queue, payload))
    proc.start()
    seconds, rss, details = queue.get()
    proc.join()
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(rss, 1), **details}


def _quality(url: str, face_ids: list[int], truth: np.ndarray) -> dict:
    from sqlalchemy import create_engine, select

    from photokit.db.models import Face
    from photokit.faces.evaluation import pairwise_precision_recall

    engine = create_engine(url)
    with engine.connect() as conn:
        person = dict(conn.execute(select(Face.id, Face.person_id)).all())
    engine.dispose()
    predicted = [person.get(f) for f in face_ids]
    precision, recall = pairwise_precision_recall(predicted, truth.tolist())
    return {
        "pairwise_precision": round(precision, 4),
        "pairwise_recall": round(recall, 4),
        "placed_fraction": round(float(np.mean([p is not None for p in predicted])), 4),
        "people": len({p for p in predicted if p is not None}),
    }


def run(device: str = "cpu", quick: bool = False) -> dict:
    del device  # CPU only: faiss-cpu and numpy
    n_faces, n_people = (10_000, 200) if quick else (100_000, 2_000)
    emb, truth = synthetic_library(n_faces + 1_000, n_people)
    rng = np.random.default_rng(2)
    order = rng.permutation(len(emb))
    base, extra = order[:n_faces], order[n_faces:]
    results: dict = {
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "faces": n_faces,
        "people": n_people,
        "distances": {"real_dlib": REAL_DISTANCES, "synthetic": distance_stats(emb, truth)},
    }
    with tempfile.TemporaryDirectory(prefix="bench_cluster_") as home:
        from photokit.db import open_database
        from photokit.settings import Settings

        settings = Settings.load(home=Path(home), models=Path(home) / "models")
        db = open_database(settings)  # creates the schema (migrations)
        url = db.url
        db.dispose()
        started = time.perf_counter()
        face_ids = _fill_database(url, emb[base])
        results["insert_seconds"] = round(time.perf_counter() - started, 2)
        results["recluster"] = {"faces": n_faces, **_run_case("recluster", url)}
        results["recluster"]["quality"] = _quality(url, face_ids, truth[base])
        new_ids = _fill_database(url, emb[extra], first_photo=10 * n_faces)
        results["add_1000"] = {"faces": len(extra), **_run_case("add", url)}
        results["add_1000"]["quality"] = _quality(url, face_ids + new_ids, truth[np.concatenate([base, extra])])
        results["identify"] = {"faces": n_faces + len(extra), **_run_case("identify", url, emb[extra[:200]])}
        results["suggest"] = {"faces": n_faces + len(extra), **_run_case("suggest", url)}
        cache = Path(home) / "cache" / "suggestions.json"
        results["pending_count_cold"] = {"faces": n_faces + len(extra), **_run_case("pending", url, cache)}
        results["pending_count_cached"] = {"faces": n_faces + len(extra), **_run_case("pending", url, cache)}
    results["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return results
