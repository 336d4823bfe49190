"""One photo in, one restored photo out: detect, identify, route each face to its prior, project, paste back.

``Enhancer`` holds what stays the same across an album (device, loss, priors, people, face analyzer) and
orchestrates the steps; ``Enhancer.render(path)`` does the work in memory and ``Enhancer.enhance(path)`` also
writes the output. The steps live beside it: option checks (``options.py``), which faces and how
(``planning.py``), the models (``loading.py``), the mask (``masks.py``) and the cost estimate (``cost.py``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from photokit.devices import describe_device, resolve_device
from photokit.errors import PhotokitError
from photokit.faces.vocab import DescriptorKind
from photokit.prior.alpha import AlphaConfig
from photokit.prior.vocab import ProjectionOptimizer
from photokit.reporting import NULL_REPORTER, Reporter, reported_task
from photokit.restore import degrade, paste
from photokit.restore import mask as face_mask
from photokit.restore.cost import StepCosts
from photokit.restore.gauss_newton import GaussNewtonConfig
from photokit.restore.loading import default_analyzer, load_restoration_loss, model_warnings
from photokit.restore.masks import KnownMask
from photokit.restore.optimize import EarlyStop
from photokit.restore.options import (
    EnhanceOptions,
    check_file_output_size,
    check_output_size,
)
from photokit.restore.output import Photo, load_photo, output_path_for, save_photo
from photokit.restore.planning import FacePlan, FaceReport, forced_person, plan_face
from photokit.restore.priors import PeopleIndex, PriorSource
from photokit.restore.project import AlphaProjection, SmallImageLoss, WPlusConfig, WPlusProjection
from photokit.restore.verify import CheckResult, Describe, VerifyConfig, analyzer_describe, verify_face
from photokit.stylegan2.timing import describe_cost


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


class Enhancer:
    """Restores photos; create once per command (it loads the loss and models once)."""

    def __init__(
        self,
        options: EnhanceOptions,
        priors: PriorSource,
        people: PeopleIndex,
        analyzer=None,
        device: str | torch.device = "auto",
        reporter: Reporter = NULL_REPORTER,
        alpha_config: AlphaConfig = AlphaConfig(),
        wplus_config: WPlusConfig = WPlusConfig(),
        allow_random_lpips: bool = False,
        verify_config: VerifyConfig = VerifyConfig(),
        describe: Describe | None = None,
        on_face: Callable[[str, FaceReport, np.ndarray, np.ndarray], None] | None = None,
    ) -> None:
        """``describe`` (crop -> descriptor) defaults to the face analyzer; ``on_face(source, report, before,
        after)`` receives each projected face's input crop and restored crop (float RGB in [0, 1]) for reports."""
        options.check()
        self.options = options
        self.priors = priors
        self.people = people
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.reporter = reporter
        self.optimizer = options.optimizer_for(self.device)
        self.alpha_config = dataclasses.replace(alpha_config, optimizer=self.optimizer)
        self.wplus_config = dataclasses.replace(wplus_config, optimizer=self.optimizer)
        # Gauss-Newton stops on its own; W+ projections run it as L-BFGS (restore/project.py).
        quasi_newton = self.optimizer in (ProjectionOptimizer.LBFGS, ProjectionOptimizer.GAUSS_NEWTON)
        self.early_stop = EarlyStop() if quasi_newton else None
        self.steps = options.steps_for(self.device)
        self.precision = options.precision_for(self.device)
        self.loss_fn: SmallImageLoss | None = load_restoration_loss(options, priors, self.device, allow_random_lpips)
        self._analyzer = analyzer
        self._costs = StepCosts(self.device)
        self._mask = KnownMask(options.mask)
        self.verify_config = verify_config
        self._describe = describe
        self.on_face = on_face

    @property
    def analyzer(self):
        if self._analyzer is None:
            self._analyzer = default_analyzer(self.device, self.people)
        return self._analyzer

    def warnings(self) -> list[str]:
        """What the user must know about the models in use (never pretend a random model restores)."""
        return model_warnings(self.loss_fn, self.priors)

    def _plan(self, photo: Photo, report: PhotoReport) -> list[FacePlan]:
        faces = self.analyzer.analyze(photo.rgb_uint8())
        if not faces:
            raise NoFacesError(f"{photo.path}: no faces found")
        known = self._mask.for_photo(photo)
        forced = forced_person(self.options, self.people, faces, report.warnings)
        beta = self.options.beta_value(self.alpha_config)
        plans = []
        for index, face in enumerate(faces):
            face_report, plan = plan_face(
                index, face, photo, known, forced, beta, self.priors, self.people, self.options
            )
            report.faces.append(face_report)
            if plan is not None:
                plans.append(plan)
        return plans

    def _projection(self, plan: FacePlan, photo: Photo):
        target = degrade.crop_target(photo.rgb, plan.alignment, plan.degradation.size)
        target_t = plan.degradation.observe(degrade.to_tensor(target, self.device))
        generator = plan.prior.generator
        generator.synthesis.precision = self.precision
        if plan.prior.kind == "personal":
            return AlphaProjection(
                generator,
                plan.prior.anchors,
                target_t,
                plan.degradation,
                self.loss_fn,
                plan.report.beta,
                self.alpha_config,
                self.early_stop,
            )
        return WPlusProjection(generator, target_t, plan.degradation, self.loss_fn, self.wplus_config, self.early_stop)

    def estimate(self, plans: list[FacePlan], photo: Photo) -> float:
        """Seconds the projections will take, from one timed step per generator (told up front)."""
        jobs = [
            (id(plan.prior.generator), lambda plan=plan: self._projection(plan, photo).step, self._cost_in_steps(plan))
            for plan in plans
        ]
        total = self._costs.total(jobs)
        if plans:
            per_step = total / max(1, self.steps * len(plans))
            self.reporter.note(
                f"{photo.path.name}: "
                + describe_cost(f"{len(plans)} face(s) x projection", self.steps, per_step * len(plans), self.device)
            )
        return total

    def _cost_in_steps(self, plan: FacePlan) -> float:
        """A face's projection in first-step equivalents (Gauss-Newton's later steps cost more)."""
        if self.optimizer != ProjectionOptimizer.GAUSS_NEWTON or plan.prior.kind != "personal":
            return self.steps
        num_params = plan.prior.anchors.shape[0] * (int(plan.prior.generator.num_ws) + 1)
        return GaussNewtonConfig().cost_in_steps(self.steps, num_params)

    def _restore_face(self, plan: FacePlan, photo: Photo, image: np.ndarray, scale: float, source: str = ""):
        """Project one face, check it and paste it into ``image``; returns (image, blend weight)."""
        fr = plan.report
        face_start = time.perf_counter()
        projection = self._projection(plan, photo)
        description = f"face {fr.index + 1} ({fr.person or 'unknown'})"
        with reported_task(self.reporter, f"face {fr.index}", description, self.steps) as task:
            result = projection.run(
                self.steps, lambda step, loss: self.reporter.task_advanced(task, 1, f"loss {loss:.4f}")
            )
        restored = result.image
        if plan.known is None and self.options.consistency:
            restored = degrade.match_low_frequencies(restored, projection.target, plan.degradation)
        crop = degrade.to_image(restored)
        if photo.gray:
            crop = paste.match_gray(crop)
        fr.steps, fr.loss = result.steps, round(result.reconstruction_loss, 6)
        fr.optimizer, fr.evaluations, fr.forward_passes = result.optimizer, result.evaluations, result.forward_passes
        fr.precision = str(self.precision)
        fr.min_dilation = None if result.min_dilation is None else round(result.min_dilation, 5)
        check = self._check(plan, projection, result.image)
        if self.on_face is not None:
            self.on_face(source, fr, degrade.to_image(projection.target), crop)
        fr.seconds = round(time.perf_counter() - face_start, 3)
        if not check.passed and not check.forced:
            fr.status, fr.reason = "rejected", f"failed the checks: {check.reason}"
            return image, np.zeros(image.shape[:2], np.float32)
        if plan.known is not None:
            image, weight = paste.paste_inpainting(image, crop, plan.alignment, plan.known, scale)
        else:
            mask = face_mask.crop_mask_for(plan.alignment, plan.landmarks)
            image, weight = paste.paste_super_resolution(image, crop, plan.alignment, scale, mask=mask)
        fr.status = "restored"
        return image, weight

    def _check(self, plan: FacePlan, projection, restored) -> CheckResult:
        """Consistency and identity of the generator's face (restore.verify); --force lets failures through."""
        fr = plan.report
        if not self.options.verify:
            return CheckResult(True, "checks disabled")
        kind = getattr(self.analyzer, "descriptor_kind", DescriptorKind.DLIB128)
        references = np.zeros((0, DescriptorKind(kind).dim), np.float32)
        lookup = getattr(self.people, "embeddings", None)
        if fr.person_id is not None and lookup is not None:
            references = lookup(fr.person_id)
        if self._describe is None:
            self._describe = analyzer_describe(self.analyzer)
        check = verify_face(
            restored,
            projection.target,
            projection.degradation,
            self._describe,
            plan.embedding,
            references,
            self.verify_config.for_descriptor(kind),
        )
        check.forced = fr.forced = bool(self.options.force and not check.passed)
        fr.checks = check.to_json()
        return check

    def render(self, path: str | Path) -> Rendered:
        start = time.perf_counter()
        scale = self.options.effective_scale
        check_file_output_size(Path(path), scale)  # from the header, before gigabytes are decoded
        photo = load_photo(path)
        check_output_size(photo.path.name, photo.shape, scale)
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
        image = paste.lanczos_upscale(photo.rgb, scale)
        alpha = None if photo.alpha is None else np.clip(paste.lanczos_upscale(photo.alpha, scale), 0, 1)
        weight = np.zeros(image.shape[:2], np.float32)
        # Smallest face first: where faces overlap, the larger (usually nearer) one ends on top.
        for plan in sorted(plans, key=lambda p: p.alignment.side_px):
            image, w = self._restore_face(plan, photo, image, scale, report.source)
            weight = np.maximum(weight, w)
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
