"""FFHQ face alignment as an invertible affine map.

The FFHQ procedure (Karras et al., NVlabs/ffhq-dataset) builds an oriented square ("quad") from the
eye centres (68-point landmarks 36-41 and 42-47) and the mouth corners (48 and 54). photokit stores the
quad's centre and half-axes instead of a rendered crop, so a crop at any resolution can be produced
later and warped back exactly (paste-back). Out-of-frame areas are filled by reflection, as FFHQ does.

Coordinates are continuous pixel coordinates of the (EXIF-oriented) photo with pixel centres at
integers (OpenCV's convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FaceAlignment:
    """The FFHQ oriented square: ``center`` plus half-axes ``x`` (to the right) and ``y`` (downwards)."""

    center: tuple[float, float]
    x: tuple[float, float]
    y: tuple[float, float]

    # -- construction / storage -------------------------------------------------------------
    @classmethod
    def from_landmarks68(cls, landmarks: np.ndarray) -> FaceAlignment:
        lm = np.asarray(landmarks, dtype=np.float64).reshape(68, 2)
        eye_left, eye_right = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
        eye_avg = (eye_left + eye_right) / 2
        eye_to_eye = eye_right - eye_left
        mouth_avg = (lm[48] + lm[54]) / 2
        eye_to_mouth = mouth_avg - eye_avg
        # x: the eye line, tilted so that it is also perpendicular to the eye-mouth line.
        x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
        x /= np.hypot(*x)
        x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
        y = np.array([-x[1], x[0]])
        center = eye_avg + eye_to_mouth * 0.1
        return cls(tuple(center), tuple(x), tuple(y))

    def to_json(self) -> dict:
        return {"center": list(self.center), "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_json(cls, data: dict) -> FaceAlignment:
        return cls(tuple(data["center"]), tuple(data["x"]), tuple(data["y"]))

    # -- geometry ---------------------------------------------------------------------------
    @property
    def quad(self) -> np.ndarray:
        """Corners top-left, bottom-left, bottom-right, top-right (the FFHQ order), shape (4, 2)."""
        c, x, y = map(np.asarray, (self.center, self.x, self.y))
        return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])

    @property
    def side_px(self) -> float:
        """Side of the square in photo pixels (FFHQ's ``qsize``): how much real detail the face has."""
        return 2.0 * float(np.hypot(*self.x))

    def crop_matrix(self, size: int, photo_scale: float = 1.0) -> np.ndarray:
        """2x3 affine matrix mapping photo pixel coords (of a photo resized by ``photo_scale``) to crop coords.

        With pixel centres at integers, the crop's square spans [-0.5, size - 0.5] and the quad spans
        its corners, so a crop and its inverse warp line up to sub-pixel accuracy.
        """
        c = np.asarray(self.center) * photo_scale
        # photo position of crop coord (u, v): p = c - x - y + (u + 0.5) / size * 2x + (v + 0.5) / size * 2y
        x = np.asarray(self.x) * photo_scale
        y = np.asarray(self.y) * photo_scale
        a = np.column_stack([2 * x / size, 2 * y / size])  # d(photo)/d(crop)
        # Resizing by s maps pixel centres as p_s = s * (p + 0.5) - 0.5, hence the last term.
        b = c - x - y + (x + y) / size + 0.5 * photo_scale - 0.5
        a_inv = np.linalg.inv(a)
        return np.hstack([a_inv, (-a_inv @ b)[:, None]])

    def map_points(self, points: np.ndarray, size: int, photo_scale: float = 1.0) -> np.ndarray:
        """Photo points -> crop points."""
        m = self.crop_matrix(size, photo_scale)
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return pts @ m[:, :2].T + m[:, 2]

    def unmap_points(self, points: np.ndarray, size: int, photo_scale: float = 1.0) -> np.ndarray:
        """Crop points -> photo points."""
        m = cv2.invertAffineTransform(self.crop_matrix(size, photo_scale))
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return pts @ m[:, :2].T + m[:, 2]


def align_face(image: np.ndarray, alignment: FaceAlignment, size: int) -> np.ndarray:
    """The aligned ``size`` x ``size`` crop of ``image`` (H, W[, C], any dtype OpenCV warps).

    Strong minification is done by an area pre-shrink first (as FFHQ does), so small crops of
    large photos do not alias.
    """
    scale = 1.0
    shrink = int(np.floor(alignment.side_px / size / 2))
    if shrink > 1:
        h, w = image.shape[:2]
        new_w, new_h = max(1, round(w / shrink)), max(1, round(h / shrink))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        scale = new_w / w
    m = alignment.crop_matrix(size, photo_scale=scale)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def unalign_face(
    crop: np.ndarray,
    alignment: FaceAlignment,
    photo_shape: tuple[int, int],
    photo_scale: float = 1.0,
    interpolation: int = cv2.INTER_LANCZOS4,
) -> np.ndarray:
    """Warp an aligned crop back into a photo of ``photo_shape`` = (H, W) (already scaled by ``photo_scale``).

    Pixels outside the crop's square come back as 0; use ``face_footprint`` for the valid area.
    """
    size = crop.shape[0]
    m = alignment.crop_matrix(size, photo_scale)
    h, w = photo_shape
    return cv2.warpAffine(
        crop, m, (w, h), flags=interpolation | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def face_footprint(
    alignment: FaceAlignment, photo_shape: tuple[int, int], photo_scale: float = 1.0, size: int = 256
) -> np.ndarray:
    """Float mask (H, W) in [0, 1]: where the aligned square lands in the photo."""
    ones = np.ones((size, size), np.float32)
    return unalign_face(ones, alignment, photo_shape, photo_scale, interpolation=cv2.INTER_LINEAR)
