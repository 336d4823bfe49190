"""The face's own outline from its 68 landmarks: where a super-resolved face replaces the photo.

The region is the convex hull of the 68 points plus the eyebrows (17-26) raised toward a forehead
estimate, so the whole face from chin to forehead is restored while hair, ears and background stay the
photo's own (the Lanczos upscale). Outside the region the weight falls to 0 over a feather band whose
width is a fraction of the face's size, with a smoothstep (no kink, no seam); beyond the band it is
exactly 0. Everything is computed in the aligned crop's frame, like the ellipse it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

JAW = slice(0, 17)
BROWS = slice(17, 27)


@dataclass(frozen=True)
class LandmarkMaskConfig:
    # The brows are raised by this fraction of the brow-to-chin distance, along the chin -> brows
    # direction. Faces measure ~2/3 of their height from brows to chin and ~1/3 from brows to hairline;
    # 0.3 of brow-to-chin stops a little below the hairline, so hair is never repainted.
    forehead_raise: float = 0.3
    feather: float = 0.08  # width of the fade outside the region, as a fraction of the face's size


def forehead_points(landmarks: np.ndarray, config: LandmarkMaskConfig = LandmarkMaskConfig()) -> np.ndarray:
    """The eyebrow points (10, 2) moved up to the forehead estimate."""
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    brows = lm[BROWS]
    up = brows.mean(axis=0) - lm[8]  # chin -> brow centre
    return brows + config.forehead_raise * up


def face_size(landmarks: np.ndarray) -> float:
    """The face's scale in the landmarks' frame: the larger side of the 68 points' bounding box."""
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    return float(max(np.ptp(lm[:, 0]), np.ptp(lm[:, 1])))


def region_polygon(landmarks: np.ndarray, config: LandmarkMaskConfig = LandmarkMaskConfig()) -> np.ndarray:
    """The convex outline (K, 2) of the restored region: 68 points and the raised brows."""
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    points = np.concatenate([lm, forehead_points(lm, config)]).astype(np.float32)
    return cv2.convexHull(points)[:, 0, :]


def landmark_mask(
    landmarks: np.ndarray, size: int, config: LandmarkMaskConfig = LandmarkMaskConfig(), subpixel: int = 4
) -> np.ndarray:
    """Soft mask (size, size) float32 in [0, 1] from landmarks in that frame: 1 inside the region, a
    smoothstep fade over ``config.feather`` x face size outside it, exactly 0 beyond."""
    polygon = region_polygon(landmarks, config)
    inside = np.zeros((size, size), np.uint8)
    shift = int(np.log2(subpixel))
    cv2.fillPoly(inside, [np.rint(polygon * subpixel).astype(np.int32)], 1, cv2.LINE_8, shift)
    inside = cv2.dilate(inside, np.ones((3, 3), np.uint8))  # every pixel the outline touches is inside
    outside_distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    width = max(1.0, config.feather * face_size(landmarks))
    ramp = np.clip(1.0 - outside_distance / width, 0.0, 1.0)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)


def crop_mask_for(alignment, landmarks: np.ndarray | None, size: int = 256) -> np.ndarray | None:
    """The landmark mask of a face in its aligned crop frame (``size`` px); None without landmarks (the
    caller then uses the ellipse)."""
    if landmarks is None:
        return None
    return landmark_mask(alignment.map_points(landmarks, size), size)
