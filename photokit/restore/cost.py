"""Up-front cost of a photo's projections: one timed step per generator, then a multiplication."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import torch

from photokit.stylegan2.timing import time_step


class StepCosts:
    """Seconds per projection step, measured once per generator (its cost dominates; face sizes barely matter)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._seconds: dict[Hashable, float] = {}

    def seconds_per_step(self, key: Hashable, make_step: Callable[[], Callable[[], object]]) -> float:
        """The cost of one step of ``key``'s generator; ``make_step`` builds a step to time the first time."""
        if key not in self._seconds:
            self._seconds[key] = time_step(make_step(), self.device)
        return self._seconds[key]

    def total(self, jobs: Iterable[tuple[Hashable, Callable[[], Callable[[], object]], float]]) -> float:
        """Seconds for every (generator key, step factory, steps) job; steps may be fractional equivalents
        (a Gauss-Newton step costs many L-BFGS steps: ``GaussNewtonConfig.cost_in_steps``)."""
        return sum(self.seconds_per_step(key, make) * steps for key, make, steps in jobs)
