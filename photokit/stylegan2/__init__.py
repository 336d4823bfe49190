"""StyleGAN2: the generator network, its checkpoint formats, sampling, and the losses and timings that
optimising through it needs. It sits beneath ``photokit.prior`` (MyStyle) and ``photokit.restore``."""

from __future__ import annotations

import os

import torch

from photokit.stylegan2.loader import GENERATOR_FILES, convert_generator, detect_format, read_generator
from photokit.stylegan2.network import Generator, GeneratorConfig, build_tiny_generator
from photokit.stylegan2.photokit_format import read_photokit_metadata, save_generator
from photokit.stylegan2.state import CheckpointError, generator_fingerprint


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Load a StyleGAN2 generator from any supported file (format detected from content), in eval mode
    with gradients off, on ``device`` ('auto', 'cpu', 'cuda', 'mps' or a ``torch.device``).

    Tuning code turns gradients back on for the part it trains (``G.synthesis.requires_grad_(True)``).
    """
    from photokit.devices import resolve_device

    if not isinstance(device, torch.device):
        device = resolve_device(device)
    return read_generator(path).to(device)


__all__ = [
    "GENERATOR_FILES",
    "CheckpointError",
    "Generator",
    "GeneratorConfig",
    "build_tiny_generator",
    "convert_generator",
    "detect_format",
    "generator_fingerprint",
    "load_generator",
    "read_generator",
    "read_photokit_metadata",
    "save_generator",
]
