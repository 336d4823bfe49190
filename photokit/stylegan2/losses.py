"""Reconstruction losses: LPIPS (the ``lpips`` package) + lambda_L2 x MSE, as in MyStyle eq. (1).

LPIPS needs torchvision's ImageNet backbone weights, which photokit never downloads behind the
user's back: ``photokit models install lpips-alex|lpips-vgg`` puts them where torchvision looks
(``$TORCH_HOME/hub/checkpoints``). Without them, commands stop and say so, unless the user asks for
the MSE loss explicitly. Tests may build LPIPS on a random backbone (``allow_random_backbone``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from photokit.errors import MissingModelError, Remedy
from photokit.stylegan2.vocab import LossKind

# torchvision's file names for the ImageNet weights LPIPS builds on.
LPIPS_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


LOSS_CHOICES = tuple(LossKind)


def torchvision_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def lpips_backbone_path(net: str) -> Path:
    return torchvision_checkpoint_dir() / LPIPS_BACKBONE_FILES[net]


def lpips_available(net: str) -> bool:
    return lpips_backbone_path(net).is_file()


def build_lpips(net: str, device: torch.device | str = "cpu", allow_random_backbone: bool = False) -> nn.Module:
    """An LPIPS module (frozen, eval mode) with ``net`` in {'alex', 'vgg'}."""
    import lpips  # imported lazily: it pulls in torchvision

    if net not in LPIPS_BACKBONE_FILES:
        raise ValueError(f"unknown LPIPS backbone {net!r}")
    random_backbone = not lpips_available(net)
    if random_backbone and not allow_random_backbone:
        raise MissingModelError(
            f"LPIPS-{net} needs torchvision's ImageNet weights ({LPIPS_BACKBONE_FILES[net]}), which are not installed",
            Remedy.INSTALL_OR_MSE_LOSS,
            model=f"lpips-{net}",
        )
    model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=random_backbone, verbose=False)
    model.random_backbone = random_backbone
    return model.to(device).eval().requires_grad_(False)


class ReconstructionLoss(nn.Module):
    """Per-sample LPIPS(pred, target) + ``mse_weight`` x MSE(pred, target); images in [-1, 1].

    ``lpips_model=None`` gives the MSE-only loss (explicitly degraded quality).
    """

    def __init__(self, lpips_model: nn.Module | None, mse_weight: float = 1.0) -> None:
        super().__init__()
        self.lpips = lpips_model
        self.mse_weight = mse_weight

    @property
    def name(self) -> str:
        if self.lpips is None:
            return LossKind.MSE
        return "lpips(random backbone)+mse" if getattr(self.lpips, "random_backbone", False) else "lpips+mse"

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        mse = weighted_squared_error(pred, target, weight)
        loss = self.mse_weight * mse.flatten(1).mean(dim=1)
        if self.lpips is not None:
            loss = loss + self.lpips(pred, target, normalize=False).flatten(1).mean(dim=1)
        return loss

    def residuals(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """(B, M) residuals whose squares sum to ``forward``'s loss per sample (for Gauss-Newton steps)."""
        parts = [self.mse_residuals(pred, target, weight)]
        if self.lpips is not None:
            parts.append(lpips_residuals(self.lpips, pred, target))
        return torch.cat(parts, dim=1)

    def mse_residuals(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        difference = pred - target
        if weight is not None:
            difference = difference * weight.to(device=pred.device, dtype=pred.dtype).sqrt()
        return difference.flatten(1) * math.sqrt(self.mse_weight / difference[0].numel())


def lpips_residuals(model: nn.Module, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS (the lpips package's v0.1 metric, images in [-1, 1]) as residuals: sqrt(w_c) x the difference of
    channel-normalised features per layer, over sqrt(H W), so their squares sum to LPIPS per sample."""
    import lpips

    if getattr(model, "version", None) != "0.1" or not model.lpips or model.spatial:
        raise ValueError("LPIPS residuals need the v0.1 metric with linear layers, averaged over space")
    features = model.net.forward(model.scaling_layer(pred)), model.net.forward(model.scaling_layer(target))
    parts = []
    for k, (a, b) in enumerate(zip(*features, strict=True)):
        root_weight = model.lins[k].model[-1].weight.clamp_min(0).sqrt().view(1, -1, 1, 1)
        difference = (lpips.normalize_tensor(a) - lpips.normalize_tensor(b)) * root_weight
        parts.append(difference.flatten(1) / math.sqrt(difference.shape[2] * difference.shape[3]))
    return torch.cat(parts, dim=1)


def make_reconstruction_loss(
    kind: str = LossKind.LPIPS,
    net: str = "alex",
    device: torch.device | str = "cpu",
    mse_weight: float = 1.0,
    allow_random_backbone: bool = False,
) -> ReconstructionLoss:
    if kind not in LOSS_CHOICES:
        raise ValueError(f"unknown loss {kind!r}: use one of {LOSS_CHOICES}")
    model = build_lpips(net, device, allow_random_backbone) if kind == LossKind.LPIPS else None
    return ReconstructionLoss(model, mse_weight).to(device)


def weighted_squared_error(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """(pred - target)^2, times ``weight`` (e.g. an inpainting mask: only known pixels count) where given.

    The weight follows the prediction's device and dtype: masks are built on the CPU from photo files,
    while the prediction may live on a GPU.
    """
    error = (pred - target).pow(2)
    if weight is not None:
        error = error * weight.to(device=pred.device, dtype=pred.dtype)
    return error


def area_downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Area (box-filter) downsampling to ``size`` px, the degradation MyStyle and the projector use."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="area")
