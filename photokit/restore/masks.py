"""The inpainting mask: read once per album, checked against every photo's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from photokit.errors import PhotokitError
from photokit.restore.output import Photo, load_photo


class KnownMask:
    """The mask file as a (H, W) float32 array, 1 = known pixel (white), read on first use and then kept."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._known: np.ndarray | None = None

    def for_photo(self, photo: Photo) -> np.ndarray | None:
        """The known-pixel mask for ``photo`` (None: no mask, i.e. super-resolution)."""
        if self.path is None:
            return None
        if self._known is None:
            self._known = (load_photo(self.path).rgb.mean(axis=2) > 0.5).astype(np.float32)
        known = self._known
        if known.shape != photo.shape:
            raise PhotokitError(
                f"mask {self.path.name} is {known.shape[1]}x{known.shape[0]} px but the photo is "
                f"{photo.shape[1]}x{photo.shape[0]} px: draw the mask on the photo itself"
            )
        return known
