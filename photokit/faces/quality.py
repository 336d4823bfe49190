"""Per-face quality measures: small pure functions on arrays (no models, no I/O)."""

from __future__ import annotations

import cv2
import numpy as np

# Above this chroma spread (0-255 scale, over the aligned crop, after removing what luminance explains)
# a face is in colour. Explaining chroma by luminance makes tinted monochrome (sepia, cyanotype,
# faded prints) count as grey too, which is what restoration wants to know.
GRAY_CHROMA_STD = 2.5


def laplacian_variance(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the grey crop (Pech-Pacheco et al. 2000): low = blurry."""
    gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var())


def is_grayscale(crop: np.ndarray, max_chroma_std: float = GRAY_CHROMA_STD) -> bool:
    """True when the crop's colour is a function of its brightness: black-and-white or uniformly tinted.

    Cr and Cb are each fitted as a linear function of Y; what the fit leaves is the real colour.
    """
    if crop.ndim == 2 or crop.shape[2] == 1:
        return True
    ycrcb = cv2.cvtColor(np.ascontiguousarray(crop[..., :3]).astype(np.uint8), cv2.COLOR_RGB2YCrCb)
    ycrcb = ycrcb.reshape(-1, 3).astype(np.float64)
    design = np.column_stack([np.ones(len(ycrcb)), ycrcb[:, 0]])
    coef, *_ = np.linalg.lstsq(design, ycrcb[:, 1:], rcond=None)
    residual = ycrcb[:, 1:] - design @ coef
    return bool(residual.std(axis=0).max() < max_chroma_std)


def yaw_from_landmarks(landmarks68: np.ndarray) -> float:
    """Head yaw estimate in degrees from the 68 landmarks (0 = frontal, +-90 = profile).

    The nose tip (30) is projected on the jaw line (0 -> 16) measured along the eye axis; on a
    frontal face it sits half way. Treating the head as a cylinder, the offset is sin(yaw).
    Positive yaw: the nose points towards the photo's right.
    """
    lm = np.asarray(landmarks68, dtype=np.float64).reshape(68, 2)
    axis = lm[42:48].mean(axis=0) - lm[36:42].mean(axis=0)
    norm = np.hypot(*axis)
    if norm < 1e-6:
        return 0.0
    axis /= norm
    left, right, nose = (float(lm[i] @ axis) for i in (0, 16, 30))
    width = right - left
    if abs(width) < 1e-6:
        return 0.0
    ratio = (nose - left) / width
    return float(np.degrees(np.arcsin(np.clip(2.0 * ratio - 1.0, -1.0, 1.0))))


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
