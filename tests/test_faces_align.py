"""FFHQ alignment: geometry, storage, and the align -> unalign round trip on real landmarks."""

from __future__ import annotations

import cv2
import numpy as np
from sqlalchemy import select

from photokit.db.models import Face, PhotoLocation
from photokit.faces.align import FaceAlignment, align_face, face_footprint, unalign_face
from photokit.library.images import read_rgb


def _real_face(library, name: str):
    with library.db.session() as session:
        path, photo_id = session.execute(
            select(PhotoLocation.path, PhotoLocation.photo_id).where(PhotoLocation.path.like(f"%/{name}"))
        ).one()
        face = session.scalars(select(Face).where(Face.photo_id == photo_id).order_by(Face.size_px.desc())).first()
    return read_rgb(path), np.array(face.landmarks68), FaceAlignment.from_json(face.alignment)


def test_alignment_is_rebuilt_from_stored_landmarks(face_recognition_library):
    _, lm68, stored = _real_face(face_recognition_library, "obama.jpg")
    rebuilt = FaceAlignment.from_landmarks68(lm68)
    # stored landmarks are rounded to 0.01 px
    assert np.abs(rebuilt.quad - stored.quad).max() < 0.05
    assert FaceAlignment.from_json(stored.to_json()) == stored


def test_aligned_eyes_are_level_and_face_is_centred(face_recognition_library):
    _, lm68, alignment = _real_face(face_recognition_library, "obama-1080p.jpg")
    size = 256
    pts = alignment.map_points(lm68, size)
    eye_left, eye_right = pts[36:42].mean(0), pts[42:48].mean(0)
    # FFHQ tilts the quad by the eye-mouth line too, so "level" is within a few degrees
    angle = np.degrees(np.arctan2(eye_right[1] - eye_left[1], eye_right[0] - eye_left[0]))
    assert abs(angle) < 5
    assert 0.3 * size < (eye_left[0] + eye_right[0]) / 2 < 0.7 * size
    assert pts.min() > 0 and pts.max() < size  # the whole face is inside the crop


def test_points_round_trip_through_crop_below_one_pixel(face_recognition_library):
    _, lm68, alignment = _real_face(face_recognition_library, "obama.jpg")
    for size, scale in ((256, 1.0), (1024, 1.0), (64, 0.5)):
        back = alignment.unmap_points(alignment.map_points(lm68 * scale, size, scale), size, scale)
        assert np.abs(back - lm68 * scale).max() < 1e-6


def test_align_unalign_round_trip_on_real_photo(face_recognition_library):
    """Warp the real face into the aligned crop and back: the result lines up with the photo (< 1 px)."""
    photo, lm68, alignment = _real_face(face_recognition_library, "obama-1080p.jpg")
    size = 1024  # at least the face's size in the photo, so the crop keeps its detail
    assert alignment.side_px < size
    crop = align_face(photo, alignment, size)
    back = unalign_face(crop, alignment, photo.shape[:2])
    inside = cv2.erode((face_footprint(alignment, photo.shape[:2]) > 0.999).astype(np.uint8), np.ones((9, 9)))
    ys, xs = np.nonzero(inside)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    a = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1].astype(np.float64)
    b = cv2.cvtColor(back, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1].astype(np.float64)
    window = cv2.createHanningWindow(a.shape[::-1], cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, window)
    assert np.hypot(dx, dy) < 1.0, f"round trip shifted the face by ({dx:.2f}, {dy:.2f}) px"
    mask = inside[y0:y1, x0:x1] > 0
    assert np.abs(a - b)[mask].mean() < 4.0  # grey levels: only interpolation error remains
    # and the landmarks land where the detector put them: crop landmarks from the warped-back image
    mapped = alignment.unmap_points(alignment.map_points(lm68, size), size)
    assert np.abs(mapped - lm68).max() < 1.0


def test_unaligned_crop_of_shifted_photo_moves_with_it(face_recognition_library):
    """A sanity check that the round-trip test can fail: a 3 px shift is detected."""
    photo, _, alignment = _real_face(face_recognition_library, "obama-1080p.jpg")
    moved = FaceAlignment((alignment.center[0] + 3.0, alignment.center[1]), alignment.x, alignment.y)
    crop = align_face(photo, alignment, 512)
    back = unalign_face(crop, moved, photo.shape[:2])
    inside = cv2.erode((face_footprint(moved, photo.shape[:2]) > 0.999).astype(np.uint8), np.ones((9, 9)))
    ys, xs = np.nonzero(inside)
    a = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[ys.min() : ys.max(), xs.min() : xs.max()].astype(np.float64)
    b = cv2.cvtColor(back, cv2.COLOR_RGB2GRAY)[ys.min() : ys.max(), xs.min() : xs.max()].astype(np.float64)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, cv2.createHanningWindow(a.shape[::-1], cv2.CV_64F))
    assert abs(dx - 3.0) < 0.5 and abs(dy) < 0.5


def test_crop_matrix_accounts_for_photo_scale():
    alignment = FaceAlignment((120.0, 90.0), (40.0, 5.0), (-5.0, 40.0))
    pts = np.array([[100.0, 80.0], [140.0, 110.0]])
    full = alignment.map_points(pts, 128)
    # the same physical points in a half-size photo (pixel centres: p_s = s (p + 0.5) - 0.5)
    half = alignment.map_points(0.5 * (pts + 0.5) - 0.5, 128, photo_scale=0.5)
    assert np.abs(full - half).max() < 1e-9
