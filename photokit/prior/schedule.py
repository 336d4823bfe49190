"""Build presets and the schedule: how many references and steps a prior build runs, from measured costs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch

from photokit.errors import PhotokitError
from photokit.prior.projector import ProjectorConfig
from photokit.prior.tuning import TuningConfig, ceil_div, steps_per_epoch
from photokit.prior.vocab import LrDecay, Preset
from photokit.stylegan2.precision import checked_precision, device_precision, resolve_precision
from photokit.stylegan2.vocab import LossKind, Precision

PRESETS = tuple(Preset)


@dataclass(frozen=True)
class BuildOptions:
    """What `photokit prior build` was asked for. ``None`` = the preset's value."""

    preset: str = Preset.AUTO
    precision: str = Precision.AUTO  # auto: the preset's (fast: bf16 on CPUs with native bf16; paper: fp32)
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
        checked_precision(self.precision)


# The published schedules, and a CPU-sized one. Fast: fewer, most diverse references (farthest-point order),
# a short projection and 100 tuning epochs, then shrunk further to fit ``budget_s``.
PRESET_SCHEDULES = {
    Preset.PAPER: {"max_refs": 100, "invert_steps": ProjectorConfig.steps, "epochs": TuningConfig.epochs},
    Preset.FAST: {"max_refs": 20, "invert_steps": 30, "epochs": 100},
}
FAST_FLOORS = {"invert_steps": 20, "epochs": 5, "refs": 5}
# Seconds per inversion step per reference and per tuning step at 256 px (FFHQ's architecture, the product's
# losses, the fast preset's settings below), measured as one-thread CPU seconds by `python -m benchmarks.run_all
# prior_schedule` -- steadier than wall time on the shared machine, and no credit taken for the second core.
# The fast preset's steps are sized by them: 20 references one at a time x 30 steps + 100 epochs x 20 steps
# = 28.8 min. Measured 2026-12-01 in bf16 (AVX512-BF16), idle: 0.61 / 0.60 CPU-s (probes), 0.54 / 0.56 (a real
# run's steps); the slowest probes of the day 0.68 / 0.65. Without native bf16 a tuning step costs ~1.4x and
# the build shrinks its schedule to its budget.
FAST_REFERENCE_COSTS = {"invert_step_s": 0.68, "tuning_step_s": 0.66}
# How the fast preset takes its steps, chosen by sweeps on planted 64 px references
# (benchmarks/sweep_prior_schedule.py, 2 random generators, 2026-12-01; the paper schedule's anchors reach
# an MSE of 0.0687 / 0.0472 on generators 0 / 1, its tuning 0.00529 / 0.00578).
# - inversion: NVIDIA's peak lr 0.1 (PTI: 0.01; 0.05 and 0.2 were worse), no w-noise (in a short run its
#   exploration costs more than it finds) and Adam betas (0.5, 0.9) instead of (0.9, 0.999); each anchor
#   stops once its loss curve has flattened (10-step windows within 0.2%). 30 steps: anchors 0.0573 / 0.0447,
#   0.83x / 0.95x the paper's (40 steps: 0.71x / 0.81x; 25: 0.96x on generator 0; 20: 1.16x). The loss is
#   taken at 128 px instead of PTI's 256 (half the size at 256 px; PTI takes a quarter at 1024): 0.6x the
#   CPU time per step at 256 px, and on 64 px, at half the size, the same anchors (generator 1: 0.0448 vs
#   0.0447). One reference at a time on a CPU: batches of 7 cost 13% more per reference per step (31% more
#   with the loss at 256).
# - tuning: what cost is spent on, not how fast a step is, decides here: batches of 2 or 4 cost 1.2-1.3x more
#   per sample on a 256 px CPU step and reach the same error per epoch. Rank-16 low-rank adapters at a peak
#   lr of 0.02 (all other settings at 60 epochs: full tuning 0.0134 / 0.0116 at 1.5e-3, 0.0123 / 0.0110 at
#   2e-3; adapters R=8 at 0.01: 0.0089 / 0.0085, R=8 at 0.02: 0.0086 / 0.0078, R=16 at 0.02: 0.0075 / 0.0069,
#   R=16 at 0.01, 0.015 or 0.03 and R=4 or 24 worse; betas (0.9, 0.99) or (0.8, 0.9), a 10% warm-up and a
#   constant lr (0.036) worse) with a 5% warm-up, then a cosine down to 0, Adam betas (0.9, 0.9). Tuned
#   MSE against epochs (30 inversion steps): 70 epochs 0.00606 / 0.00607 (1.15x / 1.05x the paper's),
#   80 epochs 0.00532 / 0.00504 (1.01x / 0.87x: the most that fit 30 min in fp32), 90 epochs 0.00461 / 0.00462
#   (0.87x / 0.80x), 120 epochs - / 0.00301. Full tuning (``--adapter-rank 0``) keeps lr 1.5e-3. A rank-16
#   adapter stores 21x less than a full delta at 256 px. Held-out generator 2 (no setting chosen on it), the
#   final settings: anchors 0.99x, tuned 0.78x the paper's.
# - width and arithmetic (issue 14; `sweep_prior_schedule SEED --channels C SETTING paper`, one thread,
#   2026-12-01; docs/priors.md, "The fast preset at every width", has every setting tried): rank 16 is half
#   a 32-channel layer but an eighth of a 128-channel one, and there it reached only 1.43x / 1.24x the
#   paper's tuned error (2.14x at 256 channels). So each weight gets rank max(16, ceil(0.3 x its full rank)),
#   at most 64, and peak lr 0.02 x sqrt(32 / C) where it mixes C > 32 feature channels (a conv's inputs; a
#   style affine's outputs, each scaling one input channel of its conv): on 32-channel layers exactly the
#   rank-16 preset. Uncapped (rank 154 on FFHQ's 512-channel convs) a 256 px step cost 1.3x rank 16's. The
#   steps run in bf16 where the CPU has it natively (256 px, one thread: a tuning step 0.55-0.65 CPU-s
#   capped, 0.51-0.58 at rank 16, 0.72-0.92 at rank 16 in fp32; an inversion step 0.49-0.68 against
#   0.80-0.98), which pays for 100 epochs instead of 80. Fast / paper MSE, anchors and tuned, generators 0 / 1:
#   32 channels 0.84x / 0.95x and 0.75x / 0.80x (90 epochs 0.89x / 0.89x; held-out generator 2: 1.00x and
#   0.61x); 128 channels 1.06x / 0.97x and 0.78x / 0.25x (held-out generator 2: 0.96x and 0.76x); 256
#   channels 0.93x / 0.97x and 0.71x / 0.51x (lr power 2/3: 0.70x / 0.55x; held-out generator 2: 1.05x and 0.39x).
FAST_PROJECTOR: dict[str, object] = {"early_stop_window": 10, "early_stop_tol": 0.002, "initial_lr": 0.1}
FAST_PROJECTOR |= {"initial_noise_factor": 0.0, "betas": (0.5, 0.9), "loss_size": 128}
FAST_CPU_INVERT_BATCH = 1
FAST_TUNING: dict[str, object] = {"lr": 1.5e-3, "lr_warmup": 0.05, "lr_decay": LrDecay.COSINE, "betas": (0.9, 0.9)}
FAST_TUNING |= {"adapter_rank": 16, "adapter_lr": 0.02}
FAST_TUNING |= {"adapter_rank_fraction": 0.3, "adapter_rank_cap": 64, "adapter_lr_channels": 32}

# What ``--adapter-rank R`` clears from the preset's rule: one rank and one lr for every weight.
FIXED_RANK: dict[str, object] = {"adapter_rank_fraction": None, "adapter_rank_cap": None, "adapter_lr_channels": None}


def fast_precision(device: torch.device) -> Precision:
    """The fast preset's synthesis arithmetic: bf16 where ``device`` is a CPU that computes it natively."""
    return resolve_precision(Precision.AUTO, device)


def fast_projector(projector: ProjectorConfig, device: torch.device = torch.device("cpu")) -> ProjectorConfig:
    """The fast preset's projector settings on top of ``projector`` (its step count stays); on a CPU,
    references are inverted one at a time (cheaper per reference than a batch)."""
    fast = replace(projector, **FAST_PROJECTOR, precision=fast_precision(device))
    return replace(fast, batch_size=FAST_CPU_INVERT_BATCH) if device.type == "cpu" else fast


def fast_tuning(tuning: TuningConfig, device: torch.device = torch.device("cpu")) -> TuningConfig:
    """The fast preset's tuning settings on top of ``tuning`` (its step count stays)."""
    return replace(tuning, **FAST_TUNING, precision=fast_precision(device))


def preset_configs(
    preset: str, projector: ProjectorConfig, tuning: TuningConfig, device: torch.device, precision: str = Precision.AUTO
) -> tuple[ProjectorConfig, TuningConfig]:
    """The projector and tuning settings a resolved preset runs with on ``device`` (the paper's: as given),
    in ``precision`` (auto: the preset's). bf16 where the device has none is a PhotokitError."""
    if preset == Preset.FAST:
        projector, tuning = fast_projector(projector, device), fast_tuning(tuning, device)
    if precision == Precision.AUTO:
        return projector, tuning
    chosen = device_precision(precision, device)
    return replace(projector, precision=chosen), replace(tuning, precision=chosen)


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
