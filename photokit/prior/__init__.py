"""The generative prior: StyleGAN2 generator, checkpoints, projection, tuning and alpha space."""

from __future__ import annotations

import os

import torch


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Load a StyleGAN2 generator from any supported file (format detected from content), in eval mode
    with gradients off, on ``device`` ('auto', 'cpu', 'cuda', 'mps' or a ``torch.device``).

    Tuning code turns gradients back on for the part it trains (``G.synthesis.requires_grad_(True)``).
    """
    from photokit.devices import resolve_device
    from photokit.prior.checkpoints import read_generator

    if not isinstance(device, torch.device):
        device = resolve_device(device)
    return read_generator(path).to(device)


__all__ = ["load_generator"]
