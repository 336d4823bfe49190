"""Small copies of each restored face's input and result, for ``enhance --report``: collected where the
faces are restored (this process, or a Ray worker that sends them back with its job's outcome)."""

from __future__ import annotations

import cv2
import numpy as np

REPORT_CROP_PX = 192  # crops are shown at this size (small inputs are Lanczos-upscaled, as the photo's background)


def face_thumbnail(image: np.ndarray, size: int = REPORT_CROP_PX) -> np.ndarray:
    """A uint8 ``size`` px copy of a float RGB crop in [0, 1], so a report over an album keeps little in memory."""
    return np.asarray(
        cv2.resize(
            np.clip(np.rint(np.asarray(image) * 255), 0, 255).astype(np.uint8),
            (size, size),
            interpolation=cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LANCZOS4,
        )
    )


class CropCollector:
    """An ``Enhancer``'s ``on_face``: (photo, face index) -> (input crop, restored crop) thumbnails."""

    def __init__(self) -> None:
        self.crops: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, source: str, face, before: np.ndarray, after: np.ndarray) -> None:
        self.crops[(source, face.index)] = (face_thumbnail(before), face_thumbnail(after))

    def take(self, source: str) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
        """The crops of one photo, forgotten here (a worker sends them back once)."""
        mine = {key: value for key, value in self.crops.items() if key[0] == source}
        for key in mine:
            del self.crops[key]
        return mine
