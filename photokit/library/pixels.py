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

from photokit.library.images import _decode, _open_lazy, exif_orientation, orient_array, to_rgb_array

REDUCTIONS = (8, 4, 2, 1)  # what libjpeg's DCT scaling offers (Pillow picks among these)


@dataclass
class PhotoPixels:
    """Upright RGB pixels of one photo; ``size`` is the full upright (width, height)."""

    size: tuple[int, int]
    path: Path | None = None
    jpeg: bool = False
    orientation: int = 1  # EXIF orientation 1-8 (1: stored upright, or EXIF missing or damaged)
    _decoded: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

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
        full_long = max(self.size)
        reduction = 1
        if self.jpeg:
            reduction = next((r for r in REDUCTIONS if full_long // r >= long_side), 1)
        if reduction not in self._decoded:
            self._decoded[reduction] = self._decode(reduction)
        rgb = self._decoded[reduction]
        return rgb, max(rgb.shape[:2]) / full_long

    def _decode(self, reduction: int) -> np.ndarray:
        if self.path is None:
            raise ValueError("only the full size of an in-memory photo is available")
        image, fmt = _open_lazy(self.path)
        with image:
            if reduction > 1:
                width, height = image.size
                image.draft(image.mode, (max(1, width // reduction), max(1, height // reduction)))
            _decode(image, self.path, fmt)
            # An RGB JPEG goes to numpy in one copy (``to_rgb_array`` converts, which copies twice more:
            # 70 ms of a 12 MP photo's 110); turning it upright costs nothing unless it is rotated.
            rgb = np.asarray(image) if image.mode == "RGB" else to_rgb_array(image)
        return orient_array(rgb, self.orientation)
