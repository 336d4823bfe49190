"""Planted-truth tests: the alpha+ prior must actually recover what a degradation destroyed.

A tiny random generator with N=8 random anchors stands in for a person's prior; the target is rendered
from an alpha+ code inside P_beta, so the truth is known exactly.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from photokit.prior import alpha as A
from photokit.prior.alpha import AlphaConfig
from photokit.prior.vocab import ProjectionOptimizer
from photokit.restore.degrade import Degradation, inpainting, super_resolution
from photokit.restore.optimize import EarlyStop, Evaluations, Stepper, make_stepper, plateaued
from photokit.restore.project import AlphaProjection, SmallImageLoss, WPlusProjection
from photokit.stylegan2.losses import ReconstructionLoss, build_lpips
from photokit.stylegan2.network import build_tiny_generator

STEPS = 600  # at 300 steps the SR gain varies 3.4-15 dB over planted seeds; at 600 it is >= 5.6 dB (seeds 0-4)


@pytest.fixture(scope="module")
def planted():
    G = build_tiny_generator(resolution=32, seed=0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        anchors = G.mapping(torch.randn(8, G.z_dim, generator=gen))[:, 0]
    raw = 1 / 8 + 0.3 * torch.randn(8, generator=gen)
    delta = 0.05 * torch.randn(G.num_ws, 8, generator=gen)
    truth = A.alpha_plus(raw, delta, beta=0.05)
    assert A.min_dilation(truth) <= 0.05 + 1e-6  # the planted code is inside P_beta
    with torch.no_grad():
        target = G.synthesis((truth @ anchors)[None], noise_mode="const")  # not clamped: exactly renderable
    return G, anchors, target


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> float:
    err = (a.clamp(-1, 1) - b.clamp(-1, 1)).pow(2)
    mse = err[..., where].mean() if where is not None else err.mean()
    return float(10 * torch.log10(4.0 / mse))  # peak-to-peak range of [-1, 1] is 2


def test_super_resolution_beats_bicubic_by_3db(planted):
    G, anchors, target = planted
    degradation = super_resolution(G.resolution, face_side_px=G.resolution / 4)
    assert degradation.size == 8 and degradation.factor(G.resolution) == 4
    low = degradation(target)
    result = AlphaProjection(G, anchors, low, degradation, ReconstructionLoss(None), beta=0.05).run(STEPS)
    bicubic = F.interpolate(low, size=G.resolution, mode="bicubic", align_corners=False)
    gain = psnr(result.image, target) - psnr(bicubic, target)
    assert gain >= 3.0, f"prior gained only {gain:.2f} dB over bicubic"
    assert result.steps == STEPS and result.losses[-1] < result.losses[0]
    torch.testing.assert_close(result.coefficients.sum(-1), torch.ones(G.num_ws), atol=1e-5, rtol=0)
    assert result.min_dilation <= 0.05 + 1e-6


def test_inpainting_30_percent_hole_beats_telea(planted):
    G, anchors, target = planted
    known = np.ones((32, 32), np.float32)
    known[6:26, 7:23] = 0  # 320 of 1024 px = 31 %
    assert 0.29 <= 1 - known.mean() <= 0.33
    degradation = inpainting(known)
    observed = degradation(target)
    result = AlphaProjection(G, anchors, observed, degradation, ReconstructionLoss(None), beta=0.02).run(STEPS)
    img = ((target[0].clamp(-1, 1).permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    telea = cv2.inpaint(img, ((1 - known) * 255).astype(np.uint8), 3, cv2.INPAINT_TELEA)
    telea_t = torch.from_numpy(telea).permute(2, 0, 1)[None].float() / 127.5 - 1
    hole = torch.from_numpy(known == 0)
    ours, theirs = psnr(result.image, target, hole), psnr(telea_t, target, hole)
    assert ours > theirs + 3.0, f"hole PSNR {ours:.1f} dB vs Telea {theirs:.1f} dB"


def test_plain_alpha_shares_one_code_for_all_layers(planted):
    G, anchors, target = planted
    degradation = Degradation(size=16)
    config = AlphaConfig(per_layer=False)
    result = AlphaProjection(G, anchors, degradation(target), degradation, ReconstructionLoss(None), 0.05, config).run(
        20
    )
    assert torch.allclose(result.coefficients, result.coefficients[:1].expand_as(result.coefficients))


def test_unconstrained_projection_may_leave_p_beta(planted):
    G, anchors, target = planted
    degradation = Degradation(size=16)
    result = AlphaProjection(G, anchors, degradation(target), degradation, ReconstructionLoss(None), None).run(50)
    assert result.beta is None
    torch.testing.assert_close(result.coefficients.sum(-1), torch.ones(G.num_ws), atol=1e-4, rtol=0)


def test_wplus_generic_prior_reduces_the_loss(planted):
    G, _, target = planted
    degradation = Degradation(size=8)
    projection = WPlusProjection(G, degradation(target), degradation, ReconstructionLoss(None))
    result = projection.run(60)
    assert result.coefficients is None
    assert result.reconstruction_loss < 0.5 * result.losses[0]


def test_lpips_runs_on_faces_smaller_than_alexnet_can_see():
    lpips_model = build_lpips("alex", allow_random_backbone=True)
    loss = SmallImageLoss(ReconstructionLoss(lpips_model))
    a, b = torch.rand(1, 3, 12, 12) * 2 - 1, torch.rand(1, 3, 12, 12) * 2 - 1
    assert float(loss(a, b)) > float(loss(a, a)) >= 0


def _sr_projection(planted, optimizer, early_stop=None):
    G, anchors, target = planted
    degradation = super_resolution(G.resolution, face_side_px=G.resolution / 4)
    config = AlphaConfig(optimizer=optimizer)
    loss = ReconstructionLoss(None)
    return AlphaProjection(G, anchors, degradation(target), degradation, loss, 0.05, config, early_stop)


def test_lbfgs_beats_as_many_adam_steps_as_it_evaluated_the_generator(planted):
    lbfgs = _sr_projection(planted, ProjectionOptimizer.LBFGS).run(30)
    assert lbfgs.optimizer == "lbfgs" and lbfgs.steps == 30
    assert lbfgs.reconstruction_loss < 0.2 * lbfgs.losses[0]
    # The cache answers L-BFGS's re-evaluation of each step's start: about one evaluation per step, not two.
    assert lbfgs.steps <= lbfgs.evaluations < 1.6 * lbfgs.steps
    adam = _sr_projection(planted, ProjectionOptimizer.ADAM).run(lbfgs.evaluations)
    assert adam.evaluations == lbfgs.evaluations
    assert lbfgs.reconstruction_loss < adam.reconstruction_loss, (lbfgs.reconstruction_loss, adam.reconstruction_loss)


def test_lbfgs_stops_when_the_objective_is_flat_and_not_before(planted):
    stop = EarlyStop(window=5, tolerance=1e-4)
    projection = _sr_projection(planted, ProjectionOptimizer.LBFGS, stop)
    result = projection.run(1000)
    assert result.steps < 1000
    assert plateaued(projection.objectives, stop)
    assert not any(plateaued(projection.objectives[:k], stop) for k in range(1, result.steps))
    # Without early stopping every asked step is taken.
    assert _sr_projection(planted, ProjectionOptimizer.LBFGS).run(result.steps + 5).steps == result.steps + 5


def test_plateaued_compares_the_last_point_with_the_window_before_it():
    stop = EarlyStop(window=3, tolerance=0.01)
    assert not plateaued([1.0, 1.0, 1.0], stop)  # too short to tell
    assert plateaued([1.0, 1.0, 1.0, 1.0], stop)
    assert plateaued([1.0, 0.5, 0.999, 0.995], stop)  # 0.5 % below the point 3 steps back
    assert not plateaued([1.0, 1.0, 1.0, 0.98], stop)  # 2 % below it
    assert plateaued([1.0, 1.0, 1.0, 1.2], stop)  # worse counts as flat
    assert not plateaued([-1.0, -1.0, -1.0, -1.02], stop)  # relative to |before|


def test_optimizer_auto_must_be_resolved_first():
    with pytest.raises(ValueError, match="auto"):
        make_stepper(
            ProjectionOptimizer.AUTO, [torch.zeros(2, requires_grad=True)], lambda: (None, None), 0.1, (0.9, 0.9)
        )


class _NoMove(torch.optim.Optimizer):
    """Evaluates the objective and leaves the parameters where they are, like L-BFGS when it stalls."""

    def __init__(self, params):
        super().__init__(params, {})

    def step(self, closure):
        self.state[self.param_groups[0]["params"][0]]["history"] = [1]
        return closure()


def test_a_stalled_optimizer_forgets_its_history():
    x = torch.ones(3, requires_grad=True)
    objective = lambda: ((x**2).sum(), (x**2).sum())  # noqa: E731
    stepper = Stepper(Evaluations([x], objective), _NoMove([x]))
    assert stepper.step().objective == 3.0
    assert not stepper.optimizer.state  # cleared: the next step starts from steepest descent

    moving = make_stepper(ProjectionOptimizer.LBFGS, [x], objective, 0.1, (0.9, 0.9))
    moving.step()
    assert moving.optimizer.state  # it moved: the curvature pairs are kept
