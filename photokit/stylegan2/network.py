"""StyleGAN2 generator (Karras et al., CVPR 2020, config F) in plain PyTorch, written for photokit.

It reproduces the two public PyTorch implementations numerically (NVlabs/stylegan2-ada-pytorch and
rosinality/stylegan2-pytorch) when loaded with their weights (see ``photokit.stylegan2.loader``), with
no custom CUDA kernels, so it runs on CPU, CUDA and MPS alike.

Parameters are stored the way both references store them ("equalised learning rate"): raw weights,
scaled at run time by ``lr_multiplier / sqrt(fan_in)``. Keeping that parameterisation matters for
tuning (MyStyle tunes every synthesis parameter with Adam at lr 3e-4): Adam's step size is relative
to these raw values.

Module names follow the NVIDIA layout (``mapping.fc0``, ``synthesis.b8.conv0`` ...), which makes the
NVIDIA state dict load almost verbatim and keeps photokit's own files readable. The module is over 400 lines
because it is one network: its layers only make sense next to each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NOISE_MODES = ("const", "none", "random")
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEMOD_EPS = 1e-8
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)  # the binomial filter of both references, for 2x upsampling


def fir_filter(taps: tuple[float, ...] = FIR_TAPS) -> torch.Tensor:
    """Separable 2-D FIR filter, normalised to sum 1 (NVIDIA ``setup_filter``, rosinality ``make_kernel``)."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


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


# ---------------------------------------------------------------------------------------------------
# Pure functions


def bias_lrelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x + bias, leaky ReLU (0.2), times sqrt(2) (NVIDIA ``bias_act`` with act='lrelu')."""
    return F.leaky_relu(x + bias, LRELU_SLOPE) * LRELU_GAIN


def upfirdn_pad_filter(
    x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int, int, int], gain: float, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Pad (x0, x1, y0, y1), convolve every channel with the 2-D filter ``f`` times ``gain``, add ``bias``."""
    channels = x.shape[1]
    # A contiguous depthwise kernel: PyTorch's CPU path for an expanded (strided) one is several times slower.
    kernel = (f.flip([0, 1]) * gain).to(x.dtype)[None, None].repeat(channels, 1, 1, 1)
    if pad[0] == pad[1] == pad[2] == pad[3]:  # let the convolution pad: saves a copy of x
        return F.conv2d(x, kernel, bias=bias, padding=pad[0], groups=channels)
    return F.conv2d(F.pad(x, list(pad)), kernel, bias=bias, groups=channels)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x upsampling: zero insertion, pad (2, 1), FIR filter with gain 4 (both references' skip path)."""
    b, c, h, w = x.shape
    x = F.pad(x.reshape(b, c, h, 1, w, 1), [0, 1, 0, 0, 0, 1]).reshape(b, c, 2 * h, 2 * w)
    return upfirdn_pad_filter(x, f, (2, 1, 2, 1), gain=4.0)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: bool = False,
    resample_filter: torch.Tensor | None = None,
    weight_gain: float = 1.0,
    fused: bool = True,
    output_gain: float = 1.0,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """StyleGAN2's modulated convolution (weight demodulation, paper section 2.2), times ``output_gain``,
    plus ``bias``.

    ``x`` (B, Cin, H, W), ``weight`` (Cout, Cin, k, k), ``styles`` (B, Cin). ``up`` doubles the
    resolution with a stride-2 transposed convolution followed by the [1,3,3,1] FIR filter (padding 1,
    gain 4), which is what both references do. ``fused`` uses one grouped convolution with per-sample
    weights; otherwise the styles scale the activations around a shared-weight convolution (same maths,
    sometimes faster for large batches). Gain and bias ride along in the convolution's weights and bias
    argument, so they cost no extra pass over the activations.
    """
    batch, in_channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(batch, 1, in_channels, 1, 1)
    if weight_gain != 1.0:
        w = w * weight_gain
    coefs = None  # per-sample, per-output-channel scale: demodulation and output gain
    if demodulate:
        coefs = (w.square().sum(dim=[2, 3, 4]) + DEMOD_EPS).rsqrt()  # (B, Cout)
    if output_gain != 1.0:
        coefs = coefs * output_gain if coefs is not None else x.new_full((batch, out_channels), output_gain)

    if fused:
        if coefs is not None:
            w = w * coefs.reshape(batch, out_channels, 1, 1, 1)
        x = x.reshape(1, batch * in_channels, height, width)
        if up:
            w = w.transpose(1, 2).reshape(batch * in_channels, out_channels, kh, kw)
            x = F.conv_transpose2d(x, w, stride=2, groups=batch)
            x = x.reshape(batch, out_channels, *x.shape[2:])
            return upfirdn_pad_filter(x, resample_filter, (1, 1, 1, 1), gain=4.0, bias=bias)
        x = F.conv2d(
            x,
            w.reshape(batch * out_channels, in_channels, kh, kw),
            bias=None if bias is None else bias.repeat(batch),
            padding=kh // 2,
            groups=batch,
        )
        return x.reshape(batch, out_channels, *x.shape[2:])

    x = x * styles.reshape(batch, in_channels, 1, 1)
    w = weight * weight_gain if weight_gain != 1.0 else weight
    if up:
        x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        x = upfirdn_pad_filter(x, resample_filter, (1, 1, 1, 1), gain=4.0)
    else:
        x = F.conv2d(x, w, padding=kh // 2)
    if coefs is not None and bias is not None:
        return torch.addcmul(bias.reshape(1, -1, 1, 1), x, coefs.reshape(batch, out_channels, 1, 1))
    if coefs is not None:
        return x * coefs.reshape(batch, out_channels, 1, 1)
    return x if bias is None else x + bias.reshape(1, -1, 1, 1)


def normalize_2nd_moment(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each latent to unit mean square (both references' ``PixelNorm`` on z)."""
    return z * (z.square().mean(dim=1, keepdim=True) + eps).rsqrt()


# ---------------------------------------------------------------------------------------------------
# Layers


class EqualizedLinear(nn.Module):
    """Fully connected layer with run-time weight scaling ``lr_multiplier / sqrt(in_features)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) * self.bias_gain
        if self.activation:
            return bias_lrelu(x.matmul(w.t()), b)
        return torch.addmm(b.unsqueeze(0), x, w.t())


class MappingNetwork(nn.Module):
    """z -> w: 2nd-moment normalisation and ``num_layers`` leaky-ReLU layers, broadcast to ``num_ws``."""

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8, lr_multiplier: float = 0.01) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        for i in range(num_layers):
            in_features = z_dim if i == 0 else w_dim
            self.add_module(f"fc{i}", EqualizedLinear(in_features, w_dim, lr_multiplier, activation=True))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
    ) -> torch.Tensor:
        """ws (B, num_ws, w_dim); truncation moves w towards ``w_avg`` (the first ``truncation_cutoff`` ws only)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (batch, {self.z_dim}), got {tuple(z.shape)}")
        x = normalize_2nd_moment(z)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            w_avg = self.w_avg.to(x.dtype)
            if truncation_cutoff is None:
                x = w_avg.lerp(x, truncation_psi)
            else:
                x = torch.cat([w_avg.lerp(x[:, :truncation_cutoff], truncation_psi), x[:, truncation_cutoff:]], dim=1)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling 2x), per-pixel noise with learnt strength, bias, lReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: bool = False,
        conv_clamp: float | None = None,
        fan_in_before_demod: bool = False,
    ) -> None:
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.weight_gain = 1.0 / math.sqrt(in_channels * 9) if fan_in_before_demod else 1.0

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str, resample_filter: torch.Tensor, fused: bool = True
    ) -> torch.Tensor:
        # Reference order: conv, + noise, + bias, leaky ReLU, x sqrt(2). The sqrt(2) is folded into the
        # convolution, bias and noise (leaky ReLU is positively homogeneous), so the activations are
        # touched twice instead of four times; the result differs only by float rounding.
        gain = LRELU_GAIN
        styles = self.affine(w)
        x = modulated_conv2d(
            x,
            self.weight.to(x.dtype),
            styles,
            demodulate=True,
            up=self.up,
            resample_filter=resample_filter,
            weight_gain=self.weight_gain,
            fused=fused,
            output_gain=gain,
            bias=self.bias.to(x.dtype) * gain,
        )
        strength = self.noise_strength.to(x.dtype) * gain
        if noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * strength
        elif noise_mode == "random":
            x = (
                x
                + torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
                * strength
            )
        x = F.leaky_relu(x, LRELU_SLOPE)
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to RGB without demodulation, plus bias."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(
            x, self.weight.to(x.dtype), styles, demodulate=False, fused=fused, bias=self.bias.to(x.dtype)
        )
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class SynthesisBlock(nn.Module):
    """One resolution: (constant input | upsampling conv0), conv1, toRGB added to the upsampled skip image."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        conv_clamp: float | None,
        fan_in_before_demod: bool,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim,
                resolution,
                up=True,
                conv_clamp=conv_clamp,
                fan_in_before_demod=fan_in_before_demod,
            )
        self.conv1 = SynthesisLayer(
            out_channels,
            out_channels,
            w_dim,
            resolution,
            conv_clamp=conv_clamp,
            fan_in_before_demod=fan_in_before_demod,
        )
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str,
        resample_filter: torch.Tensor,
        fused: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x is None:
            x = self.const.to(ws.dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, ws[:, 0], noise_mode, resample_filter, fused)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, resample_filter, fused)
            x = self.conv1(x, ws[:, 1], noise_mode, resample_filter, fused)
        y = self.torgb(x, ws[:, self.num_conv], fused)
        img = y if img is None else upsample2d(img, resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> image (B, 3, H, W), roughly in [-1, 1]. The part MyStyle tunes."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim, self.resolution, self.num_ws = config.w_dim, config.resolution, config.num_ws
        self.block_resolutions = config.block_resolutions
        self.fused_modconv = True
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
        f = self.resample_filter
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # Consecutive blocks share one w: block i's toRGB style is block i+1's first conv style.
            x, img = block(x, img, ws[:, w_idx : w_idx + block.num_conv + 1], noise_mode, f, self.fused_modconv)
            w_idx += block.num_conv
        return img


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
