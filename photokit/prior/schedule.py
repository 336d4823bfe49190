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
# a short projection and ~80 tuning epochs, then shrunk further to fit ``budget_s``.
PRESET_SCHEDULES = {
    Preset.PAPER: {"max_refs": 100, "invert_steps": ProjectorConfig.steps, "epochs": TuningConfig.epochs},
    Preset.FAST: {"max_refs": 20, "invert_steps": 30, "epochs": 80},
}
FAST_FLOORS = {"invert_steps": 20, "epochs": 5, "refs": 5}
# Seconds per inversion step per reference and per tuning step at 256 px (FFHQ's architecture, the product's
# losses, the fast preset's settings below), measured as one-thread CPU seconds by `python -m benchmarks.run_all
# prior_schedule` -- steadier than wall time on the shared machine, and no credit taken for the second core.
# The fast preset's steps are sized by them: 20 references one at a time x 30 steps + 80 epochs x 20 steps
# = 29.3 min. Measured 2026-12-01 at load 7-11: 0.78 / 0.74 CPU-s (probes), 0.74 / 0.68 (a real run's steps).
FAST_REFERENCE_COSTS = {"invert_step_s": 0.85, "tuning_step_s": 0.78}
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
#   80 epochs 0.00532 / 0.00504 (1.01x / 0.87x: the most that fits 30 min), 90 epochs 0.00461 / 0.00462
#   (0.87x / 0.80x), 120 epochs - / 0.00301. Full tuning (``--adapter-rank 0``) keeps lr 1.5e-3. A rank-16
#   adapter stores 21x less than a full delta at 256 px. Held-out generator 2 (no setting chosen on it), the
#   final settings: anchors 0.99x, tuned 0.78x the paper's.
# - wider layers (`sweep_prior_schedule SEED --channels 128`, 2026-12-01 13:01-13:47 UTC, load 3-8): rank 16 is
#   half a 32-channel layer but an eighth of a 128-channel one, and there it falls short: tuned 1.43x / 1.24x
#   the paper's on generators 0 / 1 (anchors 1.09x / 0.95x; the paper tunes a wider network further: 0.00264
#   / 0.00398). Rank 16 at lr 0.01 / 0.03: 1.40x / 2.34x; R=24 at 0.015: 1.21x; R=32 at 0.0075 / 0.01 /
#   0.0125 / 0.015 / 0.02: 1.29x / 1.10x (0.88x on generator 1) / 1.07x (1.01x) / 1.51x / 2.57x; R=40 at
#   0.01: 0.98x (0.83x); R=64 at 0.005 / 0.02: 1.37x / 5.4x; all weights at 1.5e-3 / 3e-3 / 5e-3: 1.80x /
#   1.22x (0.87x) / 1.13x (0.88x). Settings left as they are: ranks that hold at 128 channels adapt nothing
#   on a 32-channel generator (no factor smaller than the weight), R=16 at 0.0125 misses there (1.18x / 0.96x)
#   and so do all weights (3e-3 / 5e-3: 1.64x / 1.42x and 1.29x / 1.15x; the preset itself: 0.97x / 0.94x again),
#   the good lr window is narrow, and the rank needed grew with the width, so no fixed rank chosen here is
#   known to hold on FFHQ's 256 px layers (512 channels up to 32 px). A 256 px tuning step costs the same at
#   rank 16 or 32 (0.795 / 0.794 CPU-s, all weights 0.70, load 8).
# - adapters that follow the layer (`sweep_prior_schedule SEED --channels C paper SETTINGS...`, 2026-12-01
#   14:44-16:12 UTC, load 2-12; the paper schedule rerun side by side, the code under it having moved: tuned
#   0.00535 / 0.00519 at 32 channels, 0.00263 / 0.00894 at 128 (generator 1 was 0.00398 at 13:01), 0.00278 /
#   0.00292 at 256; anchors 0.0687 / 0.0472, 0.0569 / 0.0709, 0.0680 / 0.0486): WIDTH_SCALED_ADAPTERS below,
#   each weight's rank max(16, ceil(0.3 x its full rank)) and its peak lr 0.02 x sqrt(32 / C) where it mixes C > 32
#   feature channels (a conv's inputs; a style affine's outputs, each scaling one input channel of its conv).
#   On 32-channel layers that is this preset exactly (0.93x / 1.08x this session); at 128 channels (convs R=39,
#   affines R=20, lr 0.01) 1.03x / 0.36x (0.81x the 13:01 paper figure); at 256 (convs R=77, affines R=20, lr
#   0.0071) 1.15x / 0.99x (rank 16 at 0.02: 2.14x on generator 0; lr 0.005: 0.93x / 0.77x, lr 0.01: 1.54x;
#   but lr 0.02 x (32 / C) ** (2/3), 0.005 at 256, gives 0.0079 at 128: 1.27x / 0.40x, 0.90x the 13:01 figure).
#   Not the preset: it misses at 256 channels, and on FFHQ's 256 px generator (512-channel convs at rank 154) a
#   tuning step costs 1.00-1.01 CPU-s against 0.72-0.80 at rank 16 (interleaved probes, load 10), which the
#   30-minute plan cannot hold, and stores 16.9 MB against 2.13. What did not hold at 128 channels: the lr
#   scaled by sqrt(288 / fan-in) for every weight (raises the affines' and toRGB's lr on 32 channels: 1.36x);
#   capped at 0.02 with ranks ceil(0.5 x full rank) (0.99x / 0.99x at 32 channels, toRGB at rank 2): 1.45x, the
#   affines' fan-in being w_dim at every width, their lr stayed 0.02; their lr x sqrt(16 / R) instead (rsLoRA's
#   rank scaling): 1.18x; floors of 16 with fractions 0.3 / 0.4 and that rank-scaled lr 1.29x / 1.27x, with the
#   fan-in lr 1.19x; fraction 0.5 with the width lr 1.11x / 0.48x (1.08x the 13:01 figure); fractions without
#   a floor of 16 miss at 32 channels (0.4, R=13: 1.12x / 1.02x).
FAST_PROJECTOR: dict[str, object] = {"early_stop_window": 10, "early_stop_tol": 0.002, "initial_lr": 0.1}
FAST_PROJECTOR |= {"initial_noise_factor": 0.0, "betas": (0.5, 0.9), "loss_size": 128}
FAST_CPU_INVERT_BATCH = 1
FAST_TUNING: dict[str, object] = {"lr": 1.5e-3, "lr_warmup": 0.05, "lr_decay": LrDecay.COSINE, "betas": (0.9, 0.9)}
FAST_TUNING |= {"adapter_rank": 16, "adapter_lr": 0.02}
# Adapters that follow the layer (measured above, not the preset: 1.15x / 0.99x at 256 channels, 1.3x the step cost
# at 256 px): each weight's rank max(16, ceil(0.3 x its rank)), its lr 0.02 x sqrt(32 / C) above 32 channels.
WIDTH_SCALED_ADAPTERS: dict[str, object] = {"adapter_rank_fraction": 0.3, "adapter_lr_channels": 32}


def fast_projector(projector: ProjectorConfig, device: torch.device = torch.device("cpu")) -> ProjectorConfig:
    """The fast preset's projector settings on top of ``projector`` (its step count stays); on a CPU,
    references are inverted one at a time (cheaper per reference than a batch)."""
    fast = replace(projector, **FAST_PROJECTOR)
    return replace(fast, batch_size=FAST_CPU_INVERT_BATCH) if device.type == "cpu" else fast


def fast_tuning(tuning: TuningConfig) -> TuningConfig:
    """The fast preset's tuning settings on top of ``tuning`` (its step count stays)."""
    return replace(tuning, **FAST_TUNING)


def preset_configs(
    preset: str, projector: ProjectorConfig, tuning: TuningConfig, device: torch.device
) -> tuple[ProjectorConfig, TuningConfig]:
    """The projector and tuning settings a resolved preset runs with on ``device`` (the paper's: as given)."""
    if preset == Preset.FAST:
        return fast_projector(projector, device), fast_tuning(tuning)
    return projector, tuning


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
