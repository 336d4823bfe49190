"""StyleGAN2: the generator network, its checkpoint formats, sampling, and the losses and timings that
optimising through it needs. It sits beneath ``photokit.prior`` (MyStyle) and ``photokit.restore``.

The names below load on first use, so importing a light submodule (``photokit.stylegan2.vocab``) does not
load torch.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from photokit.stylegan2.network import Generator

_EXPORTS = {
    "GENERATOR_FILES": "photokit.stylegan2.loader",
    "convert_generator": "photokit.stylegan2.loader",
    "detect_format": "photokit.stylegan2.loader",
    "read_generator": "photokit.stylegan2.loader",
    "Generator": "photokit.stylegan2.network",
    "GeneratorConfig": "photokit.stylegan2.network",
    "build_tiny_generator": "photokit.stylegan2.network",
    "read_photokit_metadata": "photokit.stylegan2.photokit_format",
    "save_generator": "photokit.stylegan2.photokit_format",
    "CheckpointError": "photokit.stylegan2.state",
    "generator_fingerprint": "photokit.stylegan2.state",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Load a StyleGAN2 generator from any supported file (format detected from content), in eval mode
    with gradients off, on ``device`` ('auto', 'cpu', 'cuda', 'mps' or a ``torch.device``).

    Tuning code turns gradients back on for the part it trains (``G.synthesis.requires_grad_(True)``).
    """
    import torch

    from photokit.devices import resolve_device
    from photokit.stylegan2.loader import read_generator

    if not isinstance(device, torch.device):
        device = resolve_device(device)
    return read_generator(path).to(device)


__all__ = [*_EXPORTS, "load_generator"]
