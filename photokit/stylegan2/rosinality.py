"""rosinality stylegan2-pytorch layout (``{'g_ema', 'latent_avg'}``, e.g. ``stylegan2-ffhq-config-f.pt``),
mapped onto photokit's module names."""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from photokit.stylegan2.network import Generator, GeneratorConfig, block_resolutions, w_statistics
from photokit.stylegan2.state import CheckpointError, check_filter, generator_from_state, need_tensor


def from_rosinality_state_dict(
    sd: dict[str, Any], latent_avg: torch.Tensor | None = None, source: str = "checkpoint"
) -> Generator:
    """rosinality's ``g_ema`` state dict and ``latent_avg`` mapped onto photokit's module names."""
    config = _rosinality_config(sd, source)
    state = _StateMapper(sd, config, source).mapped()
    if latent_avg is not None:
        state["mapping.w_avg"] = latent_avg.reshape(-1) if latent_avg.numel() == config.w_dim else latent_avg
        return generator_from_state(config, state, source)
    # No latent_avg saved: estimate it as rosinality's own ``mean_latent`` does, from random z.
    state["mapping.w_avg"] = torch.zeros(config.w_dim)
    G = generator_from_state(config, state, source)
    G.mapping.w_avg.copy_(w_statistics(G, 4096)[0])
    return G


def _rosinality_config(sd: dict[str, Any], source: str) -> GeneratorConfig:
    """The generator's shape read off the tensor names and shapes (mapping depth, resolution, channels)."""
    n_mlp = len({k for k in sd if re.match(r"style\.\d+\.weight$", k)})
    if n_mlp == 0:
        raise CheckpointError(f"{source}: no mapping layers (style.1.weight ...) found: not a rosinality StyleGAN2")
    n_rgbs = len({m.group(1) for k in sd if (m := re.match(r"to_rgbs\.(\d+)\.", k))})
    resolution = 2 ** (n_rgbs + 2)
    const = need_tensor(sd, "input.input", source)
    if const.ndim != 4:
        raise CheckpointError(f"{source}: tensor 'input.input' has shape {tuple(const.shape)}, expected (1, C, 4, 4)")
    channels = {4: int(const.shape[1])}
    for i, res in enumerate(block_resolutions(resolution)[1:]):
        w = need_tensor(sd, f"convs.{2 * i}.conv.weight", source)
        if w.ndim != 5:
            raise CheckpointError(
                f"{source}: tensor 'convs.{2 * i}.conv.weight' has shape {tuple(w.shape)}, expected 5-D"
            )
        channels[res] = int(w.shape[1])
    style1 = need_tensor(sd, "style.1.weight", source)
    if style1.ndim != 2:
        raise CheckpointError(f"{source}: tensor 'style.1.weight' has shape {tuple(style1.shape)}, expected 2-D")
    return GeneratorConfig(
        z_dim=int(style1.shape[1]),
        w_dim=int(style1.shape[0]),
        resolution=resolution,
        mapping_layers=n_mlp,
        channels=channels,
        img_channels=int(need_tensor(sd, "to_rgb1.conv.weight", source).shape[1]),
        fan_in_before_demod=True,
        source="rosinality",
    )


class _StateMapper:
    """rosinality tensors renamed (and reshaped) to photokit's; every source tensor must be used."""

    def __init__(self, sd: dict[str, Any], config: GeneratorConfig, source: str) -> None:
        self.sd, self.config, self.source = sd, config, source
        self.used: set[str] = set()
        self.state: dict[str, torch.Tensor] = {}

    def take(self, key: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        t = need_tensor(self.sd, key, self.source)
        self.used.add(key)
        if shape is not None:
            if t.numel() != math.prod(shape):
                raise CheckpointError(
                    f"{self.source}: tensor '{key}' has shape {tuple(t.shape)}, expected {tuple(shape)}"
                )
            t = t.reshape(shape)
        return t

    def styled_conv(self, dst: str, src: str, noise: str, res: int, c_in: int, c_out: int) -> None:
        state, take = self.state, self.take
        state[f"{dst}.weight"] = take(f"{src}.conv.weight", (c_out, c_in, 3, 3))
        state[f"{dst}.affine.weight"] = take(f"{src}.conv.modulation.weight")
        state[f"{dst}.affine.bias"] = take(f"{src}.conv.modulation.bias")
        state[f"{dst}.bias"] = take(f"{src}.activate.bias")
        state[f"{dst}.noise_strength"] = take(f"{src}.noise.weight", ())
        state[f"{dst}.noise_const"] = take(f"noises.{noise}", (res, res))

    def to_rgb(self, dst: str, src: str, c_in: int) -> None:
        img_channels = self.config.img_channels
        self.state[f"{dst}.weight"] = self.take(f"{src}.conv.weight", (img_channels, c_in, 1, 1))
        self.state[f"{dst}.affine.weight"] = self.take(f"{src}.conv.modulation.weight")
        self.state[f"{dst}.affine.bias"] = self.take(f"{src}.conv.modulation.bias")
        self.state[f"{dst}.bias"] = self.take(f"{src}.bias", (img_channels,))

    def mapped(self) -> dict[str, torch.Tensor]:
        """photokit's state dict, without ``mapping.w_avg``."""
        config, source, take = self.config, self.source, self.take
        channels = config.channels
        for i in range(config.mapping_layers):
            self.state[f"mapping.fc{i}.weight"] = take(f"style.{i + 1}.weight")
            self.state[f"mapping.fc{i}.bias"] = take(f"style.{i + 1}.bias")
        self.state["synthesis.b4.const"] = take("input.input", (channels[4], 4, 4))
        self.styled_conv("synthesis.b4.conv1", "conv1", "noise_0", 4, channels[4], channels[4])
        self.to_rgb("synthesis.b4.torgb", "to_rgb1", channels[4])
        for i, res in enumerate(block_resolutions(config.resolution)[1:]):
            c_in, c_out = channels[res // 2], channels[res]
            self.styled_conv(f"synthesis.b{res}.conv0", f"convs.{2 * i}", f"noise_{2 * i + 1}", res, c_in, c_out)
            self.styled_conv(f"synthesis.b{res}.conv1", f"convs.{2 * i + 1}", f"noise_{2 * i + 2}", res, c_out, c_out)
            self.to_rgb(f"synthesis.b{res}.torgb", f"to_rgbs.{i}", c_out)
            check_filter(take(f"convs.{2 * i}.conv.blur.kernel"), 4.0, f"convs.{2 * i}.conv.blur.kernel", source)
            check_filter(take(f"to_rgbs.{i}.upsample.kernel"), 4.0, f"to_rgbs.{i}.upsample.kernel", source)
        unexpected = sorted(set(self.sd) - self.used)
        if unexpected:
            raise CheckpointError(
                f"{source}: unexpected tensor '{unexpected[0]}' for a {config.resolution} px rosinality generator"
            )
        return self.state
