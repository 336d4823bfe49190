"""Random samples from a generator: a quick visual check that an installed model works."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch


def images_to_grid(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> one uint8 (rows*H, cols*W, 3) contact sheet."""
    b, _, h, w = images.shape
    cols = math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    grid = torch.full((3, rows * h, cols * w), -1.0)
    for i, img in enumerate(images.detach().float().cpu()):
        r, c = divmod(i, cols)
        grid[:, r * h : (r + 1) * h, c * w : (c + 1) * w] = img
    return ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


@torch.no_grad()
def render_samples(
    generator_path: str | os.PathLike,
    out: str | os.PathLike,
    seed: int = 0,
    count: int = 4,
    truncation_psi: float = 0.7,
    device: str = "auto",
) -> dict:
    """Render ``count`` samples (one at a time, so memory stays flat) into a PNG grid, written atomically."""
    from PIL import Image

    from photokit.devices import resolve_device
    from photokit.store.atomic import atomic_path
    from photokit.stylegan2 import load_generator
    from photokit.validation import checked_number

    truncation_psi = checked_number("truncation", truncation_psi, -1.0, 2.0)
    dev = resolve_device(device)
    G = load_generator(generator_path, device=dev)
    gen = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    images = []
    for _ in range(count):
        z = torch.randn(1, G.z_dim, generator=gen).to(dev)
        images.append(G.synthesis(G.mapping(z, truncation_psi=truncation_psi), noise_mode="const").cpu())
    seconds = time.perf_counter() - started
    with atomic_path(Path(out)) as tmp:
        Image.fromarray(images_to_grid(torch.cat(images))).save(tmp, format="PNG")
    return {"count": count, "resolution": G.resolution, "device": dev.type, "seconds": seconds, "out": str(out)}
