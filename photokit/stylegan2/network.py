"""StyleGAN2 generator (Karras et al., CVPR 2020, config F) in plain PyTorch, written for photokit.

It reproduces the two public PyTorch implementations numerically (NVlabs/stylegan2-ada-pytorch and
rosinality/stylegan2-pytorch) when loaded with their weights (see ``photokit.stylegan2.loader``), with
no custom CUDA kernels, so it runs on CPU, CUDA and MPS alike.

The layers are in ``photokit.stylegan2.layers`` and the tensor maths in ``photokit.stylegan2.ops``; this
module holds the architecture (``GeneratorConfig``), the assembled networks and the test generator.

Module names follow the NVIDIA layout (``mapping.fc0``, ``synthesis.b8.conv0`` ...), which makes the
NVIDIA state dict load almost verbatim and keeps photokit's own files readable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from photokit.stylegan2.layers import NOISE_MODES, MappingNetwork, SynthesisBlock, SynthesisOptions
from photokit.stylegan2.ops import fir_filter
from photokit.stylegan2.precision import autocast_for
from photokit.stylegan2.vocab import Precision


def block_resolutions(resolution: int) -> list[int]:
    """4, 8, ..., resolution: one synthesis block each."""
    return [2**i for i in range(2, int(math.log2(resolution)) + 1)]


def num_ws_for(resolution: int) -> int:
    """Two styles per resolution doubling plus the 4x4 conv and the last toRGB: 18 at 1024 px, 14 at 256."""
    return 2 * int(math.log2(resolution)) - 2


@dataclass
class GeneratorConfig:
    """Architecture of a StyleGAN2 generator; what photokit stores next to the weights.

    ``channels`` maps every block resolution (4, 8, ..., resolution) to its feature channels; it is read
    from the tensor shapes of a checkpoint, never from a table.
    """

    z_dim: int = 512
    w_dim: int = 512
    resolution: int = 1024
    mapping_layers: int = 8
    channels: dict[int, int] = field(default_factory=dict)
    img_channels: int = 3
    mapping_lr_multiplier: float = 0.01  # StyleGAN: the mapping network learns 100x slower
    conv_clamp: float | None = None  # NVIDIA clamps conv outputs to +-256 in fp16 training configs
    # rosinality scales modulated conv weights by 1/sqrt(fan_in) *before* demodulating, NVIDIA does not.
    # Demodulation cancels the scale except inside its 1e-8 epsilon; kept as a flag to be faithful to both.
    fan_in_before_demod: bool = False
    source: str = "photokit"  # the layout the weights came from: nvlabs, rosinality, photokit, tiny

    def __post_init__(self) -> None:
        self.channels = {int(k): int(v) for k, v in self.channels.items()}
        # Metadata is read from files: a zero or negative size would surface later as a ZeroDivisionError.
        for name in ("z_dim", "w_dim", "mapping_layers", "img_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65536:
                raise ValueError(f"{name} must be a whole number from 1 to 65536, got {value!r}")
        if any(not 1 <= c <= 65536 for c in self.channels.values()):
            raise ValueError(f"channels must be from 1 to 65536, got {self.channels}")
        if not (isinstance(self.resolution, int) and self.resolution <= 16384):
            raise ValueError(f"resolution must be a whole number up to 16384, got {self.resolution!r}")
        if not 0 < float(self.mapping_lr_multiplier) < float("inf"):
            raise ValueError(
                f"mapping_lr_multiplier must be a finite positive number, got {self.mapping_lr_multiplier}"
            )
        if self.conv_clamp is not None and not 0 < float(self.conv_clamp) < float("inf"):
            raise ValueError(f"conv_clamp must be a finite positive number or null, got {self.conv_clamp}")
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        missing = [r for r in self.block_resolutions if r not in self.channels]
        if missing:
            raise ValueError(f"channels missing for resolutions {missing}")

    @property
    def block_resolutions(self) -> list[int]:
        return block_resolutions(self.resolution)

    @property
    def num_ws(self) -> int:
        return num_ws_for(self.resolution)

    def to_json(self) -> dict[str, Any]:
        return {
            "z_dim": self.z_dim,
            "w_dim": self.w_dim,
            "resolution": self.resolution,
            "mapping_layers": self.mapping_layers,
            "channels": {str(k): v for k, v in sorted(self.channels.items())},
            "img_channels": self.img_channels,
            "mapping_lr_multiplier": self.mapping_lr_multiplier,
            "conv_clamp": self.conv_clamp,
            "fan_in_before_demod": self.fan_in_before_demod,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GeneratorConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown generator config keys {sorted(unknown)}")
        return cls(**data)


BlockInput = tuple[torch.Tensor | None, torch.Tensor | None]  # (features x, image so far) a block takes in


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> image (B, 3, H, W), roughly in [-1, 1]. The part MyStyle tunes."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim, self.resolution, self.num_ws = config.w_dim, config.resolution, config.num_ws
        self.block_resolutions = config.block_resolutions
        # Modulated-conv path: True per-sample weights, False scaled activations, None whichever is cheaper
        # per layer (the same maths either way). Activations are channels-last except on MPS.
        self.fused_modconv: bool | None = None
        self.channels_last = True
        # Arithmetic of convolutions and matmuls: FP32 reproduces the references; BF16 (or AUTO on a CPU with
        # native bf16) runs them under bf16 autocast, faster at a measured cost in accuracy (precision.py).
        self.precision = Precision.FP32
        self.register_buffer("resample_filter", fir_filter(), persistent=False)
        for res in self.block_resolutions:
            in_channels = config.channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(
                in_channels,
                config.channels[res],
                config.w_dim,
                res,
                config.img_channels,
                config.conv_clamp,
                config.fan_in_before_demod,
            )
            self.add_module(f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape (batch, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        with autocast_for(self.precision, ws.device):
            img = self._synthesize(ws, noise_mode)
        # Callers get the usual layout and ws's dtype, whatever the activations used.
        return img.to(dtype=ws.dtype, memory_format=torch.contiguous_format)

    def _synthesize(
        self,
        ws: torch.Tensor,
        noise_mode: str,
        start: int = 0,
        state: BlockInput = (None, None),
        inputs: list[BlockInput] | None = None,
    ) -> torch.Tensor:
        """Blocks ``start`` onwards from ``state`` (what block ``start`` takes in); each block's input is
        appended to ``inputs`` when given."""
        # Channels-last only without autograd: PyTorch's CPU convolution backward is slower in it.
        channels_last = self.channels_last and ws.device.type != "mps" and not torch.is_grad_enabled()
        options = SynthesisOptions(noise_mode, self.fused_modconv, channels_last)
        x, img = state
        w_idx = sum(getattr(self, f"b{res}").num_conv for res in self.block_resolutions[:start])
        for res in self.block_resolutions[start:]:
            block = getattr(self, f"b{res}")
            if inputs is not None:
                inputs.append((x, img))
            # Consecutive blocks share one w: block i's toRGB style is block i+1's first conv style.
            x, img = block(x, img, ws[:, w_idx : w_idx + block.num_conv + 1], self.resample_filter, options)
            w_idx += block.num_conv
        assert img is not None
        return img

    def first_block_reading(self, layer: int) -> int:
        """The first block whose output depends on ``ws[:, layer]`` (a change there leaves earlier ones alone)."""
        w_idx = 0
        for index, res in enumerate(self.block_resolutions):
            w_idx += getattr(self, f"b{res}").num_conv
            if layer <= w_idx:
                return index
        raise ValueError(f"layer {layer} is not below num_ws = {self.num_ws}")

    @torch.no_grad()
    def block_inputs(self, ws: torch.Tensor, noise_mode: str = "const") -> tuple[torch.Tensor, list[BlockInput]]:
        """The image and what every block took in: ``resume`` re-renders from any block after a change of
        the later ws only (Gauss-Newton's finite differences, restore/gauss_newton.py)."""
        inputs: list[BlockInput] = []
        with autocast_for(self.precision, ws.device):
            img = self._synthesize(ws, noise_mode, inputs=inputs)
        return img.to(dtype=ws.dtype, memory_format=torch.contiguous_format), inputs

    @torch.no_grad()
    def resume(self, ws: torch.Tensor, start: int, state: BlockInput, noise_mode: str = "const") -> torch.Tensor:
        """The image from block ``start`` on, given its input ``state`` (from ``block_inputs``): equal to
        ``forward(ws)`` when ``ws`` differs from the ws ``state`` came from only in rows block ``start`` reads first."""
        with autocast_for(self.precision, ws.device):
            img = self._synthesize(ws, noise_mode, start, state)
        return img.to(dtype=ws.dtype, memory_format=torch.contiguous_format)


class Generator(nn.Module):
    """StyleGAN2 generator: ``mapping`` (z -> ws) and ``synthesis`` (ws -> image)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.z_dim, self.w_dim, self.resolution, self.num_ws = (
            config.z_dim,
            config.w_dim,
            config.resolution,
            config.num_ws,
        )
        self.mapping = MappingNetwork(
            config.z_dim, config.w_dim, config.num_ws, config.mapping_layers, config.mapping_lr_multiplier
        )
        self.synthesis = SynthesisNetwork(config)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi=truncation_psi), noise_mode=noise_mode)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, num_ws={self.num_ws}, w_dim={self.w_dim}, source={self.config.source}"


@torch.no_grad()
def w_statistics(
    G: nn.Module, samples: int, device: torch.device | None = None, seed: int = 0, batch: int = 2048
) -> tuple[torch.Tensor, float]:
    """Mean w (w_dim,) over ``samples`` mapped random z (what NVIDIA tracks during training as ``w_avg``),
    and the spread of W (sqrt of the summed variance), accumulated in float64 on the CPU (MPS has none)."""
    device = device if device is not None else G.mapping.w_avg.device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ws = []
    for start in range(0, samples, batch):
        z = torch.randn(min(batch, samples - start), G.z_dim, generator=gen).to(device)
        ws.append(G.mapping(z)[:, 0, :].cpu().double())
    w_all = torch.cat(ws)
    w_avg = w_all.mean(dim=0)
    w_std = float(((w_all - w_avg) ** 2).sum() / samples) ** 0.5
    return w_avg.float().to(device), w_std


def build_tiny_generator(
    resolution: int = 32, w_dim: int = 64, channels: int = 32, mapping_layers: int = 2, seed: int = 0
) -> Generator:
    """A small random generator for tests: deterministic for a seed, seconds for hundreds of steps on CPU.

    Random weights (the references' initialisation: unit-variance weights, affine biases 1) with random
    noise strengths and biases so every part of the network matters; ``w_avg`` is the mapping's mean.
    It is NOT a face model. Like ``load_generator`` it returns eval mode with gradients off; tuning code
    turns them on for what it trains (``G.synthesis.requires_grad_(True)``). The global RNG is untouched.
    """
    blocks = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    config = GeneratorConfig(
        z_dim=w_dim,
        w_dim=w_dim,
        resolution=resolution,
        mapping_layers=mapping_layers,
        channels={res: channels for res in blocks},
        source="tiny",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = Generator(config)
        with torch.no_grad():
            for name, p in G.synthesis.named_parameters():
                if name.endswith("noise_strength"):
                    p.copy_(torch.rand(()) * 0.1)
                elif name.endswith(".bias") and "affine" not in name:
                    p.copy_(torch.randn_like(p) * 0.1)
                elif name.endswith("torgb.weight"):
                    p.mul_(0.3)  # keeps the random images roughly inside [-1, 1], like a trained generator's
        G.mapping.w_avg.copy_(w_statistics(G, 2048, seed=seed)[0])
    return G.eval().requires_grad_(False)
