"""photokit's CPU projection schedule in alpha+ space: L-BFGS from a relaxed eq. (7), then Gauss-Newton.

Eq. (8) is a sum of squares (the reconstruction: MSE and LPIPS's weighted feature differences) plus
penalties on ~120 numbers. Planted in-prior targets showed two failure modes of a plain quasi-Newton run
(``benchmarks/bench_restore_quality.py``, docs/performance.md):

- **bad basins.** With eq. (7)'s per-layer norms at full weight from the start, L-BFGS settles in local
  minima 10-20 dB below what 1000 Adam steps reach. With the Delta regulariser switched off (``RELAXED``)
  every layer is free and it fits the input well; switching the penalty on then (``LBFGS``) starts it
  near the right basin — a continuation, the usual cure for a non-convex penalty.
- **slow convergence.** Near the solution fp32 L-BFGS stalls (the same schedule in float64 keeps going),
  while damped Gauss-Newton steps (``LEVENBERG_MARQUARDT``) converge fast on a problem whose residuals
  are small there: the Jacobian of the residuals w.r.t. the ~120 parameters comes from forward
  differences (no backward), each re-rendering only the blocks its layer reaches; the penalties'
  Hessian comes from autograd.

Each phase's length is a share of the step budget (``GaussNewtonConfig.phase_steps``). The math is in
pure functions (``forward_difference_jacobian``, ``levenberg_marquardt_step``); the projection supplies a
``LeastSquaresProblem``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import torch

from photokit.prior.vocab import ProjectionOptimizer
from photokit.restore.optimize import Evaluations, Objective, StepValues, make_stepper


class Phase(StrEnum):
    RELAXED = "relaxed"  # L-BFGS with eq. (7)'s weight at ``relaxed_reg_weight``
    LBFGS = "lbfgs"  # L-BFGS on eq. (8)
    LEVENBERG_MARQUARDT = "levenberg-marquardt"  # damped Gauss-Newton steps on eq. (8)


@dataclass(frozen=True)
class GaussNewtonConfig:
    """The schedule's shares and the Gauss-Newton settings (photokit's, chosen on planted targets)."""

    steps: int = 86  # the default budget: 48 relaxed + 32 L-BFGS + 6 Gauss-Newton (94 s at 256 px, 2 idle cores)
    gauss_newton_steps: int = 6  # each costs a (partial) render per parameter: ~30 L-BFGS steps' time
    relaxed_share: float = 0.6  # of the L-BFGS steps, the relaxed ones
    relaxed_reg_weight: float = 0.0
    fd_step: float = 1e-3  # forward-difference step in the raw alpha / Delta parameters (fp32 residuals)
    damping: float = 1e-3  # Levenberg-Marquardt's initial lambda, relative to the Hessian's diagonal
    damping_tries: int = 8  # lambda x4 after each rejected step; then the schedule has converged
    damping_decrease: float = 10.0  # lambda / this after an accepted step (/3 converged too slowly)

    def phase_steps(self, total: int) -> dict[Phase, int]:
        """How ``total`` steps split: at most a tenth Gauss-Newton, of the rest ``relaxed_share`` relaxed."""
        newton = min(self.gauss_newton_steps, total // 10)
        relaxed = round((total - newton) * self.relaxed_share)
        return {Phase.RELAXED: relaxed, Phase.LBFGS: total - newton - relaxed, Phase.LEVENBERG_MARQUARDT: newton}

    def cost_in_steps(self, total: int, num_params: int, render_share: float = 0.25) -> float:
        """``total`` steps' cost in L-BFGS steps. A Jacobian render costs about a quarter of a forward+backward
        (full-width 256 px, 2 threads, idle: a whole render 0.111 s, forward+backward 0.33 s; partial
        renders take 0.68x the time of whole ones)."""
        newton = self.phase_steps(total)[Phase.LEVENBERG_MARQUARDT]
        return (total - newton) + newton * ((num_params + 1) * render_share + 2)


class LeastSquaresProblem(Protocol):
    """What the Gauss-Newton phase needs from a projection: eq. (8) = sum(residuals^2) + penalty."""

    def point(self) -> torch.Tensor: ...  # the parameters, flat (n,)

    def set_point(self, point: torch.Tensor) -> None: ...

    def residuals(self, points: torch.Tensor) -> torch.Tensor: ...  # (B, n) -> (B, m), no gradient

    # (residuals at ``point`` (m,), their (m, n) Jacobian by forward differences of ``step``, renders run)
    def jacobian(self, point: torch.Tensor, step: float) -> tuple[torch.Tensor, torch.Tensor, int]: ...

    def penalty_at(self, point: torch.Tensor) -> torch.Tensor: ...  # differentiable scalar


def forward_difference_jacobian(
    residuals: Callable[[torch.Tensor], torch.Tensor],
    point: torch.Tensor,
    at_point: torch.Tensor,
    step: float,
    batch: int,
) -> torch.Tensor:
    """(m, n) Jacobian of ``residuals`` at ``point`` from n perturbed points, ``batch`` per call."""
    n = point.numel()
    columns = []
    for start in range(0, n, batch):
        rows = torch.arange(start, min(n, start + batch), device=point.device)
        perturbed = point.expand(len(rows), n).clone()
        perturbed[torch.arange(len(rows)), rows] += step
        columns.append((residuals(perturbed) - at_point) / step)
    return torch.cat(columns).T


def levenberg_marquardt_step(
    jacobian: torch.Tensor, gradient: torch.Tensor, penalty_hessian: torch.Tensor, damping: float
) -> torch.Tensor:
    """Solve (2 J^T J + H_penalty + lambda diag) d = -gradient (Marquardt's diagonal scaling), in float64 on
    the CPU (an n x n system; MPS has no float64), returned on the gradient's device."""
    j = jacobian.detach().cpu().double()
    hessian = 2 * j.T @ j + penalty_hessian.detach().cpu().double()
    scaled = hessian + damping * torch.diag(hessian.diagonal().clamp_min(1e-12))
    return torch.linalg.solve(scaled, -gradient.detach().cpu().double()).to(gradient.device)


class GaussNewtonSchedule:
    """A stepper (``step() -> StepValues``) running the three phases over one projection's parameters."""

    def __init__(
        self,
        problem: LeastSquaresProblem,
        params: list[torch.Tensor],
        objective: Objective,
        relaxed_objective: Objective,
        config: GaussNewtonConfig = GaussNewtonConfig(),
    ) -> None:
        self.problem = problem
        self.config = config
        self.phases = config.phase_steps(config.steps)
        self.relaxed = make_stepper(ProjectionOptimizer.LBFGS, params, relaxed_objective, 1.0, (0.9, 0.999))
        self.lbfgs = make_stepper(ProjectionOptimizer.LBFGS, params, objective, 1.0, (0.9, 0.999))
        self.newton = Evaluations(params, objective)
        self.damping = config.damping
        self.steps_done = 0
        self.forward_passes = 0  # the Jacobians' (forward only)
        self.stuck = False

    def plan(self, total_steps: int) -> None:
        """Split a run of ``total_steps`` (counted from the first step) into the phases."""
        self.phases = self.config.phase_steps(total_steps)

    @property
    def evaluation_count(self) -> int:
        """Forward+backward passes of all phases (the Jacobians' forward passes are ``forward_passes``)."""
        return self.relaxed.evaluation_count + self.lbfgs.evaluation_count + self.newton.count

    def phase(self) -> Phase:
        if self.steps_done < self.phases[Phase.RELAXED]:
            return Phase.RELAXED
        if self.steps_done < self.phases[Phase.RELAXED] + self.phases[Phase.LBFGS]:
            return Phase.LBFGS
        return Phase.LEVENBERG_MARQUARDT

    def step(self) -> StepValues:
        phase = self.phase()
        self.steps_done += 1
        if phase == Phase.RELAXED:
            return self.relaxed.step()
        if phase == Phase.LBFGS:
            return self.lbfgs.step()
        return self._newton_step()

    def _newton_step(self) -> StepValues:
        """One damped Gauss-Newton step; the damping grows until eq. (8) decreases (else: ``stuck``)."""
        start = self.problem.point()
        objective = self.newton()
        values = StepValues(objective, self.newton.last_reconstruction)
        gradient = torch.cat([p.grad.reshape(-1) for p in self.newton.params])
        _, jacobian, renders = self.problem.jacobian(start, self.config.fd_step)
        self.forward_passes += renders
        penalty_hessian = torch.autograd.functional.hessian(self.problem.penalty_at, start)
        for _ in range(self.config.damping_tries):
            step = levenberg_marquardt_step(jacobian, gradient, penalty_hessian, self.damping)
            self.problem.set_point(start + step.to(start.dtype))
            if self.newton() < objective:
                self.damping = max(self.damping / self.config.damping_decrease, 1e-9)
                return values
            self.damping *= 4
        self.problem.set_point(start)
        self.stuck = True
        return values
