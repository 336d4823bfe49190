"""Shared test generators for the StyleGAN2 fast-path and precision tests."""

from __future__ import annotations

import torch

from photokit.stylegan2.network import Generator, GeneratorConfig


def clamped_generator(channels: dict[int, int], resolution: int, seed: int = 0) -> Generator:
    """A small random generator whose clamp (1.5), noise and biases all act, so every fast path is exercised."""
    config = GeneratorConfig(
        z_dim=32, w_dim=32, resolution=resolution, mapping_layers=2, channels=channels, conv_clamp=1.5
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = Generator(config)
        with torch.no_grad():
            for name, p in G.synthesis.named_parameters():
                if name.endswith("noise_strength"):
                    p.fill_(0.2)
                elif name.endswith(".bias") and "affine" not in name:
                    p.normal_(0, 0.3)
    return G.eval()
