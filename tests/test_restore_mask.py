"""The paste-back mask from the 68 landmarks (restore.mask) on a real face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from photokit.restore import paste
from photokit.restore.mask import LandmarkMaskConfig, face_size, forehead_points, landmark_mask
from photokit.restore.output import load_photo
from tests.conftest import shared_path

SIZE = 256


@pytest.fixture(scope="module")
def obama():
    from photokit.faces.analyze import FaceAnalyzer

    photo = load_photo(shared_path("data", "faces", "face_recognition", "obama-480p.jpg"))
    [face] = FaceAnalyzer(device="cpu").analyze(photo.rgb_uint8())
    landmarks = face.alignment.map_points(face.landmarks68, SIZE)
    return photo, face, landmarks


def hull_mask(points: np.ndarray, size: int = SIZE) -> np.ndarray:
    out = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(out, np.rint(cv2.convexHull(points.astype(np.float32))[:, 0]).astype(np.int32), 1)
    return out.astype(bool)


def above_forehead(landmarks: np.ndarray, margin: float, size: int = SIZE) -> np.ndarray:
    """Pixels farther than ``margin`` beyond the forehead line (through the raised brows), on the hair side."""
    top = forehead_points(landmarks)
    up = landmarks[17:27].mean(axis=0) - landmarks[8]
    up /= np.linalg.norm(up)
    yy, xx = np.mgrid[0:size, 0:size]
    height = (np.stack([xx, yy], -1) - top.mean(axis=0)) @ up  # along chin -> brows
    line = ((top - top.mean(axis=0)) @ up).max()  # the highest raised brow point
    return height > line + margin


def test_mask_covers_the_68_points_hull(obama):
    _, _, landmarks = obama
    mask = landmark_mask(landmarks, SIZE)
    hull = hull_mask(landmarks)
    assert hull.sum() > 0.2 * SIZE * SIZE  # a real face, not a few pixels
    assert mask[hull].min() >= 0.999
    # ...and the forehead up to the raised brows.
    assert mask[hull_mask(np.concatenate([landmarks, forehead_points(landmarks)]))].min() >= 0.999


def test_mask_leaves_the_hair_above_the_forehead_line(obama):
    _, _, landmarks = obama
    config = LandmarkMaskConfig()
    mask = landmark_mask(landmarks, SIZE, config)
    feather = config.feather * face_size(landmarks)
    hair = above_forehead(landmarks, feather + 1.5)
    assert hair.sum() > 0.05 * SIZE * SIZE  # FFHQ crops show hair above the forehead
    assert mask[hair].max() == 0
    # The feather is a ramp, not a step: values strictly between 0 and 1 exist just outside the region.
    band = (mask > 0.05) & (mask < 0.95)
    assert band.sum() > 100
    # Smaller than the old ellipse where it matters: the ellipse did reach into the hair.
    assert paste.crop_mask(SIZE)[hair].max() > 0.5


def test_photo_outside_mask_and_feather_is_unchanged(obama):
    photo, face, landmarks = obama
    scale = 2.0
    background = paste.lanczos_upscale(photo.rgb, scale)
    crop = np.random.default_rng(0).random((SIZE, SIZE, 3)).astype(np.float32)
    mask = landmark_mask(landmarks, SIZE)
    image, weight = paste.paste_super_resolution(background, crop, face.alignment, scale, mask=mask)
    outside = weight == 0
    np.testing.assert_array_equal(image[outside], background[outside])
    assert np.abs(image[weight > 0.99] - background[weight > 0.99]).mean() > 0.05
    # The output-frame weight is the crop-frame mask warped: the hair above the forehead is untouched.
    hair = above_forehead(landmarks, LandmarkMaskConfig().feather * face_size(landmarks) + 3)
    hair_points = np.argwhere(hair)[:, ::-1].astype(np.float64)
    photo_points = face.alignment.unmap_points(hair_points, SIZE, photo_scale=scale)
    h, w = weight.shape
    xs, ys = np.rint(photo_points).astype(int).T
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    assert ok.sum() > 1000 and weight[ys[ok], xs[ok]].max() == 0
