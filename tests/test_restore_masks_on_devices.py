"""Inpainting masks follow the prediction and target to their device and dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from photokit.restore import degrade
from photokit.restore.project import AlphaProjection, SmallImageLoss
from photokit.stylegan2.losses import ReconstructionLoss
from photokit.stylegan2.network import build_tiny_generator


class _MeanAbsLpips(nn.Module):
    """Stands in for LPIPS (the same call signature) without any backbone."""

    def forward(self, a, b, normalize=False):
        return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)


@pytest.mark.parametrize("wrap", [False, True])
def test_a_cpu_mask_weights_a_loss_on_another_device(wrap):
    """'meta' stands for cuda/mps: a CPU mask times a tensor on another device fails unless moved."""
    pred = torch.zeros(1, 3, 8, 8, device="meta")
    target = torch.zeros(1, 3, 8, 8, device="meta")
    mask = degrade.inpainting(np.ones((8, 8), np.float32)).mask
    assert mask.device.type == "cpu"
    loss = SmallImageLoss(ReconstructionLoss(_MeanAbsLpips())) if wrap else ReconstructionLoss(None)
    value = loss(pred, target, weight=mask)
    assert value.device.type == "meta" and value.shape == (1,)


def test_projection_keeps_the_mask_on_the_targets_device_and_dtype():
    G = build_tiny_generator(resolution=16, channels=8, seed=0)
    anchors = torch.randn(3, G.w_dim)
    known = np.ones((16, 16), np.float32)
    known[4:10, 4:10] = 0
    degradation = degrade.inpainting(known)
    target = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 2 - 1
    projection = AlphaProjection(G, anchors, target, degradation, ReconstructionLoss(None), beta=0.02)
    mask = projection.degradation.mask
    assert mask.dtype == target.dtype and mask.device == target.device
    assert torch.equal(mask.float(), degradation.mask)  # the same mask, only moved
    assert np.isfinite(projection.step())
