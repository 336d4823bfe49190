"""A photo's pixels at the sizes face analysis needs, each size decoded at most once.

Phone photos are 12 MP; finding faces needs a ~1024 px copy and measuring a face needs a few hundred
pixels across it. JPEGs are therefore decoded straight at 1/2, 1/4 or 1/8 size (libjpeg's DCT scaling,
Pillow's draft mode), which still reads the whole stream (truncation is caught) but costs a fraction of
a full decode and of a downscale. Other formats are decoded once at full size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from photokit.library.images import _decode, _open_lazy, exif_orientation, orient_array, to_rgb_array

REDUCTIONS = (8, 4, 2, 1)  # what libjpeg's DCT scaling offers (Pillow picks among these)


@dataclass
class PhotoPixels:
    """Upright RGB pixels of one photo; ``size`` is the full upright (width, height)."""

    size: tuple[int, int]
    path: Path | None = None
    jpeg: bool = False
    orientation: int = 1  # EXIF orientation 1-8 (1: stored upright, or EXIF missing or damaged)
    _decoded: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # by reduction, upright
    _images: dict[int, Image.Image] = field(default_factory=dict, repr=False)  # decoded, not yet arrays

    @classmethod
    def open(cls, path: str | os.PathLike) -> PhotoPixels:
        """Check the file (``ImageReadError`` as ``read_rgb``) without decoding its pixels yet."""
        image, fmt = _open_lazy(path)
        with image:
            width, height = image.size
            orientation = exif_orientation(image)  # as scan and enhance read it (damaged EXIF: upright)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        return cls(size=(width, height), path=Path(path), jpeg=fmt == "jpeg", orientation=orientation)

    @classmethod
    def from_array(cls, rgb: np.ndarray) -> PhotoPixels:
        """Pixels already in memory (only their full size is available)."""
        return cls(size=(rgb.shape[1], rgb.shape[0]), _decoded={1: rgb})

    def at_least(self, long_side: float) -> tuple[np.ndarray, float]:
        """The smallest available decode whose long side is >= ``long_side`` (else the full photo),
        and its scale (decoded / full size)."""
        reduction = self._reduction(long_side)
        if reduction not in self._decoded:
            self._decoded[reduction] = orient_array(_rgb(self._image(reduction)), self.orientation)
            self._images.pop(reduction, None)
        rgb = self._decoded[reduction]
        return rgb, max(rgb.shape[:2]) / max(self.size)

    def region(self, long_side: float, box: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray, float]:
        """The part of ``at_least(long_side)`` around ``box`` (x0, y0, x1, y1 in photo pixels) grown by
        ``margin`` photo pixels on every side: (pixels, their top-left corner in that decode, its scale).

        Only the region becomes an array: for a face on a 12 MP photo that skips a 36 MB copy (a third of
        the cost of a full decode). A box outside the photo gives the whole decode."""
        reduction = self._reduction(long_side)
        image = None if reduction in self._decoded or self.orientation != 1 else self._image(reduction)
        if image is None:
            rgb, scale = self.at_least(long_side)
            width, height = rgb.shape[1], rgb.shape[0]
        else:
            (width, height), scale = image.size, max(image.size) / max(self.size)
        x0, y0, x1, y1 = _bounds(np.asarray(box, dtype=np.float64) * scale, margin * scale, width, height)
        if x1 <= x0 or y1 <= y0:
            return self.at_least(long_side)[0], np.zeros(2), scale
        if image is None:
            pixels = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        else:
            pixels = _rgb(image.crop((x0, y0, x1, y1)))
        return pixels, np.array([x0, y0], dtype=np.float64), scale

    def _reduction(self, long_side: float) -> int:
        if not self.jpeg:
            return 1
        return next((r for r in REDUCTIONS if max(self.size) // r >= long_side), 1)

    def _image(self, reduction: int) -> Image.Image:
        """The decode at 1/``reduction`` size, as stored (not turned upright), kept for ``region``."""
        if reduction in self._images:
            return self._images[reduction]
        if self.path is None:
            raise ValueError("only the full size of an in-memory photo is available")
        image, fmt = _open_lazy(self.path)
        with image:
            if reduction > 1:
                width, height = image.size
                image.draft(image.mode, (max(1, width // reduction), max(1, height // reduction)))
            _decode(image, self.path, fmt)
        self._images[reduction] = image
        return image


def _rgb(image: Image.Image) -> np.ndarray:
    """An RGB image goes to numpy in one copy (``to_rgb_array`` converts, which copies twice more: 70 ms of a
    12 MP photo's 110); other modes (grey, CMYK, 16-bit...) need the conversion."""
    return np.asarray(image) if image.mode == "RGB" else to_rgb_array(image)


def _bounds(box: np.ndarray, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel bounds of ``box`` grown by ``margin`` on each side, clipped to a width x height image."""
    x0, y0 = max(0, int(np.floor(box[0] - margin))), max(0, int(np.floor(box[1] - margin)))
    x1, y1 = min(width, int(np.ceil(box[2] + margin))), min(height, int(np.ceil(box[3] + margin)))
    return x0, y0, x1, y1
