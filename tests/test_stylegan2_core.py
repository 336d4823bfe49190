"""Generator behaviour that other areas rely on: shapes, batches, autograd, truncation, tiny builder."""

from __future__ import annotations

import pytest
import torch

from photokit.stylegan2.network import Generator, GeneratorConfig, build_tiny_generator, num_ws_for
from photokit.stylegan2.ops import fir_filter, modulated_conv2d, upsample2d


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_generator()


def test_tiny_generator_api(tiny):
    G = tiny
    assert (G.resolution, G.num_ws, G.w_dim, G.z_dim) == (32, 8, 64, 64)
    assert G.w_avg.shape == (64,) and G.w_avg.abs().sum() > 0
    ws = G.mapping(torch.randn(3, 64))
    assert ws.shape == (3, 8, 64)
    img = G.synthesis(ws, noise_mode="const")
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all()
    assert 0.1 < img.std().item() < 2.0  # roughly in [-1, 1]


def test_tiny_generator_is_deterministic_per_seed():
    a, b, c = build_tiny_generator(seed=1), build_tiny_generator(seed=1), build_tiny_generator(seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_tiny_generator_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_generator(seed=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("fused", [True, False])
def test_batch_equals_single_samples(tiny, fused):
    G = tiny
    G.synthesis.fused_modconv = fused
    ws = G.mapping(torch.randn(4, 64, generator=torch.Generator().manual_seed(0)))
    batch = G.synthesis(ws)
    singles = torch.cat([G.synthesis(ws[i : i + 1]) for i in range(4)])
    G.synthesis.fused_modconv = True
    assert (batch - singles).abs().max().item() < 1e-5
    assert (batch[0] - batch[1]).abs().max().item() > 1e-3  # the samples differ: styles are per sample


def test_fused_and_unfused_modconv_agree():
    gen = torch.Generator().manual_seed(0)
    x, weight, styles = (
        torch.randn(3, 8, 6, 6, generator=gen),
        torch.randn(5, 8, 3, 3, generator=gen),
        torch.randn(3, 8, generator=gen),
    )
    f = fir_filter()
    for up in (False, True):
        a = modulated_conv2d(x, weight, styles, up=up, resample_filter=f, fused=True)
        b = modulated_conv2d(x, weight, styles, up=up, resample_filter=f, fused=False)
        assert a.shape == (3, 5, 12 if up else 6, 12 if up else 6)
        assert (a - b).abs().max().item() < 1e-4


def test_demodulation_normalises_output_scale():
    """Demodulation makes the output independent of the style's overall scale (paper eq. 3)."""
    gen = torch.Generator().manual_seed(0)
    x, weight, styles = (
        torch.randn(2, 8, 6, 6, generator=gen),
        torch.randn(5, 8, 3, 3, generator=gen),
        torch.randn(2, 8, generator=gen),
    )
    a = modulated_conv2d(x, weight, styles)
    b = modulated_conv2d(x, weight, styles * 7.0)
    assert (a - b).abs().max().item() < 1e-4
    c = modulated_conv2d(x, weight, styles * 7.0, demodulate=False)
    assert (a - c).abs().max().item() > 1e-2


def test_upsample_preserves_constant_images():
    x = torch.full((1, 2, 5, 5), 0.7)
    y = upsample2d(x, fir_filter())
    assert y.shape == (1, 2, 10, 10)
    assert torch.allclose(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 0.7), atol=1e-6)


def test_truncation(tiny):
    G = tiny
    z = torch.randn(2, 64)
    ws1, ws0 = G.mapping(z, truncation_psi=1.0), G.mapping(z, truncation_psi=0.0)
    assert torch.allclose(ws0, G.w_avg.expand_as(ws0))
    ws_half = G.mapping(z, truncation_psi=0.5)
    assert torch.allclose(ws_half, (ws1 + ws0) / 2, atol=1e-5)
    cut = G.mapping(z, truncation_psi=0.0, truncation_cutoff=3)
    assert torch.allclose(cut[:, :3], ws0[:, :3]) and torch.allclose(cut[:, 3:], ws1[:, 3:])


def test_noise_modes(tiny):
    G = tiny
    ws = G.mapping(torch.randn(1, 64))
    const1, const2 = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const")
    assert torch.equal(const1, const2)
    assert not torch.allclose(const1, G.synthesis(ws, noise_mode="none"))
    assert not torch.allclose(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
    with pytest.raises(ValueError):
        G.synthesis(ws, noise_mode="bogus")
    with pytest.raises(ValueError):
        G.synthesis(ws[:, :3])


def test_autograd_through_ws_and_synthesis_weights():
    G = build_tiny_generator()
    G.synthesis.requires_grad_(True)
    ws = G.mapping(torch.randn(2, 64)).detach().requires_grad_(True)
    G.synthesis(ws, noise_mode="const").square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    for name, p in G.synthesis.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert G.synthesis.b32.conv0.weight.grad.abs().sum() > 0
    assert G.synthesis.b4.const.grad.abs().sum() > 0
    # Noise buffers are constants, not parameters (MyStyle keeps noise fixed while tuning).
    assert "b4.conv1.noise_const" not in dict(G.synthesis.named_parameters())


def test_tuning_step_changes_output():
    G = build_tiny_generator()
    G.synthesis.requires_grad_(True)
    ws = G.mapping(torch.randn(1, 64))
    target = torch.zeros(1, 3, 32, 32)
    opt = torch.optim.Adam(G.synthesis.parameters(), lr=3e-3)
    losses = []
    for _ in range(5):
        loss = (G.synthesis(ws) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_conv_clamp_limits_activations():
    config = GeneratorConfig(z_dim=16, w_dim=16, resolution=8, mapping_layers=1, channels={4: 8, 8: 8}, conv_clamp=0.05)
    torch.manual_seed(0)
    G = Generator(config).eval()
    img = G(torch.randn(2, 16))
    # Each of the two toRGB outputs is clamped to +-0.05; the upsampled skip keeps its range (FIR gain 1 overall).
    assert img.abs().max().item() <= 0.1 + 1e-6
    G.synthesis.b8.torgb.conv_clamp = None
    G.synthesis.b4.torgb.conv_clamp = None
    assert G(torch.randn(2, 16)).abs().max().item() > 0.1


@pytest.mark.parametrize("resolution,expected", [(1024, 18), (256, 14), (64, 10), (4, 2)])
def test_num_ws(resolution, expected):
    assert num_ws_for(resolution) == expected


def test_config_json_round_trip():
    config = build_tiny_generator(resolution=16, channels=8).config
    assert GeneratorConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError):
        GeneratorConfig(resolution=48, channels={})
    with pytest.raises(ValueError):
        GeneratorConfig(resolution=16, channels={4: 8, 8: 8})


@pytest.mark.parametrize("fused", [True, False])
def test_runs_under_autocast(fused):
    """GPU users get speed from torch.autocast (no fp16 layers of our own); CPU bf16 exercises the same code."""
    G = build_tiny_generator()
    G.synthesis.fused_modconv = fused
    G.synthesis.requires_grad_(True)
    ws = G.mapping(torch.randn(2, 64, generator=torch.Generator().manual_seed(1))).detach().requires_grad_(True)
    reference = G.synthesis(ws).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        img = G.synthesis(ws)
    img.float().square().mean().backward()
    assert (img.float() - reference).abs().max().item() < 0.1
    assert torch.isfinite(ws.grad).all() and ws.grad.abs().sum() > 0
