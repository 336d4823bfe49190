"""Up-front cost estimates: every long command times one real step on the chosen device and says
how long the whole job will take before it starts."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from photokit.reporting import format_duration


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (GPU kernels run asynchronously; timings must include them)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        mps = getattr(torch, "mps", None)
        if mps is not None and hasattr(mps, "synchronize"):
            mps.synchronize()


def time_step(step: Callable[[], object], device: torch.device, repeats: int = 1) -> float:
    """Seconds per call of ``step`` after one warm-up call."""
    step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def describe_cost(what: str, steps: int, seconds_per_step: float, device: torch.device) -> str:
    """e.g. 'anchors: 8 x 450 steps at 0.21 s/step on cpu = about 13 min'."""
    return (
        f"{what}: {steps} steps at {seconds_per_step:.3g} s/step on {device.type} "
        f"= about {format_duration(steps * seconds_per_step)}"
    )
