"""Degradation models phi (MyStyle eq. 4): what the generator's clean face must look like after the damage
the photo really suffered, so that projecting a degraded photo finds the clean face behind it.

- super-resolution: area downsampling from the generator's resolution to the face's *real* resolution
  in the photo. The input is the honest low-resolution aligned crop (the face at its own size), not a
  high-resolution crop downsampled by us, which is the only path the authors' code had.
- inpainting: multiplication by a mask (1 = known pixel), warped from photo coordinates into the crop.
Both compose: a small face with a hole is downsampled, then masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from photokit.faces.align import FaceAlignment, align_face
from photokit.prior.losses import area_downsample


_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


@dataclass(frozen=True)
class Degradation:
    """phi: generator images (B, 3, R, R) -> degraded images (B, 3, size, size)."""

    size: int  # side of the degraded image: the face's own resolution (<= the generator's)
    mask: torch.Tensor | None = None  # (1, 1, size, size), 1 = known, 0 = hole
    gray: bool = False  # a black-and-white photo says nothing about colour

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.observe(area_downsample(images, self.size))

    def observe(self, low: torch.Tensor) -> torch.Tensor:
        """The part of phi that also applies to the photo's own low-resolution crop (mask, colour)."""
        if self.gray:
            luma = (low * _LUMA.to(low.device, low.dtype)).sum(dim=1, keepdim=True)
            low = luma.expand_as(low)
        if self.mask is not None:
            low = low * self.mask.to(low.device, low.dtype)
        return low

    @property
    def task(self) -> str:
        return "inpaint" if self.mask is not None else "super_resolution"

    def factor(self, generator_resolution: int) -> float:
        return generator_resolution / self.size


def super_resolution(generator_resolution: int, face_side_px: float) -> Degradation:
    """Area downsampling by the factor between the generator's resolution and the face's real size.

    A face at least as large as the generator's output is not downsampled (factor 1).
    """
    size = int(min(generator_resolution, max(1, round(face_side_px))))
    return Degradation(size=size)


def inpainting(mask: np.ndarray | torch.Tensor, downsample_to: int | None = None) -> Degradation:
    """Mask degradation (MyStyle: image x mask, white = known); ``mask`` is (S, S) in [0, 1]."""
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    size = int(m.shape[-1])
    if downsample_to is not None and downsample_to != size:
        m = area_downsample(m[None, None], downsample_to)[0, 0]
        size = downsample_to
    m = (m > 0.5).float()  # a pixel is either trusted or not
    return Degradation(size=size, mask=m[None, None])


def enforce_consistency(restored: torch.Tensor, observed: torch.Tensor, degradation: Degradation,
                        iterations: int = 5) -> torch.Tensor:
    """Iterative back-projection (Irani & Peleg 1991): add the upsampled residual ``observed - phi(restored)``
    until the restored face, degraded again, gives back the photo's own pixels.

    The prior supplies the detail phi destroyed; the photo keeps the final say on what phi kept (colour,
    lighting, low-frequency shape), which also makes paste-back seamless. Not for masked degradations.
    """
    size = restored.shape[-1]
    for _ in range(iterations):
        residual = observed - degradation(restored)
        if residual.shape[-1] != size:
            residual = torch.nn.functional.interpolate(residual, size=(size, size), mode="bicubic",
                                                       align_corners=False)
        restored = restored + residual
    return restored


def crop_target(photo: np.ndarray, alignment: FaceAlignment, size: int) -> np.ndarray:
    """The aligned face at ``size`` px from the photo (float32 RGB in [0, 1])."""
    return align_face(np.ascontiguousarray(photo, dtype=np.float32), alignment, size)


def warp_mask_to_crop(mask: np.ndarray, alignment: FaceAlignment, size: int) -> np.ndarray:
    """A photo-coordinates known-pixel mask (H, W) -> the aligned crop's frame (size, size), binary float.

    Outside the photo nothing is known about the crop's reflected padding, so it counts as known
    (it carries no face the user wants repainted).
    """
    m = cv2.warpAffine(
        np.ascontiguousarray(mask, dtype=np.float32), alignment.crop_matrix(size), (size, size),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=1.0,
    )
    return (m > 0.5).astype(np.float32)


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) float in [0, 1] -> (1, 3, H, W) in [-1, 1], the generator's range."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().unsqueeze(0).to(device) * 2 - 1


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [-1, 1] -> (H, W, 3) float32 in [0, 1]."""
    return ((tensor.detach()[0].float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy().astype(np.float32)
