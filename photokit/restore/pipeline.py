"""One photo in, one restored photo out: detect, identify, route each face to its prior, project, paste back.

``Enhancer`` holds what stays the same across an album (device, loss, priors, people, face analyzer);
``Enhancer.render(path)`` does the work in memory and ``Enhancer.enhance(path)`` also writes the output.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from photokit.devices import describe_device, resolve_device
from photokit.errors import PhotokitError
from photokit.faces.align import FaceAlignment
from photokit.prior.alpha import AlphaConfig
from photokit.restore import degrade, paste
from photokit.restore.output import Photo, load_photo, output_path_for, save_photo
from photokit.restore.priors import INSTALL_HINT, PeopleIndex, PriorChoice, PriorSource, choose_prior
from photokit.restore.project import AlphaProjection, SmallImageLoss, WPlusConfig, WPlusProjection
from photokit.stylegan2.timing import describe_cost, time_step
from photokit.validation import checked_number

# The paper's 1000 steps are GPU work (minutes per face at 1024 px); on a CPU photokit defaults to a
# tenth of that so a face takes minutes, and says so. ``--steps`` overrides both.
GPU_DEFAULT_STEPS = AlphaConfig.steps
CPU_DEFAULT_STEPS = 100
DEFAULT_SCALE = 2.0
MAX_BETA = 1.0  # a simplex dilated by more than the whole span: use beta=None (the unconstrained span)
MAX_OUTPUT_PIXELS = 200_000_000  # float32 working copies of larger outputs need tens of GB


def check_output_size(path: Path, scale: float) -> None:
    """Refuse an output over MAX_OUTPUT_PIXELS from the file's header alone (PIL opens lazily)."""
    from PIL import Image

    try:
        with Image.open(path) as probe:
            width, height = probe.size
    except Exception:  # unreadable: load_photo gives the precise one-line reason
        return
    out_h, out_w = paste.output_shape((height, width), scale)
    if out_h * out_w > MAX_OUTPUT_PIXELS:
        raise PhotokitError(
            f"{path.name}: the {scale:g}x output would be {out_w}x{out_h} px "
            f"({out_h * out_w / 1e6:.0f} MP); use a smaller --scale"
        )


@dataclass(frozen=True)
class EnhanceOptions:
    scale: float | None = None  # None: 2 for super-resolution, 1 with a mask
    mask: Path | None = None  # inpainting: white = known, in photo coordinates
    person: str | None = None  # forces the person of a single-face photo
    beta: float | str | None = "auto"  # 'auto': the paper's per-task beta; None: unconstrained span
    steps: int | None = None  # None: GPU_DEFAULT_STEPS on a GPU, CPU_DEFAULT_STEPS on a CPU
    loss: str = "lpips"  # 'lpips' (LPIPS + MSE, the paper's) or 'mse'
    lpips_net: str = "alex"
    out_dir: Path | None = None
    suffix: str = "_restored"
    min_face_px: float = 24.0  # smallest aligned square (photo px) worth aligning
    max_yaw: float = 50.0  # degrees; beyond it the frontal alignment fails
    consistency: bool = True  # super-resolution: the restored face takes the photo's colour and lighting

    def __post_init__(self) -> None:  # every front end (CLI, web, workers) gets the same refusal (scale: Enhancer)
        if self.beta is not None and self.beta != "auto":
            checked_number("beta", self.beta, 0.0, MAX_BETA)
        if self.steps is not None and not 1 <= int(self.steps) <= 100_000:
            raise PhotokitError(f"steps must be between 1 and 100000 (got {self.steps})")

    @property
    def task(self) -> str:
        return "inpaint" if self.mask is not None else "super_resolution"

    @property
    def effective_scale(self) -> float:
        return float(self.scale) if self.scale is not None else (1.0 if self.mask is not None else DEFAULT_SCALE)

    def beta_value(self, config: AlphaConfig = AlphaConfig()) -> float | None:
        return config.beta_for(self.task) if self.beta == "auto" else self.beta

    def steps_for(self, device: torch.device) -> int:
        if self.steps is not None:
            return int(self.steps)
        return CPU_DEFAULT_STEPS if device.type == "cpu" else GPU_DEFAULT_STEPS

    def fingerprint(self) -> str:
        """Identifies what the output depends on (not the device), for batch resume."""
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class FaceReport:
    index: int
    box: list[float]
    side_px: float | None
    person_id: int | None = None
    person: str | None = None
    distance: float | None = None
    identified_by: str | None = None  # 'library' or '--person'
    prior: str | None = None  # 'personal' or 'generic'
    prior_name: str | None = None
    status: str = "untouched"  # 'restored' or 'untouched'
    reason: str | None = None  # why it was left as it is
    beta: float | None = None
    steps: int = 0
    sr_factor: float | None = None
    loss: float | None = None
    seconds: float = 0.0
    min_dilation: float | None = None


@dataclass
class PhotoReport:
    source: str
    output: str | None = None
    task: str = "super_resolution"
    scale: float = 1.0
    device: str = "cpu"
    loss: str | None = None
    faces: list[FaceReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Rendered:
    photo: Photo
    image: np.ndarray  # (H', W', 3) float in [0, 1], output scale
    alpha: np.ndarray | None
    weight: np.ndarray  # (H', W') where restored faces were blended in (max over faces)
    report: PhotoReport


@dataclass
class _Plan:
    report: FaceReport
    alignment: FaceAlignment
    prior: PriorChoice
    degradation: degrade.Degradation
    known: np.ndarray | None


class Enhancer:
    """Restores photos; create once per command (it loads the loss and models once)."""

    def __init__(
        self,
        options: EnhanceOptions,
        priors: PriorSource,
        people: PeopleIndex,
        analyzer=None,
        device: str | torch.device = "auto",
        note: Callable[[str], None] | None = None,
        progress=None,
        alpha_config: AlphaConfig = AlphaConfig(),
        wplus_config: WPlusConfig = WPlusConfig(),
        allow_random_lpips: bool = False,
    ) -> None:
        from photokit.stylegan2.losses import make_reconstruction_loss

        self.options = options
        self.priors = priors
        self.people = people
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.note = note or (lambda message: None)
        self.progress = progress
        self.alpha_config = alpha_config
        self.wplus_config = wplus_config
        self.steps = options.steps_for(self.device)
        if options.scale is not None and not 0.25 <= options.scale <= 16:
            raise PhotokitError(f"--scale {options.scale:g} is out of range (use 0.25 to 16)")
        if self.steps < 0:
            raise PhotokitError("--steps must be 0 or more")
        # Without any generator no face can be projected, so no loss is needed (faces stay as they are and
        # the report says what to install). Otherwise this fails before any photo when LPIPS's backbone is
        # missing (the message says what to install, or to pass --loss mse).
        self.loss_fn: SmallImageLoss | None = None
        if priors.base() is not None:
            self.loss_fn = SmallImageLoss(
                make_reconstruction_loss(
                    options.loss, options.lpips_net, self.device, allow_random_backbone=allow_random_lpips
                )
            )
        self._analyzer = analyzer
        self._step_seconds: dict[int, float] = {}
        self._mask_cache: tuple[Path, np.ndarray] | None = None

    # -- components ---------------------------------------------------------------------------------
    @property
    def analyzer(self):
        if self._analyzer is None:
            from photokit.faces.analyze import FaceAnalyzer

            self._analyzer = FaceAnalyzer(device=str(self.device))
        return self._analyzer

    def warnings(self) -> list[str]:
        """What the user must know about the models in use (never pretend a random model restores)."""
        out = []
        if self.loss_fn is None:
            out.append(f"no face generator is installed, so faces are left as they are: {INSTALL_HINT}")
        elif self.loss_fn.name == "mse":
            out.append("loss is MSE only (--loss mse): expect blurrier faces than with LPIPS")
        elif "random" in self.loss_fn.name:
            out.append("LPIPS runs on a random backbone (test mode): its perceptual term is meaningless")
        base = self.priors.base()
        if base is not None and base.warning():
            out.append(base.warning())
        return out

    def _known_mask(self, photo: Photo) -> np.ndarray | None:
        path = self.options.mask
        if path is None:
            return None
        if self._mask_cache is None or self._mask_cache[0] != path:
            mask_photo = load_photo(path)
            self._mask_cache = (path, (mask_photo.rgb.mean(axis=2) > 0.5).astype(np.float32))
        known = self._mask_cache[1]
        if known.shape != photo.shape:
            raise PhotokitError(
                f"mask {path.name} is {known.shape[1]}x{known.shape[0]} px but the photo is "
                f"{photo.shape[1]}x{photo.shape[0]} px: draw the mask on the photo itself"
            )
        return known

    # -- planning -----------------------------------------------------------------------------------
    def _plan(self, photo: Photo, report: PhotoReport) -> list[_Plan]:
        faces = self.analyzer.analyze(photo.rgb_uint8())
        if not faces:
            raise NoFacesError(f"{photo.path}: no faces found")
        known = self._known_mask(photo)
        forced = None
        if self.options.person is not None:
            if len(faces) == 1:
                forced = self.people.resolve(self.options.person)
            else:
                report.warnings.append(
                    f"--person ignored: it applies to single-face photos and this one has "
                    f"{len(faces)} faces (each was identified from the library)"
                )
        beta = self.options.beta_value(self.alpha_config)
        plans = []
        for index, face in enumerate(faces):
            alignment = face.alignment
            fr = FaceReport(
                index=index,
                box=[round(float(v), 1) for v in face.box],
                side_px=round(alignment.side_px, 1) if alignment is not None else None,
            )
            report.faces.append(fr)
            if forced is not None:
                fr.person_id, fr.person, fr.identified_by = forced[0], forced[1], "--person"
            elif face.embedding is not None:
                pid, name, distance = self.people.identify(face.embedding)
                fr.person_id, fr.person = pid, name
                fr.distance = round(distance, 4) if np.isfinite(distance) else None
                fr.identified_by = "library" if pid is not None else None
            if alignment is None:
                fr.reason = "no landmarks to align the face with"
                continue
            if alignment.side_px < self.options.min_face_px:
                fr.reason = f"too small to align ({alignment.side_px:.0f} px < {self.options.min_face_px:.0f} px)"
                continue
            if face.yaw is not None and abs(face.yaw) > self.options.max_yaw:
                fr.reason = f"turned too far to align (yaw {face.yaw:.0f} deg > {self.options.max_yaw:.0f})"
                continue
            try:
                choice, why = choose_prior(self.priors, fr.person_id, fr.person)
            except PhotokitError as exc:  # e.g. a prior built on another base generator: say so, keep going
                choice, why = None, str(exc)
            if choice is None:
                fr.reason = why
                continue
            fr.prior, fr.prior_name = choice.kind, choice.name
            resolution = int(choice.generator.resolution)
            if known is not None:
                hole = paste.hole_mask(known, alignment, photo.shape, 1.0)
                if not hole.any():
                    fr.reason = "the mask leaves this face untouched"
                    continue
                size = int(min(resolution, max(8, round(alignment.side_px))))
                crop_known = degrade.warp_mask_to_crop(known, alignment, size)
                degradation = degrade.inpainting(crop_known)
            else:
                degradation = degrade.super_resolution(resolution, alignment.side_px)
                if alignment.side_px >= resolution:
                    fr.reason = (
                        f"already has more detail ({alignment.side_px:.0f} px) than the {resolution} px "
                        "generator can add: left to the Lanczos upscale"
                    )
                    continue
            degradation = degrade.Degradation(degradation.size, degradation.mask, gray=photo.gray)
            fr.beta = beta if choice.kind == "personal" else None
            fr.sr_factor = round(degradation.factor(resolution), 3)
            plans.append(_Plan(fr, alignment, choice, degradation, known))
        return plans

    def _projection(self, plan: _Plan, photo: Photo):
        target = degrade.crop_target(photo.rgb, plan.alignment, plan.degradation.size)
        target_t = plan.degradation.observe(degrade.to_tensor(target, self.device))
        generator = plan.prior.generator
        if plan.prior.kind == "personal":
            return AlphaProjection(
                generator,
                plan.prior.anchors,
                target_t,
                plan.degradation,
                self.loss_fn,
                plan.report.beta,
                self.alpha_config,
            )
        return WPlusProjection(generator, target_t, plan.degradation, self.loss_fn, self.wplus_config)

    def estimate(self, plans: list[_Plan], photo: Photo) -> float:
        """Seconds the projections will take, from one timed step per generator (printed up front)."""
        total = 0.0
        for plan in plans:
            key = id(plan.prior.generator)  # the generator's cost dominates; face sizes barely matter
            if key not in self._step_seconds:
                self._step_seconds[key] = time_step(self._projection(plan, photo).step, self.device)
            total += self._step_seconds[key] * self.steps
        if plans:
            per_step = total / max(1, self.steps * len(plans))
            self.note(
                f"{photo.path.name}: "
                + describe_cost(f"{len(plans)} face(s) x projection", self.steps, per_step * len(plans), self.device)
            )
        return total

    # -- the work -----------------------------------------------------------------------------------
    def render(self, path: str | Path) -> Rendered:
        start = time.perf_counter()
        scale = self.options.effective_scale
        check_output_size(Path(path), scale)  # from the header, before gigabytes are decoded
        photo = load_photo(path)
        report = PhotoReport(
            source=str(Path(path)),
            task=self.options.task,
            scale=scale,
            device=describe_device(self.device),
            loss=self.loss_fn.name if self.loss_fn else None,
            warnings=self.warnings(),
        )
        plans = self._plan(photo, report)
        self.estimate(plans, photo)
        background = paste.lanczos_upscale(photo.rgb, scale)
        alpha = None if photo.alpha is None else np.clip(paste.lanczos_upscale(photo.alpha, scale), 0, 1)
        image = background
        weight = np.zeros(image.shape[:2], np.float32)
        # Smallest face first: where faces overlap, the larger (usually nearer) one ends on top.
        for plan in sorted(plans, key=lambda p: p.alignment.side_px):
            fr = plan.report
            face_start = time.perf_counter()
            projection = self._projection(plan, photo)
            task = None
            if self.progress is not None:
                task = self.progress.add_task(f"face {fr.index + 1} ({fr.person or 'unknown'})", total=self.steps)
            callback = (
                None
                if task is None
                else (lambda step, loss: self.progress.update(task, advance=1, status=f"loss {loss:.4f}"))
            )
            result = projection.run(self.steps, callback)
            if task is not None:
                self.progress.remove_task(task)
            restored = result.image
            if plan.known is None and self.options.consistency:
                restored = degrade.match_low_frequencies(restored, projection.target, plan.degradation)
            crop = degrade.to_image(restored)
            if photo.gray:
                crop = paste.match_gray(crop)
            if plan.known is not None:
                image, w = paste.paste_inpainting(image, crop, plan.alignment, plan.known, scale)
            else:
                image, w = paste.paste_super_resolution(image, crop, plan.alignment, scale)
            weight = np.maximum(weight, w)
            fr.status, fr.steps = "restored", result.steps
            fr.loss = round(result.reconstruction_loss, 6)
            fr.min_dilation = None if result.min_dilation is None else round(result.min_dilation, 5)
            fr.seconds = round(time.perf_counter() - face_start, 3)
        report.seconds = round(time.perf_counter() - start, 3)
        return Rendered(photo, np.clip(image, 0, 1), alpha, weight, report)

    def output_path(self, path: str | Path) -> Path:
        return output_path_for(Path(path), self.options.out_dir, self.options.suffix)

    def enhance(self, path: str | Path, target: Path | None = None) -> PhotoReport:
        """Render and write the restored copy to ``target`` (default: ``output_path``), never over the original."""
        rendered = self.render(path)
        target = Path(target) if target is not None else self.output_path(path)
        save_photo(rendered.photo, rendered.image, rendered.alpha, target)
        rendered.report.output = str(target)
        return rendered.report


class NoFacesError(PhotokitError):
    """The photo has no face to restore."""
