"""Identity-preserving editing of a real photo (MyStyle sec. 3.4 and B.4), back in the photo.

For each face of the chosen person: project it into their alpha+ space (``restore.project``, the same
projection ``enhance`` uses, at the face's own resolution), move its coefficients along each edit
direction in alpha space under the chosen policy (``prior.editing``), render, and paste the edited face
back into the full photo (``restore.paste``), which stays bit-for-bit the same outside the face mask.

The edited face gets the photo's colour and lighting the way restoration does, through a low-passed
residual, but the residual is the one of the *unedited* projection: the edit itself is never pulled
back towards the photo.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from photokit.errors import PhotokitError
from photokit.prior import editing
from photokit.prior.alpha import AlphaConfig, latent_from_alpha, min_dilation
from photokit.prior.directions import Direction, DirectionCatalog
from photokit.prior.editing import EDIT_BETA
from photokit.prior.vocab import EditPolicy
from photokit.reporting import NULL_REPORTER, NoteLevel, Reporter
from photokit.restore import degrade, paste
from photokit.restore.loading import default_analyzer
from photokit.restore.output import Photo, load_photo, output_path_for, save_photo
from photokit.restore.priors import PeopleIndex
from photokit.restore.project import AlphaProjection, SmallImageLoss
from photokit.stylegan2.timing import describe_cost, time_step

CPU_DEFAULT_STEPS = 100  # as `photokit enhance`: the paper's 1000 steps are GPU work
GPU_DEFAULT_STEPS = AlphaConfig.steps
MIN_FACE_PX = 24.0


@dataclass(frozen=True)
class EditRequest:
    name: str
    amount: float


@dataclass(frozen=True)
class EditOptions:
    edits: tuple[EditRequest, ...]
    policy: EditPolicy = EditPolicy.STOP
    beta: float = EDIT_BETA
    steps: int | None = None  # None: GPU_DEFAULT_STEPS on a GPU, CPU_DEFAULT_STEPS on a CPU
    suffix: str = "_edited"
    within_hull: bool = True  # gamma keeps sum(alpha) = 1 (see prior/editing.py)

    def steps_for(self, device: torch.device) -> int:
        if self.steps is not None:
            return int(self.steps)
        return CPU_DEFAULT_STEPS if device.type == "cpu" else GPU_DEFAULT_STEPS


@dataclass
class FaceEdit:
    index: int
    box: list[float]
    distance: float | None = None
    status: str = "untouched"  # 'edited' or 'untouched'
    reason: str | None = None
    projection_loss: float | None = None
    start_dilation: float | None = None
    final_dilation: float | None = None
    edits: list[dict] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class EditReport:
    source: str
    person_id: int
    person: str | None
    policy: str
    beta: float
    steps: int
    device: str
    loss: str
    output: str | None = None
    faces: list[FaceEdit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class EditedPhoto:
    photo: Photo
    image: np.ndarray  # (H, W, 3) float in [0, 1]
    weight: np.ndarray  # (H, W) where edited faces were blended in
    report: EditReport


def free_output_path(source: Path, suffix: str = "_edited") -> Path:
    """``<stem>_edited.<ext>`` next to the photo, or ``_edited-2``, ``-3``, ... : never an existing file."""
    first = output_path_for(Path(source), None, suffix)
    candidate, n = first, 1
    while candidate.exists():
        n += 1
        candidate = first.with_name(f"{first.stem}-{n}{first.suffix}")
    return candidate


@dataclass
class _Move:
    direction: Direction
    amount: float
    gamma: torch.Tensor  # alpha coordinates of the direction
    kept: float  # fraction of the direction inside the anchors' span


class PhotoEditor:
    """Edits one person's faces; create once per command (directions are resolved up front)."""

    def __init__(
        self,
        prior,  # PersonalPrior-like: .generator, .anchors, .person_id, .person_name
        catalog: DirectionCatalog,
        people: PeopleIndex,
        options: EditOptions,
        loss_fn: SmallImageLoss,
        device: torch.device,
        analyzer=None,
        reporter: Reporter = NULL_REPORTER,
        alpha_config: AlphaConfig = AlphaConfig(),
        warnings: list[str] | None = None,
        intro: str | None = None,
    ) -> None:
        if not options.edits:
            raise PhotokitError("no edit to apply: give at least one direction and amount")
        if options.beta < 0:
            raise PhotokitError(f"the allowed dilation beta must be 0 or more, not {options.beta:g}")
        self.prior, self.people, self.options, self.loss_fn = prior, people, options, loss_fn
        self.device, self._analyzer, self.reporter = device, analyzer, reporter
        self.alpha_config = alpha_config
        self.warnings = list(warnings or [])
        self.intro = intro  # said once, with the warnings, when there is work to do (not before an error)
        self.steps = options.steps_for(device)
        anchors = prior.anchors.detach().float().cpu()
        self.anchors = anchors
        self.moves = [self._move(catalog.get(e.name), e.amount, anchors) for e in options.edits]
        self._step_seconds: float | None = None

    def _move(self, direction: Direction, amount: float, anchors: torch.Tensor) -> _Move:
        vector = direction.vector
        gamma = editing.direction_coordinates(anchors, vector, self.options.within_hull)
        return _Move(direction, float(amount), gamma, editing.kept_fraction(anchors, vector, gamma))

    @property
    def analyzer(self):
        if self._analyzer is None:
            self._analyzer = default_analyzer(self.device, self.people)
        return self._analyzer

    def _faces_of_person(self, photo: Photo) -> tuple[list, list[FaceEdit], str]:
        """The person's faces in the photo (identified against the library) and a summary of the others."""
        faces = self.analyzer.analyze(photo.rgb_uint8())
        mine, reports, others = [], [], []
        for index, face in enumerate(faces):
            pid, name, distance = (None, None, float("inf"))
            if face.embedding is not None:
                pid, name, distance = self.people.identify(face.embedding)
            if pid != self.prior.person_id:
                others.append(name or (f"person {pid}" if pid is not None else "unknown"))
                continue
            report = FaceEdit(index, [round(float(v), 1) for v in face.box], round(float(distance), 4))
            mine.append((face, report))
            reports.append(report)
        return mine, reports, ", ".join(others) or "none"

    def _projection(self, photo: Photo, alignment, resolution: int) -> tuple[AlphaProjection, degrade.Degradation]:
        degradation = degrade.super_resolution(resolution, alignment.side_px)
        degradation = degrade.Degradation(degradation.size, None, gray=photo.gray)
        target = degrade.crop_target(photo.rgb, alignment, degradation.size)
        target_t = degradation.observe(degrade.to_tensor(target, self.device))
        projection = AlphaProjection(
            self.prior.generator,
            self.prior.anchors,
            target_t,
            degradation,
            self.loss_fn,
            self.options.beta,
            self.alpha_config,
        )
        return projection, degradation

    def _announce_cost(self, photo: Photo, alignment, resolution: int, faces: int) -> None:
        if self.intro is not None:
            self.reporter.note(self.intro)
            for warning in self.warnings:
                self.reporter.note(warning, NoteLevel.WARNING)
            self.intro = None
        if self._step_seconds is None:
            probe, _ = self._projection(photo, alignment, resolution)
            self._step_seconds = time_step(probe.step, self.device)
        self.reporter.note(
            f"{photo.path.name}: "
            + describe_cost(f"{faces} face(s) x projection", self.steps, self._step_seconds * faces, self.device)
        )

    def _apply_moves(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
        alpha, records = coefficients.detach().float().cpu(), []
        for move in self.moves:
            alpha, outcome = editing.resolve_edit(
                alpha, move.gamma, move.amount, self.options.beta, self.options.policy, self.anchors
            )
            record = {"name": move.direction.name, "kind": move.direction.kind.value, "unit": move.direction.unit}
            record.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(outcome).items()})
            record["kept_fraction"] = round(move.kept, 4)
            records.append(record)
        return alpha, records

    def _edit_face(self, photo: Photo, face, report: FaceEdit, image: np.ndarray):
        start = time.perf_counter()
        generator = self.prior.generator
        projection, degradation = self._projection(photo, face.alignment, int(generator.resolution))
        key = f"edit-face-{report.index}"
        self.reporter.task_started(key, f"face {report.index + 1}: projection", total=self.steps)
        result = projection.run(self.steps, lambda step, loss: self.reporter.task_advanced(key, 1, f"loss {loss:.4f}"))
        self.reporter.task_finished(key)
        edited_alpha, report.edits = self._apply_moves(result.coefficients)
        ws = latent_from_alpha(edited_alpha, self.anchors).to(self.device)
        with torch.no_grad():
            edited = generator.synthesis(ws.unsqueeze(0), noise_mode="const")
            # the unedited projection's colour/lighting residual, carried over unchanged
            correction = degrade.match_low_frequencies(result.image, projection.target, degradation) - result.image
        crop = degrade.to_image(edited + correction)
        if photo.gray:
            crop = paste.match_gray(crop)
        image, weight = paste.paste_super_resolution(image, crop, face.alignment, 1.0)
        report.status = "edited"
        report.projection_loss = round(result.reconstruction_loss, 6)
        report.start_dilation = round(min_dilation(result.coefficients), 6)
        report.final_dilation = round(min_dilation(edited_alpha), 6)
        report.seconds = round(time.perf_counter() - start, 3)
        return image, weight

    def render(self, path: str | Path) -> EditedPhoto:
        start = time.perf_counter()
        photo = load_photo(path)
        report = EditReport(
            source=str(path),
            person_id=int(self.prior.person_id),
            person=self.prior.person_name,
            policy=self.options.policy.value,
            beta=self.options.beta,
            steps=self.steps,
            device=str(self.device),
            loss=getattr(self.loss_fn, "name", "loss"),
            warnings=list(self.warnings),
        )
        who = self.prior.person_name or f"person {self.prior.person_id}"
        mine, report.faces, others = self._faces_of_person(photo)
        if not mine:
            raise PhotokitError(f"{Path(path).name}: no face of {who} found (faces identified: {others})")
        resolution = int(self.prior.generator.resolution)
        usable = []
        for face, fr in mine:
            if face.alignment is None or face.alignment.side_px < MIN_FACE_PX:
                fr.reason = "too small or without landmarks to align"
            else:
                usable.append((face, fr))
        if not usable:
            raise PhotokitError(f"{Path(path).name}: the face of {who} is too small to edit")
        self._announce_cost(photo, usable[0][0].alignment, resolution, len(usable))
        image = photo.rgb.copy()
        weight = np.zeros(photo.shape, np.float32)
        for face, fr in sorted(usable, key=lambda item: item[0].alignment.side_px):
            if face.alignment.side_px > 1.5 * resolution:
                report.warnings.append(
                    f"face {fr.index + 1} is {face.alignment.side_px:.0f} px but the generator makes {resolution} px: "
                    "the edited face is softer than the rest of the photo (a 1024 px generator keeps more detail)"
                )
            image, w = self._edit_face(photo, face, fr, image)
            weight = np.maximum(weight, w)
        report.seconds = round(time.perf_counter() - start, 3)
        return EditedPhoto(photo, np.clip(image, 0, 1), weight, report)

    def edit(self, path: str | Path) -> EditReport:
        """Render and write the edited copy next to the photo under a free name (never over anything)."""
        rendered = self.render(path)
        target = free_output_path(Path(path), self.options.suffix)
        save_photo(rendered.photo, rendered.image, rendered.photo.alpha, target)
        rendered.report.output = str(target)
        return rendered.report
