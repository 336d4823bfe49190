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
from photokit.stylegan2.losses import area_downsample

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


def match_low_frequencies(
    restored: torch.Tensor, observed: torch.Tensor, degradation: Degradation, blur_fraction: float = 1 / 16
) -> torch.Tensor:
    """Give the restored face the photo's colour and lighting: add the *low-passed* residual
    ``observed - phi(restored)`` (Gaussian, sigma = ``blur_fraction`` of the face's size), upsampled.

    The prior keeps the say on structure and detail (a full back-projection would also push the photo's
    noise, JPEG blocks and any small misalignment back in); the photo keeps the say on colour casts and
    lighting, which is what makes paste-back seamless. For unmasked degradations only.
    """
    residual = observed - degradation(restored)
    size = residual.shape[-1]
    sigma = max(0.5, blur_fraction * size)
    radius = int(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=residual.dtype, device=residual.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, 1, -1).repeat(residual.shape[1], 1, 1, 1)
    pad = (radius, radius, 0, 0)
    blurred = residual
    for k in (kernel, kernel.transpose(-1, -2)):  # separable: rows, then columns
        p = pad if k.shape[-1] > 1 else (0, 0, radius, radius)
        blurred = torch.nn.functional.conv2d(
            torch.nn.functional.pad(blurred, p, mode="replicate"), k, groups=residual.shape[1]
        )
    full = restored.shape[-1]
    if size != full:
        blurred = torch.nn.functional.interpolate(blurred, size=(full, full), mode="bicubic", align_corners=False)
    return restored + blurred


def crop_target(photo: np.ndarray, alignment: FaceAlignment, size: int) -> np.ndarray:
    """The aligned face at ``size`` px from the photo (float32 RGB in [0, 1])."""
    return align_face(np.ascontiguousarray(photo, dtype=np.float32), alignment, size)


def warp_mask_to_crop(mask: np.ndarray, alignment: FaceAlignment, size: int) -> np.ndarray:
    """A photo-coordinates known-pixel mask (H, W) -> the aligned crop's frame (size, size), binary float.

    Outside the photo nothing is known about the crop's reflected padding, so it counts as known
    (it carries no face the user wants repainted).
    """
    m = cv2.warpAffine(
        np.ascontiguousarray(mask, dtype=np.float32),
        alignment.crop_matrix(size),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=1.0,
    )
    return (m > 0.5).astype(np.float32)


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) float in [0, 1] -> (1, 3, H, W) in [-1, 1], the generator's range."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().unsqueeze(0).to(device) * 2 - 1


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [-1, 1] -> (H, W, 3) float32 in [0, 1]."""
    return ((tensor.detach()[0].float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy().astype(np.float32)
