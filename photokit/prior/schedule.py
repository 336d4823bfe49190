"""Build presets and the schedule: how many references and steps a prior build runs, from measured costs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch

from photokit.errors import PhotokitError
from photokit.prior.projector import ProjectorConfig
from photokit.prior.tuning import TuningConfig, ceil_div, steps_per_epoch
from photokit.prior.vocab import LrDecay, Preset
from photokit.stylegan2.vocab import LossKind

PRESETS = tuple(Preset)


@dataclass(frozen=True)
class BuildOptions:
    """What `photokit prior build` was asked for. ``None`` = the preset's value."""

    preset: str = Preset.AUTO
    loss: str = LossKind.LPIPS  # MSE: explicitly degraded (no LPIPS backbone installed)
    max_refs: int | None = None
    invert_steps: int | None = None
    tuning_steps: int | None = None
    adapter_rank: int | None = None
    budget_s: float = 600.0  # the fast preset shrinks its schedule to fit this (both stages together)
    restart: bool = False
    allow_random_lpips: bool = False  # tests only: LPIPS on a random backbone (never from the CLI)
    checkpoint_every_s: float = 180.0

    def __post_init__(self) -> None:
        from photokit.validation import checked_number

        checked_number("budget (seconds)", self.budget_s, 0.0, 7 * 24 * 3600.0, low_open=True)


# The published schedules, and a CPU-sized one. Fast: fewer, most diverse references (farthest-point order),
# a short projection and ~30 tuning epochs, then shrunk further to fit ``budget_s``.
PRESET_SCHEDULES = {
    Preset.PAPER: {"max_refs": 100, "invert_steps": ProjectorConfig.steps, "epochs": TuningConfig.epochs},
    Preset.FAST: {"max_refs": 20, "invert_steps": 40, "epochs": 30},
}
FAST_FLOORS = {"invert_steps": 30, "epochs": 5, "refs": 5}
# Seconds per inversion step per reference and per tuning step at 256 px (FFHQ's architecture, the product's
# losses), measured as one-thread CPU seconds by `python -m benchmarks.run_all prior_schedule` -- steady on
# the shared machine, and no credit taken for the second core. The fast preset's steps are sized by them:
# 20 references in 3 batches of 7, 7, 6 x 40 steps + 30 epochs x 20 steps = 29.7 min.
FAST_REFERENCE_COSTS = {"invert_step_s": 1.45, "tuning_step_s": 0.94}
# What else the fast preset changes (same steps, so the same cost). Each anchor stops once its loss curve
# has flattened (10-step window means within 0.2%). The short schedules take larger, less smoothed steps,
# chosen by a sweep on planted 64 px references (benchmarks/sweep_prior_schedule.py, 2 random generators,
# 2026-12-01; each value is the mean over both, against the paper anchors' 0.0580 MSE):
# - inversion: NVIDIA's peak lr 0.1 (PTI: 0.01; 0.05 and 0.2 were worse), NO w-noise (its exploration costs
#   a 40-step run more than it finds: anchor MSE 0.106 -> 0.080 on generator 0) and Adam betas (0.5, 0.9)
#   instead of (0.9, 0.999) (0.080 -> 0.049; (0.8, 0.99), (0.3, 0.8) and (0, 0.9) were between): anchors
#   0.044 vs 0.092 before, 0.76x the paper's instead of 1.6x.
# - tuning: a 5% warm-up, then a cosine from a peak lr of 1.5e-3 down to 0, Adam betas (0.9, 0.9): tuned
#   MSE 0.0182 vs 0.0196 for constant 1e-3 on the same anchors (constant 2e-3: 0.0186 / 0.0264, unstable;
#   peaks 3e-3 and 4e-3 worse). Still 3.4x the paper's 0.0053: 30 epochs do not do the work of 350.
FAST_PROJECTOR: dict[str, object] = {"early_stop_window": 10, "early_stop_tol": 0.002, "initial_lr": 0.1}
FAST_PROJECTOR |= {"initial_noise_factor": 0.0, "betas": (0.5, 0.9)}
FAST_TUNING: dict[str, object] = {"lr": 1.5e-3, "lr_warmup": 0.05, "lr_decay": LrDecay.COSINE, "betas": (0.9, 0.9)}


def fast_projector(projector: ProjectorConfig) -> ProjectorConfig:
    """The fast preset's projector settings on top of ``projector`` (its step count stays)."""
    return replace(projector, **FAST_PROJECTOR)


def fast_tuning(tuning: TuningConfig) -> TuningConfig:
    """The fast preset's tuning settings on top of ``tuning`` (its step count stays)."""
    return replace(tuning, **FAST_TUNING)


def resolve_preset(preset: str, device: torch.device) -> Preset:
    """The schedule a preset means on ``device`` (auto: paper on a GPU, fast elsewhere)."""
    if preset not in PRESETS:
        raise PhotokitError(f"unknown preset '{preset}': use one of {', '.join(PRESETS)}")
    if preset == Preset.AUTO:
        return Preset.PAPER if device.type == "cuda" else Preset.FAST
    return Preset(preset)


@dataclass
class BuildPlan:
    preset: str
    refs: int
    invert_steps: int
    invert_batch: int
    tuning_steps: int
    invert_step_s: float
    tuning_step_s: float
    paper_estimate_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def invert_batches(self) -> int:
        return ceil_div(self.refs, self.invert_batch)

    @property
    def invert_s(self) -> float:
        return self.invert_steps * self.invert_batches * self.invert_step_s

    @property
    def tuning_s(self) -> float:
        return self.tuning_steps * self.tuning_step_s

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "invert_estimate_s": round(self.invert_s, 1),
            "tuning_estimate_s": round(self.tuning_s, 1),
        }


def plan_schedule(
    preset: str,
    refs: int,
    invert_batch: int,
    invert_step_s: float,
    tuning_step_s: float,
    options: BuildOptions,
    tuning_batch: int = 1,
) -> BuildPlan:
    """Step counts for a preset from measured per-step costs (pure). Explicit options always win;
    the fast preset then shrinks what is left to fit ``options.budget_s``, down to fixed floors."""
    per_epoch = steps_per_epoch(refs, tuning_batch)
    batches = ceil_div(refs, invert_batch)
    sched = PRESET_SCHEDULES[preset]
    invert_steps = options.invert_steps or sched["invert_steps"]
    tuning_steps = options.tuning_steps or sched["epochs"] * per_epoch
    paper = PRESET_SCHEDULES["paper"]
    paper_s = paper["invert_steps"] * batches * invert_step_s + paper["epochs"] * per_epoch * tuning_step_s
    notes = []
    if preset == "fast":

        def cost(refs: int, invert_steps: int, tuning_steps: int) -> float:
            return invert_steps * ceil_div(refs, invert_batch) * invert_step_s + tuning_steps * tuning_step_s

        total = cost(refs, invert_steps, tuning_steps)
        if total > options.budget_s:
            scale = options.budget_s / total
            if options.invert_steps is None:
                invert_steps = max(FAST_FLOORS["invert_steps"], int(invert_steps * scale))
            if options.tuning_steps is None:
                tuning_steps = max(FAST_FLOORS["epochs"] * per_epoch, int(tuning_steps * scale))
            # Still too slow at the floors: fewer references (the most diverse come first).
            while (
                options.max_refs is None
                and refs > FAST_FLOORS["refs"]
                and cost(refs, invert_steps, tuning_steps) > options.budget_s
            ):
                refs -= 1
                if options.tuning_steps is None:
                    tuning_steps = max(
                        FAST_FLOORS["epochs"] * steps_per_epoch(refs, tuning_batch),
                        int(tuning_steps * refs / (refs + 1)),
                    )
            notes.append(f"fast schedule shrunk to fit a budget of {options.budget_s / 60:.0f} min")
    return BuildPlan(
        preset, refs, invert_steps, min(invert_batch, refs), tuning_steps, invert_step_s, tuning_step_s, paper_s, notes
    )
