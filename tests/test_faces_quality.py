"""Quality measures and the analyzer's contract on synthetic input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from photokit.errors import PhotokitError
from photokit.faces.analyze import FaceConfig
from photokit.faces.people import embedding_from_bytes, embedding_to_bytes
from photokit.faces.quality import box_iou, is_grayscale, laplacian_variance, yaw_from_landmarks


def _texture(seed=0, size=128):
    rng = np.random.default_rng(seed)
    return (rng.random((size, size, 3)) * 255).astype(np.uint8)


def test_blur_lowers_laplacian_variance():
    sharp = _texture()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.0)
    assert laplacian_variance(blurred) < 0.2 * laplacian_variance(sharp)


def test_grayscale_and_tinted_are_monochrome_colour_is_not():
    gray = cv2.cvtColor(_texture(), cv2.COLOR_RGB2GRAY) // 2 + 40  # an old print: no pure white or black
    gray3 = np.stack([gray] * 3, axis=-1)
    sepia_matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    sepia = np.clip(gray3.astype(np.float64) @ sepia_matrix.T, 0, 255).astype(np.uint8)
    assert is_grayscale(gray)
    assert is_grayscale(gray3)
    assert is_grayscale(sepia)
    assert not is_grayscale(_texture())
    # a colour face: skin tone plus a blue shirt and red lips
    colour = np.full((64, 64, 3), (200, 160, 130), np.uint8)
    colour[48:] = (40, 60, 160)
    colour[30:34, 20:44] = (170, 60, 70)
    assert not is_grayscale(colour)


def _frontal_landmarks():
    """A synthetic symmetric 68-point layout: jaw 0..16 on an arc, eyes, nose tip 30, mouth."""
    lm = np.zeros((68, 2))
    t = np.linspace(-1, 1, 17)
    lm[0:17] = np.stack([100 * t, 60 * (1 - t**2) + 40], 1)
    lm[36:42] = [-40, 0]
    lm[42:48] = [40, 0]
    lm[30] = [0, 40]
    lm[48], lm[54] = [-30, 80], [30, 80]
    return lm + 200


def test_yaw_is_zero_frontal_and_changes_sign_when_mirrored():
    lm = _frontal_landmarks()
    assert yaw_from_landmarks(lm) == pytest.approx(0.0, abs=1e-6)
    turned = lm.copy()
    turned[30, 0] += 50  # nose towards the photo's right
    yaw = yaw_from_landmarks(turned)
    assert 20 < yaw < 40
    mirrored = turned.copy()
    mirrored[:, 0] = 400 - mirrored[:, 0]
    mirrored[[36, 42]] = mirrored[[42, 36]]  # the eyes swap sides in a mirror
    mirrored[36:42], mirrored[42:48] = mirrored[42:48].copy(), mirrored[36:42].copy()
    mirrored[0:17] = mirrored[16::-1].copy()
    assert yaw_from_landmarks(mirrored) == pytest.approx(-yaw, abs=1e-6)


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_embedding_bytes_round_trip_and_size_check():
    vec = np.random.default_rng(0).normal(size=128).astype(np.float32)
    assert np.array_equal(embedding_from_bytes(embedding_to_bytes(vec)), vec)
    with pytest.raises(ValueError):
        embedding_to_bytes(vec[:10])
    with pytest.raises(ValueError):
        embedding_from_bytes(b"\0" * 12)


def test_unknown_detector_is_a_clear_error():
    with pytest.raises(PhotokitError, match="unknown face detector"):
        FaceConfig(detector="yolo")


def test_models_are_located_without_importing_face_recognition_models():
    import sys

    from photokit.faces.models import FACE_DESCRIPTOR, SHAPE_PREDICTOR_68, dlib_model_path

    for name in (SHAPE_PREDICTOR_68, FACE_DESCRIPTOR):
        path = dlib_model_path(name)
        assert path.is_file() and path.stat().st_size > 1_000_000
    assert "face_recognition_models" not in sys.modules


def test_damaged_dlib_model_is_a_clear_error(tmp_path, monkeypatch):
    import dlib

    from photokit.errors import MissingModelError
    from photokit.faces import models

    bad = tmp_path / "broken.dat"
    bad.write_bytes(b"not a dlib model")
    monkeypatch.setattr(models, "dlib_model_path", lambda filename: bad)
    with pytest.raises(MissingModelError, match="cannot be read"):
        models._load_dlib(dlib.shape_predictor, "broken.dat")
