"""Acceptance on real photos (../shared/data/faces): detection, clustering, two-person photos.

The libraries are scanned once per session by the ``deepface_library`` and
``face_recognition_library`` fixtures (tests/conftest.py).
"""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select

from photokit.db.models import Face, PhotoLocation
from photokit.faces.evaluation import pairwise_precision_recall


def _faces_by_file(library) -> dict[str, list[Face]]:
    """File name -> faces of that photo (largest first)."""
    with library.db.session() as session:
        rows = session.execute(select(PhotoLocation.path, PhotoLocation.photo_id)).all()
        faces = session.scalars(select(Face)).all()
    by_photo: dict[int, list[Face]] = {}
    for face in faces:
        by_photo.setdefault(face.photo_id, []).append(face)
    return {Path(path).name: sorted(by_photo.get(pid, []), key=lambda f: -f.size_px) for path, pid in rows}


def _labels(library) -> dict[str, str]:
    with open(library.root / "labels.csv", newline="") as fh:
        return {row["file"]: row["identity"] for row in csv.DictReader(fh)}


def test_deepface_labelled_faces_detected(deepface_library):
    labels = _labels(deepface_library)
    faces = _faces_by_file(deepface_library)
    assert set(labels) <= set(faces), "every labelled photo was scanned"
    detected = [name for name in labels if faces[name]]
    assert len(detected) >= 61, f"faces found in only {len(detected)} of {len(labels)} labelled photos"


def test_deepface_clustering_precision_recall(deepface_library):
    labels = _labels(deepface_library)
    faces = _faces_by_file(deepface_library)
    names = sorted(labels)
    predicted = [faces[n][0].person_id if faces[n] else None for n in names]
    precision, recall = pairwise_precision_recall(predicted, [labels[n] for n in names])
    assert precision >= 0.98, f"pairwise precision {precision:.3f}"
    assert recall >= 0.95, f"pairwise recall {recall:.3f}"


def test_no_person_has_two_faces_of_one_photo(deepface_library, face_recognition_library):
    for library in (deepface_library, face_recognition_library):
        with library.db.session() as session:
            pairs = session.execute(select(Face.photo_id, Face.person_id).where(Face.person_id.is_not(None))).all()
        assert len(pairs) == len(set(pairs))
        assert len(pairs) > 0


def test_two_person_photos_give_two_different_people(face_recognition_library):
    faces = _faces_by_file(face_recognition_library)
    obama = faces["obama.jpg"][0].person_id
    biden = faces["biden.jpg"][0].person_id
    assert obama is not None and biden is not None and obama != biden
    for name in ("two_people.jpg", "obama_and_biden.jpg"):
        # obama_and_biden.jpg also shows a girl in the foreground: a third, unassigned face
        people = [f.person_id for f in faces[name] if f.person_id is not None]
        assert sorted(people) == sorted([obama, biden]), f"{name}: faces assigned to {people}"


def test_obama_photos_in_one_person_biden_in_another(face_recognition_library):
    faces = _faces_by_file(face_recognition_library)
    obama_files = [n for n in faces if n.startswith("obama") and "_and_" not in n and "partial" not in n]
    assert len(obama_files) >= 7
    obama_people = {faces[n][0].person_id for n in obama_files}
    biden_people = {faces[n][0].person_id for n in ("biden.jpg", "biden2.jpg")}
    assert len(obama_people) == 1 and None not in obama_people
    assert len(biden_people) == 1 and None not in biden_people
    assert obama_people.isdisjoint(biden_people)


def test_quality_fields_are_measured(face_recognition_library):
    faces = _faces_by_file(face_recognition_library)
    sharp = faces["obama-1080p.jpg"][0]
    small = faces["obama-240p.jpg"][0]
    assert sharp.size_px > 3 * small.size_px
    for face in (sharp, small):
        assert face.blur is not None and face.blur > 0
        assert face.yaw is not None and abs(face.yaw) < 30  # a frontal portrait
        assert face.is_gray is False
        assert face.alignment is not None and len(face.landmarks68) == 68 and len(face.landmarks5) == 5
    # the 240p frame upscaled to the aligned crop is blurrier than the 1080p one
    assert small.blur < sharp.blur


def test_contact_sheet_of_a_real_person(face_recognition_library, tmp_path):
    import json

    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from photokit.cli.app import app
    from photokit.faces.sheet import GAP, sheet_layout

    faces = _faces_by_file(face_recognition_library)
    obama = faces["obama.jpg"][0].person_id
    expected = sum(1 for fs in faces.values() for f in fs if f.person_id == obama)
    settings = face_recognition_library.settings
    env = {"PHOTOKIT_HOME": str(settings.home), "PHOTOKIT_MODELS": str(settings.models_dir)}
    env["PHOTOKIT_DB_URL"] = settings.db_url  # the library's database (on the PostgreSQL pass, not the test's)
    out = tmp_path / "obama.png"
    result = CliRunner().invoke(
        app, ["people", "sheet", str(obama), "--out", str(out), "--tile", "64", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tiles"] == expected
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG"
        sheet = np.asarray(image.convert("RGB"))
    cols, rows = sheet_layout(expected)
    assert sheet.shape[:2] == (rows * 64 + (rows + 1) * GAP, cols * 64 + (cols + 1) * GAP)
    tiles = [
        sheet[GAP + r * (64 + GAP) : GAP + r * (64 + GAP) + 64, GAP + c * (64 + GAP) : GAP + c * (64 + GAP) + 64]
        for r in range(rows)
        for c in range(cols)
    ]
    drawn = [t for t in tiles if t.std() > 5]  # empty grid cells are plain white
    assert len(drawn) == expected
    assert all(abs(float(t.mean()) - 255.0) > 20 for t in drawn)


def test_identify_finds_the_right_person(face_recognition_library):
    from photokit.faces.people import embedding_from_bytes, identify

    faces = _faces_by_file(face_recognition_library)
    with face_recognition_library.db.session() as session:
        for name in ("obama-720p.jpg", "biden2.jpg"):
            face = faces[name][0]
            person, distance = identify(session, embedding_from_bytes(face.embedding) + 0.001)
            assert person is not None and person.id == face.person_id and distance < 0.05
        # the girl in obama_and_biden.jpg is nobody we know
        girl = faces["obama_and_biden.jpg"][-1]
        assert girl.person_id is None
        person, distance = identify(session, embedding_from_bytes(girl.embedding))
        assert person is None and distance > 0.5
