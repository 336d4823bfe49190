"""MTCNN and dlib HOG on real photos, the MTCNN -> dlib box mapping, and bad photos in the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from photokit.db import open_database
from photokit.db.models import Photo, PhotoLocation
from photokit.faces.analyze import FaceAnalyzer, FaceConfig
from photokit.faces.pipeline import process_pending_photos
from photokit.faces.quality import box_iou
from photokit.library.images import read_rgb
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def two_people():
    return read_rgb(shared_path("data", "faces", "face_recognition", "two_people.jpg"))


@pytest.fixture(scope="module")
def by_detector(two_people):
    return {
        name: FaceAnalyzer(FaceConfig(detector=name), device="cpu").analyze(two_people) for name in ("mtcnn", "hog")
    }


def test_both_detectors_find_both_faces(by_detector):
    for name, faces in by_detector.items():
        assert len(faces) == 2, name
        for face in faces:
            assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
            assert face.landmarks68.shape == (68, 2) and face.alignment is not None
            assert face.cluster_exclusion is None
    assert all(f.landmarks5.shape == (5, 2) and f.score > 0.9 for f in by_detector["mtcnn"])
    assert all(f.landmarks5 is None for f in by_detector["hog"])


def test_mtcnn_boxes_mapped_for_dlib_give_the_same_landmarks(by_detector):
    """The 68-point model was trained on HOG boxes; on mapped MTCNN boxes it must agree with them."""
    for m in by_detector["mtcnn"]:
        h = max(by_detector["hog"], key=lambda f: box_iou(f.box, m.box))
        assert box_iou(h.box, m.box) > 0.3
        error = np.linalg.norm(m.landmarks68 - h.landmarks68, axis=1).mean()
        assert error < 0.03 * m.size_px, f"landmarks differ by {error:.1f} px on a {m.size_px:.0f} px face"
        # and so do the identities
        assert np.linalg.norm(m.embedding - h.embedding) < 0.2


def test_downscaled_detection_reports_full_resolution_geometry(two_people, by_detector):
    small = FaceAnalyzer(FaceConfig(max_side=400), device="cpu").analyze(two_people)
    assert len(small) == 2
    for face in small:
        best = max(by_detector["mtcnn"], key=lambda f: box_iou(f.box, face.box))
        assert box_iou(best.box, face.box) > 0.8


def test_tiny_threshold_marks_faces_small(two_people):
    faces = FaceAnalyzer(FaceConfig(min_size=1000), device="cpu").analyze(two_people)
    assert faces and {f.cluster_exclusion for f in faces} == {"small"}


def test_unreadable_photos_fail_alone(settings, tmp_path):
    """A photo whose file went bad is marked failed with the reason; the rest of the run goes on."""
    good = tmp_path / "good.jpg"
    good.write_bytes(shared_path("data", "faces", "face_recognition", "biden.jpg").read_bytes())
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[:2000])  # truncated after the scan saw it
    db = open_database(settings)
    try:
        with db.session() as session:
            for k, path in enumerate((good, bad)):
                photo = Photo(sha256=f"{k:064d}", size=1, format="jpeg", width=1, height=1)
                photo.locations.append(PhotoLocation(path=str(path), size=1, mtime_ns=0, status="present"))
                session.add(photo)
        summary = process_pending_photos(db, device="cpu")
        assert summary.done == 1 and summary.failed == 1 and summary.faces == 1
        assert "bad.jpg" in summary.errors[0]["error"]
        with db.session() as session:
            status = dict(session.execute(select(PhotoLocation.path, Photo.faces_status).join(Photo)).all())
        assert status == {str(good): "done", str(bad): "failed"}
        # nothing pending: a second run has no work
        assert process_pending_photos(db, device="cpu").photos == 0
    finally:
        db.dispose()
