"""Optimisers for projection in the small latent spaces (alpha+: N + num_ws x N numbers, ~120 at 256 px).

MyStyle optimises with Adam (``AlphaConfig``: lr 5e-3, 1000 steps). With ~100 parameters, a
quasi-Newton method needs fewer generator evaluations for the same loss: torch's L-BFGS with a
strong-Wolfe line search, one iteration per ``step()``, keeping every curvature pair (the space is
small enough for full-memory BFGS). Three things it needs that Adam does not:

- a smoother Delta regulariser (eq. 7's per-layer norms have a kink at 0, where L-BFGS stalls),
  ``LbfgsConfig.norm_smoothing`` added to the squared norms instead of 1e-12 (``delta_penalty``
  subtracts the smoothing's value at 0, so it adds no constant that would swamp the reconstruction);
- a restart: torch's L-BFGS stops moving for good once its line search finds no decrease along its
  direction; ``Stepper`` then drops the history, so the next step starts again from steepest descent;
- a stopping rule: ``plateaued`` on the objective (eq. 8, the value L-BFGS decreases monotonically;
  the reconstruction term alone may rise while the penalties fall).

Each ``step()`` returns the objective at the point it started from, so both optimisers' curves mean
the same thing. Measured against 1000 Adam steps by ``benchmarks/bench_restore_quality.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from photokit.prior.vocab import ProjectionOptimizer

# The objective: (total loss to minimise, reconstruction loss to report); differentiable in the params.
Objective = Callable[[], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class EarlyStop:
    """Stop when the loss improved by less than ``tolerance`` (relative) over the last ``window`` steps."""

    window: int = 10
    tolerance: float = 1e-5  # the objective is mostly penalty: its relative changes are small


@dataclass(frozen=True)
class LbfgsConfig:
    """photokit's CPU schedule (not the paper's): L-BFGS with a strong-Wolfe line search."""

    history: int = 256  # curvature pairs kept: more than the space's dimensions (120 at 256 px, 8 anchors)
    # and a run's steps, i.e. full-memory BFGS. With 20: 44 dB instead of 49 after 180 evaluations on a
    # planted target (docs/performance.md).
    lr: float = 1.0  # the line search's first trial step, as a fraction of the quasi-Newton step
    max_evaluations_per_step: int = 10  # line-search cap: generator evaluations in one iteration
    norm_smoothing: float = 1e-5  # added to eq. (7)'s squared norms (Adam: 1e-12); 1e-6 converged slower


def plateaued(losses: Sequence[float], stop: EarlyStop) -> bool:
    """True when ``losses[-1]`` is less than ``tolerance`` below ``losses[-1 - window]``, relative to it."""
    if stop.window < 1 or len(losses) <= stop.window:
        return False
    before, now = losses[-1 - stop.window], losses[-1]
    return before - now < stop.tolerance * max(abs(before), 1e-12)


class Evaluations:
    """Runs the objective and sets the parameters' gradients, remembering recent points by value.

    torch's L-BFGS re-evaluates the point it starts every ``step()`` from, which its line search has
    already evaluated; the cache answers that call without running the generator again.
    """

    def __init__(self, params: list[torch.Tensor], objective: Objective, remember: int = 16) -> None:
        self.params = params
        self.objective = objective
        self.remember = remember
        self.count = 0  # generator forward+backward passes actually run
        self._cache: list[tuple[torch.Tensor, float, float, list[torch.Tensor]]] = []
        self.last_reconstruction = float("nan")

    def point(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params]).clone()

    def __call__(self) -> float:
        """The total loss at the current parameters (gradients left in ``.grad``)."""
        point = self.point()
        for cached, total, rec, grads in self._cache:
            if torch.equal(cached, point):
                self._set_grads(grads)
                self.last_reconstruction = rec
                return total
        total_t, rec_t = self.objective()
        grads = [g.detach() for g in torch.autograd.grad(total_t, self.params)]
        self._set_grads(grads)
        self.count += 1
        total, rec = float(total_t.detach()), float(rec_t.detach())
        self._cache = (self._cache + [(point, total, rec, grads)])[-self.remember :]
        self.last_reconstruction = rec
        return total

    def _set_grads(self, grads: list[torch.Tensor]) -> None:
        for p, g in zip(self.params, grads):
            p.grad = g.clone()


@dataclass(frozen=True)
class StepValues:
    """The objective and its reconstruction term at the point a step started from."""

    objective: float
    reconstruction: float


class Stepper:
    """One optimiser over fixed parameters."""

    forward_passes = 0  # forward-only generator passes: none (``GaussNewtonSchedule`` counts its Jacobians')
    stuck = False  # Adam and L-BFGS always take their step (``GaussNewtonSchedule`` may not)

    def __init__(self, evaluations: Evaluations, optimizer: torch.optim.Optimizer) -> None:
        self.evaluations = evaluations
        self.optimizer = optimizer

    def plan(self, total_steps: int) -> None:
        """Nothing to plan: Adam and L-BFGS take every step alike (``GaussNewtonSchedule`` has phases)."""

    @property
    def evaluation_count(self) -> int:
        return self.evaluations.count

    def step(self) -> StepValues:
        start: list[StepValues] = []

        def closure() -> float:
            total = self.evaluations()
            if not start:
                start.append(StepValues(total, self.evaluations.last_reconstruction))
            return total

        before = self.evaluations.point()  # restart when stuck (module docstring)
        self.optimizer.step(closure)
        if torch.equal(before, self.evaluations.point()):
            self.optimizer.state.clear()
        return start[0]


def make_stepper(
    kind: ProjectionOptimizer,
    params: list[torch.Tensor],
    objective: Objective,
    adam_lr: float,
    adam_betas: tuple[float, float],
    lbfgs: LbfgsConfig = LbfgsConfig(),
) -> Stepper:
    """A ``Stepper`` for ``kind`` (``adam`` or ``lbfgs``; resolve ``auto`` before calling)."""
    evaluations = Evaluations(params, objective)
    optimizer: torch.optim.Optimizer
    if kind == ProjectionOptimizer.ADAM:
        optimizer = torch.optim.Adam(params, lr=adam_lr, betas=adam_betas)
    elif kind == ProjectionOptimizer.LBFGS:
        optimizer = torch.optim.LBFGS(
            params,
            lr=lbfgs.lr,
            max_iter=1,
            max_eval=lbfgs.max_evaluations_per_step,
            history_size=lbfgs.history,
            tolerance_grad=0.0,  # stopping is ``plateaued``'s job, on the loss curve
            tolerance_change=0.0,
            line_search_fn="strong_wolfe",
        )
    else:
        raise ValueError(f"no optimiser for {kind!r}: resolve 'auto' first")
    return Stepper(evaluations, optimizer)
