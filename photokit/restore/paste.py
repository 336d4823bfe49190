"""Putting restored faces back into the photo.

- super-resolution: the background is the whole photo upscaled with Lanczos (MyStyle does the same, using
  a segmentation to find the background); each restored face is warped back with the inverse of its
  alignment at output scale and blended in through a soft mask inside the aligned square: the face's
  own outline from its 68 landmarks (``restore.mask``) when they are known, else an ellipse; size and
  feathering are proportional to the face's size. Outside every mask the output *is* the Lanczos
  upscale, bit for bit.
- inpainting: only the (dilated) hole is replaced, with Poisson blending (OpenCV ``seamlessClone``,
  NORMAL_CLONE), as the authors' code does.
Faces are composited one at a time, smallest first, so where faces overlap the larger (usually nearer)
face ends up on top, and each face's mask only ever touches its own square.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from photokit.faces.align import FaceAlignment, face_footprint, unalign_face

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class PasteConfig:
    """Mask geometry as fractions of the aligned (FFHQ) square, so it scales with the face."""

    mask_axes: tuple[float, float] = (0.40, 0.46)  # ellipse half-axes (x, y): face, hair and chin
    feather: float = 0.25  # the outer quarter of the ellipse fades from 1 to 0
    hole_dilation: float = 20 / 1024  # MyStyle dilates the hole with a 20x20 kernel on 1024 px crops


def output_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    h, w = shape
    return max(1, round(h * scale)), max(1, round(w * scale))


def lanczos_upscale(image: np.ndarray, scale: float) -> np.ndarray:
    """The photo (H, W[, C]) float32 resized by ``scale`` with Lanczos (the super-resolution background)."""
    if scale == 1:
        return image.copy()
    h, w = output_shape(image.shape[:2], scale)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LANCZOS4)


def crop_mask(size: int, config: PasteConfig = PasteConfig()) -> np.ndarray:
    """Soft elliptical mask (size, size) in the aligned crop: 1 inside, smooth fall-off, exactly 0 outside."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    ax, ay = config.mask_axes
    radius = np.sqrt((t[None, :] / ax) ** 2 + (t[:, None] / ay) ** 2)
    ramp = np.clip((1.0 - radius) / config.feather, 0.0, 1.0)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)  # smoothstep: no kink where the fade starts


def warp_face(crop: np.ndarray, alignment: FaceAlignment, out_shape: tuple[int, int], scale: float) -> np.ndarray:
    """A restored crop (S, S, 3) warped into the output frame; shrunk with an area filter first when the
    crop has far more pixels than the face gets in the output (no aliasing)."""
    target = alignment.side_px * scale
    if crop.shape[0] > 2 * target:
        side = max(8, int(round(target)))
        crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    return unalign_face(crop, alignment, out_shape, photo_scale=scale, interpolation=cv2.INTER_LANCZOS4)


def face_weight(
    alignment: FaceAlignment,
    out_shape: tuple[int, int],
    scale: float,
    config: PasteConfig = PasteConfig(),
    size: int = 256,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """The blending weight of one face in the output frame (H, W) in [0, 1]; ``mask`` is the crop-frame
    weight to use (e.g. ``restore.mask.landmark_mask``), the ellipse when None."""
    mask = crop_mask(size, config) if mask is None else mask
    return np.clip(unalign_face(mask, alignment, out_shape, photo_scale=scale, interpolation=cv2.INTER_LINEAR), 0, 1)


def match_gray(face: np.ndarray) -> np.ndarray:
    """A black-and-white photo gets a black-and-white face."""
    return np.repeat((face @ LUMA)[:, :, None], 3, axis=2)


def paste_super_resolution(
    background: np.ndarray,
    crop: np.ndarray,
    alignment: FaceAlignment,
    scale: float,
    config: PasteConfig = PasteConfig(),
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend one restored face into ``background`` (already at output scale) through ``mask`` (crop frame;
    the ellipse when None). Returns (image, weight)."""
    out_shape = background.shape[:2]
    face = warp_face(crop, alignment, out_shape, scale)
    weight = face_weight(alignment, out_shape, scale, config, mask=mask)
    inside = weight > 0
    result = background.copy()
    w = weight[inside][:, None]
    result[inside] = background[inside] * (1 - w) + face[inside] * w
    return result, weight


def hole_mask(
    known: np.ndarray,
    alignment: FaceAlignment,
    out_shape: tuple[int, int],
    scale: float,
    config: PasteConfig = PasteConfig(),
) -> np.ndarray:
    """Output-frame boolean mask of what inpainting replaces: the user's hole, dilated in proportion to the
    face, and limited to the face's aligned square (the only place the generator knows about)."""
    h, w = out_shape
    hole = cv2.resize((np.asarray(known) < 0.5).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    k = max(3, int(round(config.hole_dilation * alignment.side_px * scale)))
    hole = cv2.dilate(hole, np.ones((k, k), np.uint8))
    square = face_footprint(alignment, out_shape, scale) > 0.999
    return (hole > 0) & square


def paste_inpainting(
    background: np.ndarray,
    crop: np.ndarray,
    alignment: FaceAlignment,
    known: np.ndarray,
    scale: float,
    config: PasteConfig = PasteConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson-blend the restored face into the hole only. Returns (image, replaced mask as float)."""
    out_shape = background.shape[:2]
    region = hole_mask(known, alignment, out_shape, scale, config)
    if not region.any():
        return background.copy(), region.astype(np.float32)
    face = warp_face(crop, alignment, out_shape, scale)
    pad = 2  # seamlessClone misbehaves when the mask touches the image border
    src = cv2.copyMakeBorder(_to8(face), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    dst = cv2.copyMakeBorder(_to8(background), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    mask = np.pad(region.astype(np.uint8) * 255, pad)
    x, y, bw, bh = cv2.boundingRect(mask)
    blended = cv2.seamlessClone(src, dst, mask, (x + bw // 2, y + bh // 2), cv2.NORMAL_CLONE)
    blended = blended[pad:-pad, pad:-pad].astype(np.float32) / 255.0
    result = background.copy()
    result[region] = blended[region]
    return result, region.astype(np.float32)


def _to8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
