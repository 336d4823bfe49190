"""Clustering quality on the labelled development sets of ../shared/data/faces, through a real scan.

deepface is scanned whole (session fixture) and orl_faces sampled (8 people, copied to a temporary
album) to keep the suite short; the benchmark (`python -m benchmarks.run_all faces`) measures all
three sets in full, five_celebrity included.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from benchmarks.face_sets import evaluate, face_table, labels_of
from tests.conftest import scan_faces_library, shared_path

# The targets, one default configuration for every set.
MIN_PRECISION = 0.98
MIN_PLACED = 0.95


def _labels(library, table) -> np.ndarray:
    from sqlalchemy import select

    from photokit.db.models import Face

    with library.db.session() as session:
        person = dict(session.execute(select(Face.id, Face.person_id)).all())
    return np.array([person.get(int(f)) or 0 for f in table.face_ids], np.int64)


def _sampled(name: str, tmp_path, people: int, per_person: int):
    source = shared_path("data", "faces", name)
    album = tmp_path / name
    chosen = sorted(labels_of(name, source).items())
    keep: dict[str, list[str]] = {}
    for file, identity in chosen:
        keep.setdefault(identity, [])
        if len(keep[identity]) < per_person:
            keep[identity].append(file)
    for identity in sorted(keep)[:people]:
        for file in keep[identity]:
            (album / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / file, album / file)
    library = scan_faces_library(tmp_path / f"home_{name}", [album])
    return library, face_table(library.db, name, album)


def test_deepface_meets_the_targets(deepface_library):
    table = face_table(deepface_library.db, "deepface", deepface_library.root)
    quality = evaluate(table, _labels(deepface_library, table))
    assert quality["pairwise_precision"] >= MIN_PRECISION, quality
    assert quality["pairwise_recall"] >= 0.85, quality
    assert quality["placed_fraction"] >= MIN_PLACED, quality
    assert quality["people_found"] == quality["identities"], quality


# five_celebrity is not sampled: with 8 photos a person its web photos are too few to learn each
# identity's spread (precision 0.94 on such a sample); the benchmark measures the whole set.
@pytest.mark.parametrize(("name", "people", "per_person", "min_recall"), [("orl_faces", 8, 10, 0.85)])
def test_sampled_dev_set(tmp_path, name, people, per_person, min_recall):
    library, table = _sampled(name, tmp_path, people, per_person)
    try:
        quality = evaluate(table, _labels(library, table))
    finally:
        library.db.dispose()
    assert quality["photos"] == people * per_person
    assert quality["pairwise_precision"] >= MIN_PRECISION, quality
    assert quality["pairwise_recall"] >= min_recall, quality
    assert quality["placed_fraction"] >= MIN_PLACED, quality
