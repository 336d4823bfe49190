"""bf16 synthesis (``SynthesisNetwork.precision``, issue 14): it agrees with fp32 within stated bounds, in
values and gradients, and gradients reach ws and every parameter in float32."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from photokit.stylegan2.network import Generator, build_tiny_generator
from photokit.stylegan2.ops import per_sample_weights, squared_norms
from photokit.stylegan2.precision import autocast_for, native_bf16, resolve_precision
from photokit.stylegan2.vocab import Precision
from tests.stylegan2_support import clamped_generator

# Bounds for small random generators (measured: PSNR 46-52 dB, ws-gradient cosine >= 0.9996 and relative
# error <= 0.024, parameter-gradient cosines >= 0.999, 0.989 where a clamp of 1.5 bites: bf16 rounding moves
# activations across it), with a margin; fp32 paths agree with each other to ~1e-6.
MIN_PSNR_DB = 40.0
MIN_WS_COSINE = 0.999
MAX_WS_RELATIVE_ERROR = 0.05
MIN_PARAMETER_COSINE = 0.98


def _clamped_generator(seed: int) -> Generator:
    """Noise, biases and a clamp that bites (1.5), so the bf16 path goes through every fast path."""
    return clamped_generator({4: 32, 8: 32, 16: 16, 32: 16}, resolution=32, seed=seed)


def _run(G: Generator, ws: torch.Tensor, precision: Precision) -> tuple[torch.Tensor, torch.Tensor, dict]:
    G.synthesis.precision = precision
    G.synthesis.requires_grad_(True)
    w = ws.clone().requires_grad_(True)
    image = G.synthesis(w)
    image.square().mean().backward()
    grads = {name: p.grad for name, p in G.synthesis.named_parameters()}
    G.synthesis.zero_grad(set_to_none=True)
    assert w.grad is not None
    return image.detach(), w.grad, grads


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


@pytest.mark.parametrize("build", ["tiny", "clamped"])
@pytest.mark.parametrize("fused", [None, True, False])
def test_bf16_synthesis_agrees_with_fp32_in_values_and_gradients(build, fused):
    G = build_tiny_generator(32, seed=1) if build == "tiny" else _clamped_generator(seed=1)
    G.synthesis.fused_modconv = fused
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3))).detach()
    img32, ws32, grads32 = _run(G, ws, Precision.FP32)
    img16, ws16, grads16 = _run(G, ws, Precision.BF16)
    assert img16.dtype == torch.float32 and img16.is_contiguous()
    difference = (img16 - img32).abs().max().item()
    assert difference > 1e-4  # bf16 really ran: fp32 paths agree to ~1e-6
    psnr = 10 * torch.log10(4.0 / (img16 - img32).square().mean()).item()
    assert psnr >= MIN_PSNR_DB
    assert _cosine(ws16, ws32) >= MIN_WS_COSINE
    assert ((ws16 - ws32).norm() / ws32.norm()).item() <= MAX_WS_RELATIVE_ERROR
    for name, g32 in grads32.items():
        g16 = grads16[name]
        assert g16 is not None and g16.dtype == torch.float32 and torch.isfinite(g16).all(), name
        if g32 is not None and g32.abs().max() > 0:
            assert _cosine(g16, g32) >= MIN_PARAMETER_COSINE, name


def test_bf16_without_autograd_matches_bf16_with_it():
    """The no-gradient path (channels-last, per-sample weights written straight in bf16) computes the same."""
    G = build_tiny_generator(32, seed=2)
    G.synthesis.precision = Precision.BF16
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(4))).detach()
    with torch.no_grad():
        fast = G.synthesis(ws)
        G.synthesis.precision = Precision.FP32
        exact = G.synthesis(ws)
    G.synthesis.precision = Precision.BF16
    slow = G.synthesis(ws.clone().requires_grad_(True)).detach()
    assert 10 * torch.log10(4.0 / (fast - exact).square().mean()).item() >= MIN_PSNR_DB
    assert 10 * torch.log10(4.0 / (fast - slow).square().mean()).item() >= MIN_PSNR_DB


def test_fp32_is_untouched_by_the_precision_attribute_default():
    G = build_tiny_generator(16, seed=0)
    assert G.synthesis.precision is Precision.FP32
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(5))).detach()
    with torch.no_grad():
        default = G.synthesis(ws)
        G.synthesis.precision = Precision.FP32
        assert torch.equal(G.synthesis(ws), default)
        G.synthesis.precision = Precision.BF16
        assert not torch.equal(G.synthesis(ws), default)


def test_resolve_precision_is_a_closed_vocabulary():
    cpu = torch.device("cpu")
    expected_auto = Precision.BF16 if native_bf16(cpu) else Precision.FP32
    assert resolve_precision(Precision.AUTO, cpu) is expected_auto
    assert resolve_precision("fp32", cpu) is Precision.FP32
    assert resolve_precision("bf16", cpu) is Precision.BF16
    assert resolve_precision(Precision.AUTO, torch.device("mps")) is Precision.FP32
    with pytest.raises(ValueError):
        resolve_precision(Precision.BF16, torch.device("mps"))
    with pytest.raises(ValueError):
        resolve_precision("fp16", cpu)
    with autocast_for(Precision.BF16, cpu) as resolved:
        assert resolved is Precision.BF16 and torch.is_autocast_enabled("cpu")
    with autocast_for(Precision.FP32, cpu) as resolved:
        assert resolved is Precision.FP32 and not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_per_sample_weights_written_in_another_dtype_round_once(transposed, channels_last):
    weight, scale = torch.randn(5, 4, 3, 3), torch.randn(2, 5, 4)
    expected = per_sample_weights(weight, scale, transposed, channels_last).to(torch.bfloat16)
    w = per_sample_weights(weight, scale, transposed, channels_last, dtype=torch.bfloat16)
    assert w.dtype == torch.bfloat16 and torch.equal(w, expected)


def test_squared_norms_are_the_sum_of_squared_taps():
    weight = torch.randn(6, 5, 3, 3, dtype=torch.float64)
    assert torch.allclose(squared_norms(weight), weight.square().sum(dim=[2, 3]), rtol=1e-12)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # not lowered by autocast: the norms keep fp32
        assert squared_norms(weight.float()).dtype == torch.float32
