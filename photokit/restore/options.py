"""What a restoration was asked for (``EnhanceOptions``) and its checks, made once before any photo."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from photokit.errors import PhotokitError, Remedy
from photokit.prior.alpha import AlphaConfig
from photokit.prior.vocab import ProjectionOptimizer
from photokit.restore.gauss_newton import GaussNewtonConfig
from photokit.restore.paste import output_shape
from photokit.stylegan2.precision import checked_precision, device_precision
from photokit.stylegan2.vocab import LossKind, Precision

# The paper's 1000 steps are GPU work (minutes per face at 1024 px); on a CPU photokit defaults to a
# tenth of that so a face takes minutes, and says so. An explicit step count overrides both.
GPU_DEFAULT_STEPS = AlphaConfig.steps
CPU_DEFAULT_STEPS = 100
# bf16 synthesis (precision 'auto' with Adam on a CPU with native bf16) makes a step cheaper: synthesis
# forward+backward 0.24 s against 0.35 s fp32 at 256 px, 2.0 s against 3.5 s at 1024 px
# (benchmarks/bench_generator_reference.py); a whole Adam step at full-width 256 px with the loss 0.23 s
# against 0.38 s (idle, 2 cores). So 200 bf16 steps cost ~1.2x what 100 fp32 steps did, and Adam is still
# improving there: on planted in-prior targets 100 steps end 14-32 dB below 1000, 300 steps 2.7-14.5 dB below.
CPU_BF16_DEFAULT_STEPS = 200
# The CPU default is photokit's Gauss-Newton schedule (restore/gauss_newton.py: L-BFGS from a relaxed
# eq. (7), then Levenberg-Marquardt steps), fp32: on planted in-prior targets it ends above 1000 Adam
# steps (4-30 dB), in 94 s at full-width 256 px on 2 idle cores (benchmarks/bench_restore_quality.py,
# docs/performance.md). Plain L-BFGS does not (it settles in poorer basins and stalls in fp32), nor does
# Adam with a decaying lr (restore_lr_schedule_sweep.json). Its steps are phases, not equal costs: each
# Gauss-Newton step renders (mostly partially) once per alpha+ parameter.
CPU_DEFAULT_OPTIMIZER = ProjectionOptimizer.GAUSS_NEWTON
GAUSS_NEWTON_DEFAULT_STEPS = GaussNewtonConfig.steps
LBFGS_DEFAULT_STEPS = 250
DEFAULT_SCALE = 2.0
MIN_SCALE, MAX_SCALE = 0.25, 16.0
MAX_OUTPUT_PIXELS = 200_000_000  # float32 working copies of larger outputs need tens of GB
MAX_BETA = 1.0  # a simplex dilated by more than the whole span: use beta=None (the unconstrained span)
MAX_STEPS = 100_000


@dataclass(frozen=True)
class EnhanceOptions:
    scale: float | None = None  # None: 2 for super-resolution, 1 with a mask
    mask: Path | None = None  # inpainting: white = known, in photo coordinates
    person: str | None = None  # forces the person of a single-face photo
    beta: float | str | None = "auto"  # 'auto': the paper's per-task beta; None: unconstrained span
    steps: int | None = None  # None: GPU_DEFAULT_STEPS on a GPU, CPU_DEFAULT_STEPS on a CPU
    optimizer: str = ProjectionOptimizer.AUTO  # 'auto': Adam on a GPU, CPU_DEFAULT_OPTIMIZER on a CPU
    precision: str = Precision.AUTO  # the synthesis arithmetic: 'auto' = bf16 for Adam on a native-bf16 CPU
    loss: str = LossKind.LPIPS
    lpips_net: str = "alex"
    out_dir: Path | None = None
    suffix: str = "_restored"
    min_face_px: float = 24.0  # smallest aligned square (photo px) worth aligning
    max_yaw: float = 50.0  # degrees; beyond it the frontal alignment fails
    consistency: bool = True  # super-resolution: the restored face takes the photo's colour and lighting
    verify: bool = True  # check consistency and identity before pasting (restore.verify)
    force: bool = False  # paste faces that fail the checks anyway (the report says forced)

    def __post_init__(self) -> None:  # every front end (CLI, web, workers) gets the same refusal (scale: check)
        from photokit.validation import checked_number

        if self.beta is not None and self.beta != "auto":
            checked_number("beta", self.beta, 0.0, MAX_BETA)
        if self.steps is not None and not 0 <= int(self.steps) <= MAX_STEPS:
            raise PhotokitError(f"the number of projection steps must be 0 to {MAX_STEPS} (got {self.steps})")
        if self.optimizer not in {o.value for o in ProjectionOptimizer}:
            choices = ", ".join(o.value for o in ProjectionOptimizer)
            raise PhotokitError(f"unknown optimizer {self.optimizer!r} (use {choices})")
        checked_precision(self.precision)

    @property
    def task(self) -> str:
        return "inpaint" if self.mask is not None else "super_resolution"

    @property
    def effective_scale(self) -> float:
        return float(self.scale) if self.scale is not None else (1.0 if self.mask is not None else DEFAULT_SCALE)

    def beta_value(self, config: AlphaConfig = AlphaConfig()) -> float | None:
        return config.beta_for(self.task) if self.beta == "auto" else self.beta

    def optimizer_for(self, device: torch.device) -> ProjectionOptimizer:
        if self.optimizer != ProjectionOptimizer.AUTO:
            return ProjectionOptimizer(self.optimizer)
        return CPU_DEFAULT_OPTIMIZER if device.type == "cpu" else ProjectionOptimizer.ADAM

    def precision_for(self, device: torch.device) -> Precision:
        """The synthesis precision on ``device``. bf16 reaches Adam's reconstruction at about twice the speed on
        a CPU with native bf16, but L-BFGS's line search stalls on its rounding (stylegan2/precision.py) and
        Gauss-Newton's finite differences drown in it, so 'auto' keeps fp32 for both and an explicit bf16
        with either is refused."""
        optimizer = self.optimizer_for(device)
        needs_fp32 = optimizer in (ProjectionOptimizer.LBFGS, ProjectionOptimizer.GAUSS_NEWTON)
        if self.precision == Precision.BF16 and needs_fp32:
            raise PhotokitError(
                f"bf16 precision cannot run the {optimizer} optimiser (its L-BFGS line search stalls on bf16's "
                "rounding): use fp32 or adam"
            )
        if self.precision == Precision.AUTO and needs_fp32:
            return Precision.FP32
        return device_precision(self.precision, device)

    def steps_for(self, device: torch.device) -> int:
        """The step count (an upper bound for L-BFGS, which stops on a flat objective)."""
        if self.steps is not None:
            return int(self.steps)
        if self.optimizer_for(device) == ProjectionOptimizer.LBFGS:
            return LBFGS_DEFAULT_STEPS
        if self.optimizer_for(device) == ProjectionOptimizer.GAUSS_NEWTON:
            return GAUSS_NEWTON_DEFAULT_STEPS
        if device.type != "cpu":
            return GPU_DEFAULT_STEPS
        return CPU_BF16_DEFAULT_STEPS if self.precision_for(device) == Precision.BF16 else CPU_DEFAULT_STEPS

    def check(self) -> None:
        """PhotokitError when an option is out of range (before any model is loaded)."""
        if self.scale is not None and not MIN_SCALE <= self.scale <= MAX_SCALE:
            raise PhotokitError(f"scale {self.scale:g} is out of range (use {MIN_SCALE:g} to {MAX_SCALE:g})")

    def fingerprint(self) -> str:
        """Identifies what the output depends on (not the device), for batch resume."""
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_output_size(name: str, shape: tuple[int, int], scale: float) -> None:
    """PhotokitError when the ``scale`` x output of a ``shape`` (h, w) photo would not fit in memory."""
    out_h, out_w = output_shape(shape, scale)
    if out_h * out_w > MAX_OUTPUT_PIXELS:
        raise PhotokitError(
            f"{name}: the {scale:g}x output would be {out_w}x{out_h} px ({out_h * out_w / 1e6:.0f} MP)",
            Remedy.SMALLER_SCALE,
        )


def check_file_output_size(path: Path, scale: float) -> None:
    """``check_output_size`` from the file's header alone (PIL opens lazily), before gigabytes are decoded."""
    from PIL import Image

    try:
        with Image.open(path) as probe:
            width, height = probe.size
    except Exception:  # unreadable here: load_photo gives the precise one-line reason
        return
    check_output_size(path.name, (height, width), scale)
