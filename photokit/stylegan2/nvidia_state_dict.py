"""NVIDIA stylegan2-ada-pytorch layout: ``G_ema.state_dict()`` (``{'G_ema_state_dict', 'init_kwargs'}`` .pt files,
and the tensors taken out of a network pickle)."""

from __future__ import annotations

import re
from typing import Any

import torch

from photokit.stylegan2.network import Generator, GeneratorConfig, block_resolutions
from photokit.stylegan2.state import CheckpointError, check_filter, generator_from_state, need_tensor


def nvlabs_config(sd: dict[str, Any], init_kwargs: dict | None, source: str) -> GeneratorConfig:
    if any(k.startswith("mapping.embed") for k in sd):
        raise CheckpointError(f"{source}: class-conditional generators (c_dim > 0) are not supported")
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"synthesis\.b(\d+)\.", k))})
    if not blocks:
        raise CheckpointError(f"{source}: no synthesis blocks (synthesis.b4...) found: not a StyleGAN2 generator")
    resolution = blocks[-1]
    if resolution & (resolution - 1) or blocks != block_resolutions(resolution):
        raise CheckpointError(f"{source}: synthesis blocks {blocks} are not 4, 8, ..., a power of two")
    channels = {res: int(need_tensor(sd, f"synthesis.b{res}.conv1.weight", source).shape[0]) for res in blocks}
    layers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"mapping\.fc(\d+)\.weight$", k))})
    if not layers or layers != list(range(len(layers))):
        raise CheckpointError(f"{source}: mapping layers {layers} are not fc0..fcN")
    fc0 = need_tensor(sd, "mapping.fc0.weight", source)
    if fc0.ndim != 2:
        raise CheckpointError(f"{source}: 'mapping.fc0.weight' has shape {tuple(fc0.shape)}, expected 2-D")
    kwargs = dict(init_kwargs or {})
    mapping_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    synthesis_kwargs = dict(kwargs.get("synthesis_kwargs") or {})
    if int(kwargs.get("c_dim", 0) or 0):
        raise CheckpointError(f"{source}: class-conditional generators (c_dim > 0) are not supported")
    if synthesis_kwargs.get("architecture", "skip") != "skip":
        raise CheckpointError(
            f"{source}: synthesis architecture {synthesis_kwargs['architecture']!r} is not supported (only 'skip')"
        )
    clamp = synthesis_kwargs.get("conv_clamp")
    if clamp is not None and (isinstance(clamp, bool) or not isinstance(clamp, (int, float)) or clamp <= 0):
        raise CheckpointError(f"{source}: invalid conv_clamp {clamp!r} in the generator's settings")
    return GeneratorConfig(
        z_dim=int(fc0.shape[1]),
        w_dim=int(fc0.shape[0]),
        resolution=resolution,
        mapping_layers=len(layers),
        channels=channels,
        img_channels=int(need_tensor(sd, f"synthesis.b{resolution}.torgb.weight", source).shape[0]),
        mapping_lr_multiplier=float(mapping_kwargs.get("lr_multiplier", 0.01)),
        conv_clamp=None if clamp is None else float(clamp),
        fan_in_before_demod=False,
        source="nvlabs",
    )


def from_nvlabs_state_dict(
    sd: dict[str, Any], init_kwargs: dict | None = None, source: str = "checkpoint"
) -> Generator:
    """NVIDIA's ``G_ema.state_dict()``; ``init_kwargs`` (if known) supplies conv_clamp and lr multiplier."""
    config = nvlabs_config(sd, init_kwargs, source)
    state: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith("resample_filter"):
            check_filter(need_tensor(sd, key, source), 1.0, key, source)
            continue
        state[key] = value
    return generator_from_state(config, state, source)
