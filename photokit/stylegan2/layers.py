"""The StyleGAN2 generator's layers (Karras et al., CVPR 2020, config F): mapping network and synthesis
blocks, built from the pure functions in ``photokit.stylegan2.ops``.

Parameters are stored the way both references store them ("equalised learning rate"): raw weights,
scaled at run time by ``lr_multiplier / sqrt(fan_in)``. Keeping that parameterisation matters for
tuning (MyStyle tunes every synthesis parameter with Adam at lr 3e-4): Adam's step size is relative
to these raw values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from photokit.stylegan2.ops import (
    LRELU_GAIN,
    bias_lrelu,
    modulated_conv2d,
    noise_lrelu_clamp,
    normalize_2nd_moment,
    prefer_per_sample_weights,
    upsample2d,
)

NOISE_MODES = ("const", "none", "random")


@dataclass(frozen=True)
class SynthesisOptions:
    """How one synthesis call runs: noise, modulated-conv path (None: per layer, whichever is cheaper) and
    activation memory layout (channels-last suits oneDNN on the CPU and tensor cores on CUDA)."""

    noise_mode: str = "const"
    fused: bool | None = None
    channels_last: bool = True


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
        w = self.weight.to(x.dtype)
        b = self.bias.to(x.dtype)
        if self.activation:
            return bias_lrelu(x.matmul(w.t()) * self.weight_gain, b * self.bias_gain)
        # The gains ride along in addmm instead of scaling a copy of the weights.
        return torch.addmm(b.unsqueeze(0), x, w.t(), beta=self.bias_gain, alpha=self.weight_gain)


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
        self, x: torch.Tensor, w: torch.Tensor, resample_filter: torch.Tensor, options: SynthesisOptions
    ) -> torch.Tensor:
        # Reference order: conv, + noise, + bias, leaky ReLU, x sqrt(2). The sqrt(2) is folded into the
        # convolution, bias and noise (leaky ReLU is positively homogeneous), so the activations are
        # touched twice instead of four times; the result differs only by float rounding.
        gain = LRELU_GAIN
        # Under autocast the fp32 weight goes in as it is: the per-sample weights are scaled straight into the
        # activations' dtype, and the demodulation norms stay fp32.
        weight = self.weight if torch.is_autocast_enabled(x.device.type) else self.weight.to(x.dtype)
        fused = options.fused
        if fused is None:
            fused = x.shape[0] == 1 and prefer_per_sample_weights(x, weight)
        x = modulated_conv2d(
            x,
            weight,
            self.affine(w),
            demodulate=True,
            up=self.up,
            resample_filter=resample_filter,
            weight_gain=self.weight_gain,
            fused=fused,
            output_gain=gain,
            bias=self.bias.to(x.dtype) * gain,
        )
        noise = None
        if options.noise_mode == "const":
            noise = self.noise_const.to(x.dtype)
        elif options.noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
        return noise_lrelu_clamp(x, noise, self.noise_strength.to(x.dtype) * gain, self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to RGB without demodulation, plus bias."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, options: SynthesisOptions) -> torch.Tensor:
        weight = self.weight.to(x.dtype)
        fused = options.fused if options.fused is not None else x.shape[0] == 1
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, weight, styles, demodulate=False, fused=fused, bias=self.bias.to(x.dtype))
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
        resample_filter: torch.Tensor,
        options: SynthesisOptions,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x is None:
            x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            fmt = torch.channels_last if options.channels_last else torch.contiguous_format
            x = self.conv1(x.contiguous(memory_format=fmt), ws[:, 0], resample_filter, options)
        else:
            x = self.conv0(x, ws[:, 0], resample_filter, options)
            x = self.conv1(x, ws[:, 1], resample_filter, options)
        y = self.torgb(x, ws[:, self.num_conv], options)
        img = y if img is None else upsample2d(img, resample_filter).add_(y)
        return x, img
