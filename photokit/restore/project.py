"""Projection-based enhancement (MyStyle eq. 4/8, appendix B.2): find the latent whose generated face,
once degraded by phi, best matches the degraded photo; the restored face is the generator's output there.

- ``AlphaProjection``: into a person's alpha+ space (the personal prior).
- ``WPlusProjection``: into the base generator's own W+ space (the generic prior for people without one),
  starting from the mean w and with the same Delta regulariser on its per-layer offsets.
Both expose ``step()`` so commands can time one real step up front (``photokit.stylegan2.timing``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn

from photokit.prior import alpha as alpha_space
from photokit.prior.alpha import AlphaConfig
from photokit.prior.vocab import ProjectionOptimizer
from photokit.restore.degrade import Degradation
from photokit.restore.gauss_newton import GaussNewtonConfig, GaussNewtonSchedule, forward_difference_jacobian
from photokit.restore.optimize import EarlyStop, LbfgsConfig, Stepper, make_stepper, plateaued
from photokit.stylegan2.losses import lpips_residuals, weighted_squared_error

LossFn = Callable[..., torch.Tensor]  # ReconstructionLoss: (pred, target, weight=None) -> (B,)


class ResidualLoss(Protocol):
    """A loss that also gives residuals whose squares sum to it per sample (Gauss-Newton needs them)."""

    def residuals(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor: ...


# AlexNet (LPIPS's default backbone) needs at least 31 px to reach its last layers.
LPIPS_MIN_SIZE = 32


class SmallImageLoss(nn.Module):
    """Runs a ReconstructionLoss on degraded faces smaller than LPIPS can see, by upsampling both sides.

    Old photos often hold faces of 16-30 px; MSE is computed at the true size, LPIPS at ``min_size``.
    """

    def __init__(self, loss: nn.Module, min_size: int = LPIPS_MIN_SIZE) -> None:
        super().__init__()
        self.loss = loss
        self.min_size = min_size

    @property
    def name(self) -> str:
        return getattr(self.loss, "name", type(self.loss).__name__)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        lpips_model = getattr(self.loss, "lpips", None)
        if lpips_model is None or pred.shape[-1] >= self.min_size:
            return self.loss(pred, target, weight=weight)
        mse = weighted_squared_error(pred, target, weight)
        return self.loss.mse_weight * mse.flatten(1).mean(dim=1) + lpips_model(
            *self._upsampled(pred, target), normalize=False
        ).flatten(1).mean(dim=1)

    def residuals(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``forward``'s loss as residuals (``ReconstructionLoss.residuals``), LPIPS's on the upsampled pair."""
        lpips_model = getattr(self.loss, "lpips", None)
        if lpips_model is None or pred.shape[-1] >= self.min_size:
            return self.loss.residuals(pred, target, weight=weight)
        mse = self.loss.mse_residuals(pred, target, weight)
        return torch.cat([mse, lpips_residuals(lpips_model, *self._upsampled(pred, target))], dim=1)

    def _upsampled(self, pred: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        size = (self.min_size, self.min_size)
        return [F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in (pred, target)]


@dataclass(frozen=True)
class WPlusConfig:
    """Generic-prior projection. photokit's choice, not the paper's (MyStyle never projects into plain W+):
    Adam from the mean w; the offsets Delta carry the same per-layer-norm regulariser as alpha+ (Tov et
    al. 2021), weighted for W's scale (norms of ~sqrt(w_dim) instead of ~1/N)."""

    lr: float = 0.01
    reg_weight: float = 0.01
    reg_layer_fraction: float = 2 / 3
    steps: int = 1000
    optimizer: ProjectionOptimizer = ProjectionOptimizer.ADAM


@dataclass
class ProjectionResult:
    ws: torch.Tensor  # (num_ws, w_dim)
    image: torch.Tensor  # (1, 3, R, R) in [-1, 1], the restored face
    coefficients: torch.Tensor | None  # (num_ws, N) alpha+ (None for W+)
    beta: float | None
    steps: int
    reconstruction_loss: float  # last L_rec between phi(G(latent)) and the degraded input
    seconds: float
    losses: list[float] = field(default_factory=list)
    evaluations: int = 0  # generator forward+backward passes (the cost; > steps with L-BFGS)
    optimizer: str = ProjectionOptimizer.ADAM
    forward_passes: int = 0  # forward-only generator passes (Gauss-Newton's Jacobians)

    @property
    def min_dilation(self) -> float | None:
        return None if self.coefficients is None else alpha_space.min_dilation(self.coefficients)


class _Projection:
    """Optimises a few latent parameters (``restore.optimize``); the generator is only differentiated
    through, never updated."""

    def __init__(
        self,
        generator: nn.Module,
        target: torch.Tensor,
        degradation: Degradation,
        loss_fn: LossFn,
        params: list[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        optimizer: ProjectionOptimizer = ProjectionOptimizer.ADAM,
        early_stop: EarlyStop | None = None,
    ) -> None:
        self.generator = generator
        self.target = target
        if degradation.mask is not None:  # masks are built on the CPU; the loss runs where the target is
            degradation = dataclasses.replace(degradation, mask=degradation.mask.to(target.device, target.dtype))
        self.degradation = degradation
        self.loss_fn = loss_fn
        self.params = params
        self.optimizer = ProjectionOptimizer(optimizer)
        self.early_stop = early_stop
        self.stepper: Stepper | GaussNewtonSchedule = self._make_stepper(lr, betas)
        self.steps_done = 0
        self.losses: list[float] = []  # reconstruction term per step
        self.objectives: list[float] = []  # eq. (8) per step: what the optimiser decreases

    def _make_stepper(self, lr: float, betas: tuple[float, float]) -> Stepper | GaussNewtonSchedule:
        return make_stepper(self.optimizer, self.params, self._objective, lr, betas)

    def ws(self) -> torch.Tensor:  # (num_ws, w_dim)
        raise NotImplementedError

    def penalty(self, relaxed: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def render(self, ws: torch.Tensor) -> torch.Tensor:
        return self.generator.synthesis(ws.unsqueeze(0), noise_mode="const")

    def _objective(self, relaxed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        rec = self.loss_fn(self.degradation(self.render(self.ws())), self.target, weight=self.degradation.mask).mean()
        return rec + self.penalty(relaxed), rec

    @property
    def evaluations(self) -> int:
        """Generator forward+backward passes so far (L-BFGS's line search may take several per step)."""
        return self.stepper.evaluation_count

    @property
    def forward_passes(self) -> int:
        """Forward-only generator passes so far (Gauss-Newton's Jacobians; 0 for the other optimisers)."""
        return self.stepper.forward_passes

    def step(self) -> float:
        """One optimiser step; returns the reconstruction loss at the point the step started from."""
        values = self.stepper.step()
        self.steps_done += 1
        self.losses.append(values.reconstruction)
        self.objectives.append(values.objective)
        return values.reconstruction

    def converged(self) -> bool:
        """The stepper can go no further (Gauss-Newton), or the loss curve is flat (``early_stop``)."""
        return self.stepper.stuck or (self.early_stop is not None and plateaued(self.objectives, self.early_stop))

    @property
    def norm_smoothing(self) -> float:
        """Eq. (7)'s epsilon under the squared norms: larger for L-BFGS and Gauss-Newton (``restore.optimize``)."""
        return 1e-12 if self.optimizer == ProjectionOptimizer.ADAM else LbfgsConfig.norm_smoothing

    def run(self, steps: int, callback: Callable[[int, float], None] | None = None) -> ProjectionResult:
        start = time.perf_counter()
        self.stepper.plan(self.steps_done + steps)
        for i in range(steps):
            loss = self.step()
            if callback is not None:
                callback(i + 1, loss)
            if self.converged():
                break
        with torch.no_grad():
            ws = self.ws().detach()
            image = self.render(ws)
            final = float(self.loss_fn(self.degradation(image), self.target, weight=self.degradation.mask).mean())
        return self._result(ws, image, final, time.perf_counter() - start)

    def _result(self, ws, image, final, seconds) -> ProjectionResult:
        raise NotImplementedError


class AlphaProjection(_Projection):
    """Projection into alpha+ (or alpha) space of ``anchors`` (N, w_dim): eq. (8)."""

    def __init__(
        self,
        generator: nn.Module,
        anchors: torch.Tensor,
        target: torch.Tensor,
        degradation: Degradation,
        loss_fn: LossFn,
        beta: float | None,
        config: AlphaConfig = AlphaConfig(),
        early_stop: EarlyStop | None = None,
        gauss_newton: GaussNewtonConfig = GaussNewtonConfig(),
    ) -> None:
        num_ws = int(generator.num_ws)
        device = target.device
        self.anchors = anchors.detach().to(device=device, dtype=torch.float32)
        self.beta = beta
        self.config = config
        self.gauss_newton = gauss_newton
        alpha, delta = alpha_space.init_alpha(self.anchors.shape[0], num_ws, device=device)
        self.alpha = alpha.requires_grad_(True)
        self.delta = delta.requires_grad_(config.per_layer)
        params = [self.alpha] + ([self.delta] if config.per_layer else [])
        super().__init__(
            generator, target, degradation, loss_fn, params, config.lr, config.adam_betas, config.optimizer, early_stop
        )

    def _make_stepper(self, lr: float, betas: tuple[float, float]) -> Stepper | GaussNewtonSchedule:
        if self.optimizer != ProjectionOptimizer.GAUSS_NEWTON:
            return super()._make_stepper(lr, betas)
        if not callable(getattr(self.loss_fn, "residuals", None)):
            raise ValueError("the gauss-newton optimiser needs a loss that gives its residuals (ReconstructionLoss)")
        return GaussNewtonSchedule(
            self, self.params, self._objective, lambda: self._objective(relaxed=True), self.gauss_newton
        )

    def coefficients(self) -> torch.Tensor:
        return alpha_space.alpha_plus(self.alpha, self.delta, self.beta, self.config.sharpness)

    def ws(self) -> torch.Tensor:
        return self._ws_of(self.alpha, self.delta)

    def _ws_of(self, alpha: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        coefficients = alpha_space.alpha_plus(alpha, delta, self.beta, self.config.sharpness)
        return alpha_space.latent_from_alpha(coefficients, self.anchors)

    def penalty(self, relaxed: bool = False) -> torch.Tensor:
        return self._penalty_of(self.alpha, self.delta, relaxed)

    def _penalty_of(self, alpha: torch.Tensor, delta: torch.Tensor, relaxed: bool = False) -> torch.Tensor:
        config = self.config
        if relaxed:
            config = dataclasses.replace(config, reg_weight=self.gauss_newton.relaxed_reg_weight)
        return alpha_space.regularisation(alpha, delta, self.beta, config, self.norm_smoothing)

    # The LeastSquaresProblem of the Gauss-Newton phase (restore/gauss_newton.py), over the flat parameters.
    def point(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def set_point(self, point: torch.Tensor) -> None:
        alpha, delta = self._unflatten(point)
        with torch.no_grad():
            self.alpha.copy_(alpha)
            self.delta.copy_(delta)

    def _unflatten(self, point: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.alpha.numel()
        delta = point[n:].reshape(self.delta.shape) if self.config.per_layer else self.delta.detach()
        return point[:n], delta

    @torch.no_grad()
    def residuals(self, points: torch.Tensor) -> torch.Tensor:
        ws = torch.stack([self._ws_of(*self._unflatten(point)) for point in points])
        return self._image_residuals(self.generator.synthesis(ws, noise_mode="const"))

    def _image_residuals(self, images: torch.Tensor) -> torch.Tensor:
        target = self.target.expand(len(images), *self.target.shape[1:])
        return cast(ResidualLoss, self.loss_fn).residuals(
            self.degradation(images), target, weight=self.degradation.mask
        )

    @torch.no_grad()
    def jacobian(self, point: torch.Tensor, step: float) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(residuals at ``point``, their Jacobian (m, n), renders run): forward differences that re-render
        only the blocks a perturbed layer reaches (``SynthesisNetwork.resume``: about 0.7x the work of whole
        renders at 256 px); alpha's columns are sums of Delta's, as alpha and Delta[l] enter layer l only as
        their sum."""
        synthesis = self.generator.synthesis
        if not self.config.per_layer or not callable(getattr(synthesis, "resume", None)):
            at_point = self.residuals(point[None])[0]
            return at_point, forward_difference_jacobian(self.residuals, point, at_point, step, 1), point.numel() + 1
        alpha, delta = self._unflatten(point)
        image, inputs = synthesis.block_inputs(self._ws_of(alpha, delta)[None])
        at_point = self._image_residuals(image)[0]
        columns = torch.empty(at_point.numel(), *delta.shape, dtype=at_point.dtype, device=at_point.device)
        for layer in range(delta.shape[0]):
            start = synthesis.first_block_reading(layer)
            for i in range(delta.shape[1]):
                moved = delta.clone()
                moved[layer, i] += step
                image = synthesis.resume(self._ws_of(alpha, moved)[None], start, inputs[start])
                columns[:, layer, i] = (self._image_residuals(image)[0] - at_point) / step
        flat = columns.reshape(len(at_point), -1)
        return at_point, torch.cat([columns.sum(dim=1), flat], dim=1), delta.numel() + 1

    def penalty_at(self, point: torch.Tensor) -> torch.Tensor:
        return self._penalty_of(*self._unflatten(point))

    def _result(self, ws, image, final, seconds) -> ProjectionResult:
        return ProjectionResult(
            ws=ws,
            image=image,
            coefficients=self.coefficients().detach(),
            beta=self.beta,
            steps=self.steps_done,
            reconstruction_loss=final,
            seconds=seconds,
            losses=list(self.losses),
            evaluations=self.evaluations,
            optimizer=str(self.optimizer),
            forward_passes=self.forward_passes,
        )


class WPlusProjection(_Projection):
    """Projection into the base generator's W+: ws = w + Delta[l], w from the mean w."""

    def __init__(
        self,
        generator: nn.Module,
        target: torch.Tensor,
        degradation: Degradation,
        loss_fn: LossFn,
        config: WPlusConfig = WPlusConfig(),
        early_stop: EarlyStop | None = None,
    ) -> None:
        device = target.device
        num_ws, w_dim = int(generator.num_ws), int(generator.w_dim)
        w_avg = getattr(generator, "w_avg", None)
        start = w_avg.detach().reshape(-1)[:w_dim] if w_avg is not None else torch.zeros(w_dim)
        self.w = start.clone().float().to(device).requires_grad_(True)
        self.delta = torch.zeros(num_ws, w_dim, device=device, requires_grad=True)
        self.config = config
        params = [self.w, self.delta]
        # W+ has (num_ws + 1) x w_dim numbers (7680 at 256 px): too many for Gauss-Newton's Jacobian.
        optimizer = (
            ProjectionOptimizer.LBFGS if config.optimizer == ProjectionOptimizer.GAUSS_NEWTON else config.optimizer
        )
        super().__init__(generator, target, degradation, loss_fn, params, config.lr, optimizer=optimizer)
        self.early_stop = early_stop

    def ws(self) -> torch.Tensor:
        return self.w.unsqueeze(0) + self.delta

    def penalty(self, relaxed: bool = False) -> torch.Tensor:
        n = alpha_space.regularised_layers(self.delta.shape[0], self.config.reg_layer_fraction)
        return self.config.reg_weight * alpha_space.delta_penalty(self.delta, n, self.norm_smoothing)

    def _result(self, ws, image, final, seconds) -> ProjectionResult:
        return ProjectionResult(
            ws=ws,
            image=image,
            coefficients=None,
            beta=None,
            steps=self.steps_done,
            reconstruction_loss=final,
            seconds=seconds,
            losses=list(self.losses),
            evaluations=self.evaluations,
            optimizer=str(self.optimizer),
        )
