"""StyleGAN2's tensor operations as small pure functions (Karras et al., CVPR 2020; NVIDIA's
stylegan2-ada-pytorch and rosinality's stylegan2-pytorch compute the same maths).

Written for speed on the CPU as well as on GPUs, without custom kernels:

* demodulation coefficients come from a (Cout, Cin) matrix of squared weight norms and one small matmul,
  never from a per-sample copy of the weights;
* per-sample weights are built in one elementwise pass, directly in the channels-last order that oneDNN
  convolutions want, so neither the weights nor the activations are reordered on every call;
* the 2x upsampling of the skip image is one strided transposed depthwise convolution, not zero
  insertion, padding and a filter;
* activations that nothing differentiates are updated in place.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEMOD_EPS = 1e-8
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)  # the binomial filter of both references, for 2x upsampling


def fir_filter(taps: tuple[float, ...] = FIR_TAPS) -> torch.Tensor:
    """Separable 2-D FIR filter, normalised to sum 1 (NVIDIA ``setup_filter``, rosinality ``make_kernel``)."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def bias_lrelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x + bias, leaky ReLU (0.2), times sqrt(2) (NVIDIA ``bias_act`` with act='lrelu')."""
    return F.leaky_relu(x + bias, LRELU_SLOPE) * LRELU_GAIN


def normalize_2nd_moment(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each latent to unit mean square (both references' ``PixelNorm`` on z)."""
    return z * (z.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def _depthwise(f: torch.Tensor, channels: int, gain: float, dtype: torch.dtype) -> torch.Tensor:
    # A contiguous depthwise kernel: PyTorch's CPU path for an expanded (strided) one is several times slower.
    return (f * gain).to(dtype)[None, None].repeat(channels, 1, 1, 1)


class _DepthwiseFilter(torch.autograd.Function):
    """Depthwise correlation with a fixed kernel and equal padding on every side, whose input gradient is
    another forward correlation (flipped kernel, padding k - 1 - p): PyTorch's depthwise convolution backward
    on the CPU is several times slower than its forward. The kernel gets no gradient (it is a fixed filter)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, kernel: torch.Tensor, padding: int, bias: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.save_for_backward(kernel)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return F.conv2d(x, kernel, bias=bias, padding=padding, groups=x.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, torch.Tensor | None]:
        (kernel,) = ctx.saved_tensors
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0]:
            padding = kernel.shape[-1] - 1 - ctx.padding
            kernel = kernel.flip([2, 3]).to(grad.dtype)  # under autocast the gradient may be bf16
            grad_x = F.conv2d(grad, kernel, padding=padding, groups=grad.shape[1])
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_bias = grad.sum(dim=[0, 2, 3])
        return grad_x, None, None, grad_bias


def upfirdn_pad_filter(
    x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int, int, int], gain: float, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Pad (x0, x1, y0, y1), convolve every channel with the 2-D filter ``f`` times ``gain``, add ``bias``."""
    kernel = _depthwise(f.flip([0, 1]), x.shape[1], gain, x.dtype)
    square = kernel.shape[-1] == kernel.shape[-2]
    if pad[0] == pad[1] == pad[2] == pad[3] and square and pad[0] < kernel.shape[-1]:
        out: torch.Tensor = _DepthwiseFilter.apply(x, kernel, pad[0], bias)  # the convolution pads: no copy of x
        return out
    return F.conv2d(F.pad(x, list(pad)), kernel, bias=bias, groups=x.shape[1])


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x upsampling with the FIR filter ``f`` times 4 (both references' skip path: zero insertion, pad (2, 1),
    filter), computed as one stride-2 transposed depthwise convolution: output n = sum_i x[i] f[n + 1 - 2i]."""
    return F.conv_transpose2d(x, _depthwise(f, x.shape[1], 4.0, x.dtype), stride=2, padding=1, groups=x.shape[1])


def squared_norms(weight: torch.Tensor) -> torch.Tensor:
    """(Cout, Cin) sums of squared taps: a matrix-vector product over the k*k taps, about twice as fast on the
    CPU as ``square().sum(dim=[2, 3])``'s reduction over 9 contiguous elements. ``mv`` is not autocast: the
    norms keep the weight's precision."""
    out_channels, in_channels, kh, kw = weight.shape
    squares = weight.reshape(out_channels * in_channels, kh * kw).square()
    return torch.mv(squares, weight.new_ones(kh * kw)).reshape(out_channels, in_channels)


class _SquaredNorms(torch.autograd.Function):
    """(Cout, Cin) sums of squared taps of a (Cout, Cin, kh, kw) weight. Its backward is one pass over the
    weight (2 * grad * weight); autograd's own for ``square().sum()`` takes three."""

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(weight)
        return squared_norms(weight)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (weight,) = ctx.saved_tensors
        return weight * (grad * 2.0)[:, :, None, None]


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """(B, Cout) = 1 / sqrt(sum over in-channels and taps of (weight * style)^2 + eps), paper eq. 3.

    The sum factors as squared styles times the weight's squared norms per (out, in) pair, so it costs a
    (B, Cin) x (Cin, Cout) matmul instead of a pass over B copies of the weights."""
    norms: torch.Tensor = _SquaredNorms.apply(weight) if weight.requires_grad else squared_norms(weight)
    return (styles.square() @ norms.t() + DEMOD_EPS).rsqrt()


def per_sample_weights(
    weight: torch.Tensor,
    scale: torch.Tensor,
    transposed: bool,
    channels_last: bool,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``weight`` (Cout, Cin, k, k) times ``scale`` (B, Cout, Cin), as B stacked kernels: (B * Cout, Cin, k, k)
    for ``conv2d``, or (B * Cin, Cout, k, k) for ``conv_transpose2d`` when ``transposed``.

    ``channels_last`` builds them with the summed-over channels innermost in memory, the layout oneDNN wants
    for channels-last activations; otherwise contiguous, which keeps the weight gradients contiguous too.
    ``dtype`` (default: the product's) is the result's: an fp32 weight scaled straight into bf16 costs one
    pass, where casting it first and then scaling costs two."""
    batch, out_channels, in_channels = scale.shape
    dtype = dtype if dtype is not None else torch.promote_types(weight.dtype, scale.dtype)
    k = weight.shape[-1]
    if not channels_last:
        w = (weight.unsqueeze(0) * scale[:, :, :, None, None]).to(dtype)
        if transposed:
            return w.transpose(1, 2).reshape(batch * in_channels, out_channels, k, k)
        return w.reshape(batch * out_channels, in_channels, k, k)
    if transposed:  # (B, Cin, k, k, Cout) in memory
        a, b = weight.permute(1, 2, 3, 0).unsqueeze(0), scale.transpose(1, 2)[:, :, None, None, :]
    else:  # (B, Cout, k, k, Cin) in memory
        a, b = weight.permute(0, 2, 3, 1).unsqueeze(0), scale[:, :, None, None, :]
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        w = (a.contiguous() * b).to(dtype)  # an elementwise product keeps its first input's memory order
    else:
        w = torch.mul(a, b, out=a.new_empty(batch, *a.shape[1:], dtype=dtype))  # written in the wanted order
    return w.permute(0, 1, 4, 2, 3).reshape(batch * w.shape[1], w.shape[4], k, k)


def _pointwise_per_sample(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, channels_last: bool
) -> torch.Tensor:
    """1x1 convolution with per-sample weights ``w`` (B, Cout, Cin) as one batched matmul: PyTorch's CPU
    backward of a 1x1 convolution with few output channels (toRGB) takes a slow path."""
    batch, in_channels, height, width = x.shape
    bias = x.new_zeros(()) if bias is None else bias
    if channels_last:  # x is (B, H, W, Cin) in memory
        flat = x.permute(0, 2, 3, 1).reshape(batch, height * width, in_channels)
        out = torch.baddbmm(bias, flat, w.transpose(1, 2))
        return out.reshape(batch, height, width, -1).permute(0, 3, 1, 2)
    out = torch.baddbmm(bias[..., None], w, x.reshape(batch, in_channels, height * width))
    return out.reshape(batch, -1, height, width)


def _conv_per_sample(
    x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, up: bool, bias: torch.Tensor | None
) -> torch.Tensor:
    """Convolution with per-sample weights: a grouped convolution over the batch (a plain one for one sample)."""
    batch, in_channels, height, width = x.shape
    out_channels, k = weight.shape[0], weight.shape[-1]
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if k == 1 and not up:
        return _pointwise_per_sample(x, weight[:, :, 0, 0] * scale, bias, channels_last)
    w = per_sample_weights(weight, scale, transposed=up, channels_last=channels_last, dtype=x.dtype)
    if batch > 1:
        x = x.reshape(1, batch * in_channels, height, width)
    if up:
        x = F.conv_transpose2d(x, w, stride=2, groups=batch)
    else:
        x = F.conv2d(x, w, bias=None if bias is None else bias.repeat(batch), padding=k // 2, groups=batch)
    return x.reshape(batch, out_channels, *x.shape[2:]) if batch > 1 else x


def _conv_scaled_activations(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    coefs: torch.Tensor | None,
    up: bool,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """The same maths with one shared weight: styles scale the input channels, ``coefs`` the outputs."""
    batch, in_channels = styles.shape
    x = x * styles.reshape(batch, in_channels, 1, 1)
    if up:
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    else:
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    if coefs is None:
        return x if bias is None or up else x + bias.reshape(1, -1, 1, 1)
    coefs = coefs.reshape(batch, -1, 1, 1)
    return x * coefs if bias is None or up else torch.addcmul(bias.reshape(1, -1, 1, 1), x, coefs)


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
    gain 4), which is what both references do. ``fused`` convolves with per-sample weights; otherwise the
    styles scale the activations around a shared-weight convolution (same maths: cheaper where the
    activations are smaller than the weights, i.e. at low resolution). Gain and bias ride along in the
    weights and the convolution's bias argument, so they cost no extra pass over the activations.
    """
    if up and resample_filter is None:
        raise ValueError("an upsampling modulated convolution needs resample_filter")
    styles = styles * weight_gain if weight_gain != 1.0 else styles
    coefs = demodulation_coefficients(weight, styles) if demodulate else None
    if output_gain != 1.0:
        coefs = (
            coefs * output_gain if coefs is not None else styles.new_full((x.shape[0], weight.shape[0]), output_gain)
        )
    if fused:
        scale = styles.unsqueeze(1) if coefs is None else styles.unsqueeze(1) * coefs.unsqueeze(2)
        scale = scale.expand(-1, weight.shape[0], -1)
        x = _conv_per_sample(x, weight, scale, up, bias)
    else:
        x = _conv_scaled_activations(x, weight, styles, coefs, up, bias)
    if up:
        assert resample_filter is not None
        return upfirdn_pad_filter(x, resample_filter, (1, 1, 1, 1), gain=4.0, bias=bias)
    return x


def prefer_per_sample_weights(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether per-sample weights (``fused``) cost fewer elementwise passes than scaling the activations:
    true where one sample's weights are smaller than its input and output activations together."""
    out_channels, in_channels, kh, kw = weight.shape
    return out_channels * in_channels * kh * kw <= (in_channels + out_channels) * x.shape[2] * x.shape[3]


class _LeakyReluClamp(torch.autograd.Function):
    """Leaky ReLU then clamp to +-``clamp``, in place, saving only the result: both derivatives can be read off
    it (slope 1 where it is positive, 0.2 where not, 0 where it sits on a bound), so the backward is two passes
    over the activations instead of the five of leaky ReLU's and clamp's own backwards. (At an input exactly
    on a bound the gradient is 0, where ``clamp`` would pass it; that set has measure zero.)"""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, clamp: float) -> torch.Tensor:
        ctx.mark_dirty(x)
        y = F.leaky_relu_(x, LRELU_SLOPE).clamp_(-clamp, clamp)
        ctx.save_for_backward(y)
        ctx.clamp = clamp
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (y,) = ctx.saved_tensors
        grad = torch.ops.aten.leaky_relu_backward(grad, y, LRELU_SLOPE, True)
        return torch.ops.aten.hardtanh_backward(grad, y, -ctx.clamp, ctx.clamp), None


def noise_lrelu_clamp(
    x: torch.Tensor, noise: torch.Tensor | None, strength: torch.Tensor, clamp: float | None
) -> torch.Tensor:
    """x + noise * strength, leaky ReLU, optional clamp to +-``clamp``: the end of every synthesis layer.

    ``x`` must be a fresh result that nothing else holds (a convolution's output): it is updated in place."""
    if noise is not None:  # scaled on the small (H, W) map: addcmul_ broadcasting it was ~8x slower channels-last
        x = x.add_(noise * strength)
    if clamp is None:
        return F.leaky_relu(x, LRELU_SLOPE, inplace=True)
    if torch.is_grad_enabled() and x.requires_grad:
        out: torch.Tensor = _LeakyReluClamp.apply(x, clamp)
        return out
    return F.leaky_relu_(x, LRELU_SLOPE).clamp_(-clamp, clamp)
