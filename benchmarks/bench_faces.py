"""Faces benchmark: speed of `scan` with faces on ../shared/data/faces, detection and clustering quality.

    python -m benchmarks.run_all faces            # full: MTCNN and HOG, the three development sets
    python -m benchmarks.run_all faces --quick    # deepface/ with MTCNN only

Reports photos/s and faces/s of the face stage (detection + landmarks + descriptor + quality +
storage, after the library pass), the labelled faces detected in deepface/ (the largest face of each
labelled photo), pairwise precision/recall of the automatic clustering against labels.csv, and, per development
set (``dev_sets``: deepface, five_celebrity, orl_faces), the clustering quality (pairwise precision /
recall over main faces, share of >= 40 px main faces placed), the descriptor-distance statistics and
a sweep of the clustering settings the defaults were chosen from; (full run) the MTCNN -> dlib box
offsets the landmark stage uses.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.face_sets import DEV_SETS, evaluate, face_table, scan_set

if TYPE_CHECKING:
    from photokit.faces.pipeline import FaceRunSummary

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PHOTOKIT_SHARED", ROOT.parent / "shared"))
FACES = SHARED / "data" / "faces"


def _scan(roots: list[Path], device: str, detector: str, home: Path) -> tuple[object, FaceRunSummary, float]:
    from photokit.db import open_database
    from photokit.faces.pipeline import process_pending_photos
    from photokit.library.scan import scan_library
    from photokit.settings import Settings

    settings = Settings.load(home=home, models=home / "models", db_url=f"sqlite:///{home / 'library.db'}")
    db = open_database(settings)
    scan_library(db, [str(r) for r in roots])
    started = time.perf_counter()
    summary = process_pending_photos(db, device=device, detector=detector)
    return db, summary, time.perf_counter() - started


def _labelled_faces(db) -> tuple[list[str], list, list[np.ndarray | None]]:
    """For each labelled deepface photo: identity, person of its largest face, and that face's descriptor."""
    from sqlalchemy import select

    from photokit.db.models import Face, PhotoLocation
    from photokit.faces.people import embedding_from_bytes

    with open(FACES / "deepface" / "labels.csv", newline="") as fh:
        labels = {row["file"]: row["identity"] for row in csv.DictReader(fh)}
    with db.session() as session:
        photo_of = {
            Path(p).name: pid
            for p, pid in session.execute(select(PhotoLocation.path, PhotoLocation.photo_id))
            if "/deepface/" in p
        }
        largest: dict[int, Face] = {}
        for face in session.scalars(select(Face)):
            if face.photo_id not in largest or face.size_px > largest[face.photo_id].size_px:
                largest[face.photo_id] = face
    truth, people, descriptors = [], [], []
    for name, identity in sorted(labels.items()):
        face = largest.get(photo_of.get(name))
        truth.append(identity)
        people.append(face.person_id if face else None)
        descriptors.append(embedding_from_bytes(face.embedding) if face is not None and face.embedding else None)
    return truth, people, descriptors


def _quality(db) -> dict:
    from photokit.faces.evaluation import pairwise_precision_recall

    truth, people, descriptors = _labelled_faces(db)
    precision, recall = pairwise_precision_recall(people, truth)
    return {
        "labelled": len(truth),
        "detected": sum(d is not None for d in descriptors),
        "pairwise_precision": round(precision, 4),
        "pairwise_recall": round(recall, 4),
    }


def distance_stats(table) -> dict:
    """Same / different-person descriptor distances between labelled photos' main faces (small sets only)."""
    main = table.main_faces()
    files = [f for f in sorted(table.truth) if table.photo_of_file.get(f) in main]
    emb = table.embeddings[[main[table.photo_of_file[f]] for f in files]]
    ids = np.array([table.truth[f] for f in files])
    ok = np.isfinite(emb).all(1)
    emb, ids = emb[ok], ids[ok]
    iu = np.triu_indices(len(emb), 1)
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)[iu]  # a few hundred faces: evaluation only
    same = (ids[:, None] == ids[None])[iu]
    return {
        "same_person": {k: round(float(v), 4) for k, v in (("p50", np.median(d[same])),
                        ("p95", np.percentile(d[same], 95)), ("max", d[same].max()))},
        "different_people": {k: round(float(v), 4) for k, v in (("min", d[~same].min()),
                             ("p1", np.percentile(d[~same], 1)), ("p5", np.percentile(d[~same], 5)))},
    }  # fmt: skip


def spread_study(table) -> list[dict]:
    """Quality of clustering this set's faces again with other settings (the default is marked)."""
    from photokit.faces.cluster import assign_faces
    from photokit.faces.cluster_config import ClusterConfig

    default = ClusterConfig()
    use = table.clusterable & np.isfinite(table.embeddings).all(1)
    rows = []
    for spread_z in (1.2, 1.35, 1.5, 1.7, 2.0):
        for pair_distance in (0.45, 0.5, 0.55):
            config = ClusterConfig(spread_z=spread_z, pair_distance=pair_distance)
            labels = np.zeros(len(table.face_ids), np.int64)
            labels[use] = assign_faces(table.embeddings[use], table.photo_ids[use], config=config)
            row = {"spread_z": spread_z, "pair_distance": pair_distance, **evaluate(table, labels)}
            row["default"] = config == default
            rows.append(row)
    return rows


def dev_set_tables(names, device: str) -> dict:
    """Per development set: scan (MTCNN), the pipeline's own clustering quality, distances, a sweep."""
    out = {}
    for name in names:
        if not (FACES / name).is_dir():
            out[name] = {"skipped": f"{FACES / name} is absent"}
            continue
        with tempfile.TemporaryDirectory(prefix=f"bench_{name}_") as home:
            db, seconds = scan_set(name, Path(home), device=device)
            try:
                table = face_table(db, name)
                with db.session() as session:
                    from sqlalchemy import select

                    from photokit.db.models import Face

                    person = dict(session.execute(select(Face.id, Face.person_id)).all())
                labels = np.array([person.get(int(f)) or 0 for f in table.face_ids], np.int64)
                out[name] = {
                    "scan_seconds": round(seconds, 1),
                    "faces": len(table.face_ids),
                    "quality": evaluate(table, labels),
                    "distances": distance_stats(table),
                    "sweep": spread_study(table),
                }
            finally:
                db.dispose()
    return out


def _obama_biden(db) -> dict:
    """Whether Obama's single-person photos share one person and Biden's another."""
    from sqlalchemy import select

    from photokit.db.models import Face, PhotoLocation

    with db.session() as session:
        rows = session.execute(
            select(PhotoLocation.path, Face.person_id, Face.size_px)
            .join(Face, Face.photo_id == PhotoLocation.photo_id)
            .where(PhotoLocation.path.like("%/face_recognition/%"))
        ).all()
    largest: dict[str, tuple] = {}
    for path, person, size in rows:
        name = Path(path).name
        if name not in largest or size > largest[name][1]:
            largest[name] = (person, size)
    obama = {largest[n][0] for n in largest if n.startswith("obama") and "_and_" not in n and "partial" not in n}
    biden = {largest[n][0] for n in largest if n.startswith("biden")}
    return {
        "obama_people": len(obama),
        "biden_people": len(biden),
        "separate": len(obama) == 1 and len(biden) == 1 and None not in obama | biden and obama != biden,
    }


def _box_mapping(device: str) -> dict:
    """Where dlib's HOG box sits inside MTCNN's box (the source of ``analyze.MTCNN_TO_DLIB_BOX``)."""
    from photokit.faces.analyze import MTCNN_TO_DLIB_BOX, FaceAnalyzer, FaceConfig
    from photokit.library.images import read_rgb

    mtcnn = FaceAnalyzer(FaceConfig(detector="mtcnn"), device=device)
    hog = FaceAnalyzer(FaceConfig(detector="hog"), device="cpu")
    offsets = []
    for path in sorted(FACES.rglob("*.jpg")):
        rgb = read_rgb(path)
        for m_box, *_ in mtcnn.detect(rgb):
            w, h = m_box[2] - m_box[0], m_box[3] - m_box[1]
            for h_box, *_ in hog.detect(rgb):
                cx, cy = (h_box[0] + h_box[2]) / 2, (h_box[1] + h_box[3]) / 2
                if m_box[0] < cx < m_box[2] and m_box[1] < cy < m_box[3]:
                    offsets.append(
                        [
                            (h_box[0] - m_box[0]) / w,
                            (h_box[1] - m_box[1]) / h,
                            (h_box[2] - m_box[0]) / w,
                            (h_box[3] - m_box[1]) / h,
                        ]
                    )
    offsets = np.array(offsets)
    return {
        "faces": len(offsets),
        "median": np.median(offsets, axis=0).round(3).tolist(),
        "std": offsets.std(axis=0).round(3).tolist(),
        "in_use": list(MTCNN_TO_DLIB_BOX),
    }


def run(device: str = "cpu", quick: bool = False) -> dict:
    if not FACES.is_dir():
        return {"skipped": f"{FACES} is absent"}
    # The figures are only comparable on an otherwise idle machine: record how busy it was.
    results: dict = {"device": device, "load_average_before": round(os.getloadavg()[0], 2)}
    runs = [("mtcnn", [FACES / "deepface"] if quick else [FACES / "deepface", FACES / "face_recognition"])]
    if not quick:
        runs.append(("hog", [FACES / "deepface"]))
    for detector, roots in runs:
        with tempfile.TemporaryDirectory(prefix="bench_faces_") as home:
            db, summary, seconds = _scan(roots, device, detector, Path(home))
            try:
                entry = {
                    "folders": [r.name for r in roots],
                    "photos": summary.done,
                    "faces": summary.faces,
                    "seconds": round(seconds, 2),
                    "photos_per_s": round(summary.done / seconds, 3),
                    "faces_per_s": round(summary.faces / seconds, 3),
                    "model_load_seconds": summary.load_seconds,
                    "detect_seconds": summary.detect_seconds,
                    "clustering_seconds": summary.cluster_seconds,
                    "people": summary.clustering.new_people,
                    "deepface": _quality(db),
                }
                if detector == "mtcnn" and not quick:
                    entry["obama_biden"] = _obama_biden(db)
                results[detector] = entry
            finally:
                db.dispose()
    results["dev_sets"] = dev_set_tables(DEV_SETS[:1] if quick else DEV_SETS, device)
    if not quick:
        results["mtcnn_to_dlib_box"] = _box_mapping(device)
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    return results
