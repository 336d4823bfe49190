"""photokit's Gauss-Newton projection schedule (restore/gauss_newton.py) and the residual losses it needs."""

from __future__ import annotations

import itertools

import pytest
import torch

from photokit.errors import PhotokitError
from photokit.prior import alpha as A
from photokit.prior.alpha import AlphaConfig
from photokit.prior.vocab import ProjectionOptimizer
from photokit.restore.degrade import super_resolution
from photokit.restore.gauss_newton import (
    GaussNewtonConfig,
    Phase,
    forward_difference_jacobian,
    levenberg_marquardt_step,
)
from photokit.restore.options import GAUSS_NEWTON_DEFAULT_STEPS, EnhanceOptions
from photokit.restore.project import AlphaProjection, SmallImageLoss, WPlusProjection
from photokit.stylegan2.losses import ReconstructionLoss, build_lpips
from photokit.stylegan2.network import build_tiny_generator
from photokit.stylegan2.vocab import Precision


def test_a_barely_damped_step_solves_a_linear_least_squares_problem():
    gen = torch.Generator().manual_seed(0)
    J, b = torch.randn(40, 6, generator=gen), torch.randn(40, generator=gen)
    x0 = torch.randn(6, generator=gen)
    residual = J @ x0 - b
    gradient = 2 * J.T @ residual  # of |J x - b|^2 at x0
    step = levenberg_marquardt_step(J, gradient, torch.zeros(6, 6), damping=1e-12)
    best = torch.linalg.lstsq(J.double(), b.double()[:, None]).solution[:, 0]
    torch.testing.assert_close(x0.double() + step, best, rtol=0, atol=1e-6)


def test_damping_shortens_the_step_and_the_penalty_hessian_counts():
    gen = torch.Generator().manual_seed(1)
    J, gradient = torch.randn(30, 5, generator=gen), torch.randn(5, generator=gen)
    lengths = [float(levenberg_marquardt_step(J, gradient, torch.zeros(5, 5), d).norm()) for d in (1e-6, 1.0, 100.0)]
    assert lengths[0] > lengths[1] > lengths[2]
    stiff = levenberg_marquardt_step(J, gradient, 1e3 * torch.eye(5), 1e-6)
    assert float(stiff.norm()) < lengths[0]


def test_forward_differences_match_the_analytic_jacobian():
    gen = torch.Generator().manual_seed(2)
    M = torch.randn(7, 5, generator=gen, dtype=torch.float64)

    def residuals(points: torch.Tensor) -> torch.Tensor:  # (B, 5) -> (B, 7)
        return torch.sin(points) @ M.T + 0.5 * points.pow(2).sum(dim=1, keepdim=True)

    point = torch.randn(5, generator=gen, dtype=torch.float64)
    numeric = forward_difference_jacobian(residuals, point, residuals(point[None])[0], 1e-6, batch=2)
    exact = torch.autograd.functional.jacobian(lambda p: residuals(p[None])[0], point)
    assert numeric.shape == (7, 5)
    torch.testing.assert_close(numeric, exact, rtol=0, atol=1e-4)


@pytest.mark.parametrize("total", [0, 5, 9, 10, 50, GaussNewtonConfig.steps, 500])
def test_phases_split_the_budget(total):
    config = GaussNewtonConfig()
    phases = config.phase_steps(total)
    assert sum(phases.values()) == total
    newton = phases[Phase.LEVENBERG_MARQUARDT]
    assert newton == min(config.gauss_newton_steps, total // 10)
    assert abs(phases[Phase.RELAXED] - config.relaxed_share * (total - newton)) <= 0.5
    cost = config.cost_in_steps(total, num_params=120)
    assert cost == total if newton == 0 else cost > total + newton * 25  # ~30 steps' time per Gauss-Newton step


def _random_pair(size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=gen) * 2 - 1, torch.rand(2, 3, size, size, generator=gen) * 2 - 1


@pytest.mark.parametrize("masked", [False, True])
def test_mse_residuals_square_to_the_loss(masked):
    pred, target = _random_pair(16, 3)
    weight = (torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(4)) > 0.3).float() if masked else None
    loss = ReconstructionLoss(None, mse_weight=0.7)
    torch.testing.assert_close(loss.residuals(pred, target, weight).pow(2).sum(dim=1), loss(pred, target, weight))


@pytest.mark.parametrize("size", [12, 40])  # below and above the smallest size AlexNet sees
def test_lpips_residuals_square_to_the_loss(size):
    loss = SmallImageLoss(ReconstructionLoss(build_lpips("alex", allow_random_backbone=True)))
    pred, target = _random_pair(size, 5)
    residuals = loss.residuals(pred, target)
    assert residuals.shape[1] > 3 * size * size  # the LPIPS features are in them, not only the pixels
    torch.testing.assert_close(residuals.pow(2).sum(dim=1), loss(pred, target), rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def planted_sr():
    """A 4x super-resolution target rendered from an in-prior alpha+ code (Delta = 0 where eq. 7 looks)."""
    G = build_tiny_generator(resolution=32, seed=0)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        anchors = G.mapping(torch.randn(8, G.z_dim, generator=gen))[:, 0]
        delta = 0.05 * torch.randn(G.num_ws, 8, generator=gen)
        delta[: A.regularised_layers(G.num_ws)] = 0
        truth = G.synthesis((A.alpha_plus(1 / 8 + 0.3 * torch.randn(8, generator=gen), delta, 0.05) @ anchors)[None])
    degradation = super_resolution(G.resolution, G.resolution / 4)
    return G, anchors, truth, degradation


def _project(planted_sr, optimizer: ProjectionOptimizer, steps: int):
    G, anchors, truth, degradation = planted_sr
    config = AlphaConfig(optimizer=optimizer)
    projection = AlphaProjection(G, anchors, degradation(truth), degradation, ReconstructionLoss(None), 0.05, config)
    return projection, projection.run(steps)


def _psnr(image: torch.Tensor, truth: torch.Tensor) -> float:
    return float(10 * torch.log10(4.0 / (image.clamp(-1, 1) - truth.clamp(-1, 1)).pow(2).mean()))


def test_gauss_newton_beats_adam_and_plain_lbfgs_on_an_in_prior_target(planted_sr):
    truth = planted_sr[2]
    projection, result = _project(planted_sr, ProjectionOptimizer.GAUSS_NEWTON, GAUSS_NEWTON_DEFAULT_STEPS)
    assert result.optimizer == "gauss-newton" and result.steps == GAUSS_NEWTON_DEFAULT_STEPS
    newton = GaussNewtonConfig().phase_steps(GAUSS_NEWTON_DEFAULT_STEPS)[Phase.LEVENBERG_MARQUARDT]
    # per Gauss-Newton step: the Jacobian's base render (its residuals too) and one render per Delta
    assert result.forward_passes == newton * (projection.delta.numel() + 1)
    assert result.evaluations >= GAUSS_NEWTON_DEFAULT_STEPS - newton
    # Every Gauss-Newton step lowers eq. (8) (a rejected one would have ended the run).
    tail = projection.objectives[-newton:]
    assert all(b < a for a, b in itertools.pairwise(tail))
    ours = _psnr(result.image, truth)
    adam = _psnr(_project(planted_sr, ProjectionOptimizer.ADAM, 600)[1].image, truth)
    lbfgs = _psnr(_project(planted_sr, ProjectionOptimizer.LBFGS, 250)[1].image, truth)
    assert ours > adam - 0.5 and ours > lbfgs - 0.5, (ours, adam, lbfgs)


def test_the_relaxed_phase_leaves_eq7_out_and_the_next_puts_it_back(planted_sr):
    projection, _ = _project(planted_sr, ProjectionOptimizer.GAUSS_NEWTON, 0)
    with torch.no_grad():
        projection.delta.add_(0.1)
        full, relaxed = float(projection.penalty()), float(projection.penalty(relaxed=True))
        regulariser = AlphaConfig().reg_weight * A.delta_penalty(
            projection.delta, A.regularised_layers(projection.delta.shape[0]), projection.norm_smoothing
        )
    assert full == pytest.approx(relaxed + float(regulariser), rel=1e-6) and float(regulariser) > 0


def test_a_loss_without_residuals_is_refused(planted_sr):
    G, anchors, truth, degradation = planted_sr
    config = AlphaConfig(optimizer=ProjectionOptimizer.GAUSS_NEWTON)
    with pytest.raises(ValueError, match="residuals"):
        AlphaProjection(
            G, anchors, degradation(truth), degradation, lambda p, t, weight=None: (p - t).pow(2), 0.05, config
        )


def test_wplus_projections_run_gauss_newton_as_lbfgs(planted_sr):
    G, _anchors, truth, degradation = planted_sr
    from photokit.restore.project import WPlusConfig

    config = WPlusConfig(optimizer=ProjectionOptimizer.GAUSS_NEWTON)
    result = WPlusProjection(G, degradation(truth), degradation, ReconstructionLoss(None), config).run(3)
    assert result.optimizer == "lbfgs" and result.forward_passes == 0


def test_the_cpu_default_is_gauss_newton_in_fp32_and_bf16_is_refused():
    cpu, options = torch.device("cpu"), EnhanceOptions()
    assert options.optimizer_for(cpu) == ProjectionOptimizer.GAUSS_NEWTON
    assert options.precision_for(cpu) == Precision.FP32
    assert options.steps_for(cpu) == GAUSS_NEWTON_DEFAULT_STEPS
    assert EnhanceOptions(optimizer="adam").optimizer_for(cpu) == ProjectionOptimizer.ADAM
    with pytest.raises(PhotokitError, match="bf16"):
        EnhanceOptions(optimizer="gauss-newton", precision="bf16").precision_for(cpu)


def test_resuming_synthesis_from_a_block_renders_what_a_whole_pass_does():
    G = build_tiny_generator(resolution=32, seed=3)
    synthesis = G.synthesis
    gen = torch.Generator().manual_seed(8)
    ws = torch.randn(1, G.num_ws, G.w_dim, generator=gen)
    image, inputs = synthesis.block_inputs(ws)
    assert len(inputs) == len(synthesis.block_resolutions)
    torch.testing.assert_close(image, synthesis(ws))
    for layer in range(G.num_ws):
        start = synthesis.first_block_reading(layer)
        moved = ws.clone()
        moved[:, layer] += torch.randn(G.w_dim, generator=gen)
        with torch.no_grad():
            whole = synthesis(moved)
        torch.testing.assert_close(synthesis.resume(moved, start, inputs[start]), whole)
        if start + 1 < len(inputs):  # starting one block later misses the change
            assert not torch.allclose(synthesis.resume(moved, start + 1, inputs[start + 1]), whole)
    with pytest.raises(ValueError):
        synthesis.first_block_reading(G.num_ws)


def test_the_projection_jacobian_matches_plain_forward_differences(planted_sr):
    _G, anchors, truth, degradation = planted_sr
    G64 = build_tiny_generator(resolution=32, seed=0).double()
    config = AlphaConfig(optimizer=ProjectionOptimizer.GAUSS_NEWTON)
    target = degradation(truth).double()
    projection = AlphaProjection(G64, anchors.double(), target, degradation, ReconstructionLoss(None), 0.05, config)
    projection.anchors = projection.anchors.double()
    gen = torch.Generator().manual_seed(9)
    point = (projection.point() + 0.05 * torch.randn(projection.point().shape, generator=gen)).double()
    at_point = projection.residuals(point[None])[0]
    fast_at_point, fast, renders = projection.jacobian(point, 1e-7)
    torch.testing.assert_close(fast_at_point, at_point)
    plain = forward_difference_jacobian(projection.residuals, point, at_point, 1e-7, batch=4)
    assert renders == projection.delta.numel() + 1 and fast.shape == plain.shape
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-5 * float(plain.abs().max()))
