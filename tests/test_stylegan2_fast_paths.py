"""The generator's fast paths (issue 14) compute what the plain formulations compute, values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from photokit.stylegan2.network import Generator
from photokit.stylegan2.ops import (
    LRELU_SLOPE,
    demodulation_coefficients,
    fir_filter,
    modulated_conv2d,
    noise_lrelu_clamp,
    per_sample_weights,
    upfirdn_pad_filter,
    upsample2d,
)
from tests.stylegan2_support import clamped_generator


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_demodulation_coefficients_match_the_per_sample_weights_formula():
    weight = torch.randn(5, 4, 3, 3, generator=_gen(1), dtype=torch.float64, requires_grad=True)
    styles = torch.randn(2, 4, generator=_gen(2), dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(2, 5, generator=_gen(3), dtype=torch.float64)
    direct = ((weight[None] * styles[:, None, :, None, None]).square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    fast = demodulation_coefficients(weight, styles)
    assert torch.allclose(fast, direct, rtol=1e-10)
    fast_grads = torch.autograd.grad((fast * upstream).sum(), (weight, styles))
    direct_grads = torch.autograd.grad((direct * upstream).sum(), (weight, styles))
    for a, b in zip(fast_grads, direct_grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("transposed", [False, True])
def test_per_sample_weights_same_values_in_both_layouts(transposed):
    weight, scale = torch.randn(5, 4, 3, 3, generator=_gen(1)), torch.randn(2, 5, 4, generator=_gen(2))
    plain = weight[None] * scale[..., None, None]
    if transposed:
        plain = plain.transpose(1, 2)
    expected = plain.reshape(-1, *plain.shape[2:])
    for channels_last in (False, True):
        w = per_sample_weights(weight, scale, transposed, channels_last)
        assert torch.equal(w, expected)
    assert per_sample_weights(weight, scale, transposed, True).is_contiguous(memory_format=torch.channels_last)


def test_upsample2d_is_zero_insertion_pad_and_filter():
    x = torch.randn(2, 3, 5, 7, generator=_gen(3))
    zeros = torch.zeros(2, 3, 10, 14)
    zeros[:, :, ::2, ::2] = x
    plain = upfirdn_pad_filter(zeros, fir_filter(), (2, 1, 2, 1), gain=4.0)
    assert torch.allclose(upsample2d(x, fir_filter()), plain, atol=1e-6)


def test_depthwise_filter_gradients_match_autograd_of_the_plain_convolution():
    x = torch.randn(2, 3, 9, 9, generator=_gen(4), dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=_gen(5), dtype=torch.float64, requires_grad=True)
    f = fir_filter().double()
    out = upfirdn_pad_filter(x, f, (1, 1, 1, 1), gain=4.0, bias=bias)
    kernel = (f.flip([0, 1]) * 4.0)[None, None].repeat(3, 1, 1, 1)
    plain = F.conv2d(F.pad(x, [1, 1, 1, 1]), kernel, bias=bias, groups=3)
    upstream = torch.randn(plain.shape, generator=_gen(6), dtype=torch.float64)
    fast_grads = torch.autograd.grad((out * upstream).sum(), (x, bias))
    plain_grads = torch.autograd.grad((plain * upstream).sum(), (x, bias))
    assert torch.allclose(out, plain)
    for fast, slow in zip(fast_grads, plain_grads, strict=True):
        assert torch.allclose(fast, slow)
    assert torch.autograd.gradcheck(lambda t: upfirdn_pad_filter(t, f, (1, 1, 1, 1), 4.0, bias), (x,))


def _away_from_kinks(shape: tuple[int, ...], clamp: float) -> torch.Tensor:
    """Values at least 0.05 from 0 and from the clamp bounds (and their leaky-ReLU pre-images)."""
    x = torch.randn(shape, generator=_gen(7), dtype=torch.float64) * 3
    x = torch.where(x.abs() < 0.05, x.sign() * 0.05 + x, x)
    for bound in (clamp, -clamp / LRELU_SLOPE):
        x = torch.where((x - bound).abs() < 0.05, x + 0.1, x)
    return x


def test_leaky_relu_clamp_values_and_gradients_match_the_plain_ops():
    clamp = 2.0
    x0 = _away_from_kinks((2, 4, 6, 6), clamp)
    noise = torch.randn(6, 6, generator=_gen(8), dtype=torch.float64)
    strength = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(x0.shape, generator=_gen(9), dtype=torch.float64)

    x = x0.clone().requires_grad_(True)
    fast = noise_lrelu_clamp(x * 1.0, noise, strength, clamp)
    fast_grads = torch.autograd.grad((fast * upstream).sum(), (x, strength))
    y = x.detach().clone().requires_grad_(True)
    plain = F.leaky_relu(y + noise * strength, LRELU_SLOPE).clamp(-clamp, clamp)
    plain_grads = torch.autograd.grad((plain * upstream).sum(), (y, strength))

    assert (plain.abs() == clamp).any() and (plain < 0).any()  # both kinks are exercised
    assert torch.allclose(fast, plain)
    for a, b in zip(fast_grads, plain_grads, strict=True):
        assert torch.allclose(a, b)
    assert torch.autograd.gradcheck(lambda t: noise_lrelu_clamp(t * 1.0, noise, strength, clamp), (x,))


@pytest.mark.parametrize(("up", "kernel"), [(False, 1), (False, 3), (True, 3)])  # toRGB, conv, upsampling conv
def test_modulated_conv_paths_agree_in_values_and_gradients(up, kernel):
    x = torch.randn(3, 8, 6, 6, generator=_gen(10), requires_grad=True)
    weight = torch.randn(5, 8, kernel, kernel, generator=_gen(11), requires_grad=True)
    styles = torch.randn(3, 8, generator=_gen(12), requires_grad=True)
    bias = torch.randn(5, generator=_gen(13), requires_grad=True)
    upstream = torch.randn(3, 5, 12 if up else 6, 12 if up else 6, generator=_gen(14))
    results = []
    for fused in (True, False):
        out = modulated_conv2d(
            x, weight, styles, demodulate=kernel == 3, up=up, resample_filter=fir_filter(), fused=fused, bias=bias
        )
        results.append((out, torch.autograd.grad((out * upstream).sum(), (x, weight, styles, bias))))
    (a, grads_a), (b, grads_b) = results
    assert (a - b).abs().max().item() < 1e-4
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert (ga - gb).abs().max().item() <= 1e-4 * max(1.0, gb.abs().max().item())


def _clamped_generator() -> Generator:
    """A small random generator whose clamp, noise and biases all act, so every fast path is exercised."""
    return clamped_generator({4: 16, 8: 16, 16: 8}, resolution=16)


def _synthesis_grads(G: Generator, ws: torch.Tensor, fused: bool | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    G.synthesis.fused_modconv = fused
    ws = ws.clone().requires_grad_(True)
    img = G.synthesis(ws)
    params = [p for _, p in sorted(G.synthesis.named_parameters())]
    grads = torch.autograd.grad(img.square().mean(), [ws, *params])
    return img.detach(), list(grads)


def test_synthesis_fast_paths_agree_with_each_other_in_values_and_gradients():
    G = _clamped_generator()
    ws = G.mapping(torch.randn(2, 32, generator=_gen(15))).detach()
    reference_img, reference_grads = _synthesis_grads(G, ws, fused=False)
    assert reference_img.abs().max() > 1e-3
    for fused in (True, None):
        img, grads = _synthesis_grads(G, ws, fused)
        assert (img - reference_img).abs().max().item() < 1e-5
        for g, ref in zip(grads, reference_grads, strict=True):
            assert (g - ref).abs().max().item() <= 1e-4 * max(1.0, ref.abs().max().item())
    # Without autograd the activations are channels-last; the image comes back in the usual layout.
    with torch.no_grad():
        for fused in (True, False, None):
            G.synthesis.fused_modconv = fused
            G.synthesis.channels_last = True
            fast = G.synthesis(ws)
            G.synthesis.channels_last = False
            plain = G.synthesis(ws)
            assert fast.is_contiguous() and (fast - plain).abs().max().item() < 1e-5
            assert (fast - reference_img).abs().max().item() < 1e-5
