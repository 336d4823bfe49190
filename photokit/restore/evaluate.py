"""MyStyle's enhancement evaluation (sec. 5.2, fig. 9) on held-out faces of one person.

Each held-out face (an aligned crop at the generator's resolution: the ground truth) is degraded per
task and restored by three methods:

- ``personal``: projection into the person's alpha+ space (beta 0.05 for SR, 0.02 for inpainting);
- ``generic``: projection into the base generator's W+ (the domain prior);
- ``classical``: Lanczos upscaling (SR) or OpenCV's Telea inpainting.

Tasks: ``srF`` = area downsampling by F (the paper's SR input is 32 px, i.e. x32 at 1024 px), and
``inpaint`` = a box over the eyes and nose (a fixed mask, so every method sees the same hole).
Scores per sample: PSNR against the ground truth (inpainting: over the hole), LPIPS(AlexNet) when its
weights are installed, and identity as the paper's ID metric does it, but with dlib's descriptors: the
distance of the restored face to the *nearest* of the person's other faces (lower is better; the same
person is < 0.5). As the paper warns, reconstruction scores are not the whole story: details may be
valid without matching one ground truth; identity is the point of a personal prior.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum

import cv2
import numpy as np
import torch

from photokit.errors import PhotokitError
from photokit.prior.alpha import AlphaConfig
from photokit.restore.degrade import Degradation, inpainting, to_image
from photokit.restore.project import AlphaProjection, WPlusConfig, WPlusProjection
from photokit.restore.verify import Describe, nearest_distance, psnr

TASKS = ("sr8", "sr16", "sr32", "inpaint")
# The inpainting hole as fractions of the aligned crop (rows, columns): eyes, nose and upper lip.
INPAINT_BOX = ((0.36, 0.66), (0.28, 0.72))


class Method(StrEnum):
    PERSONAL = "personal"
    GENERIC = "generic"
    CLASSICAL = "classical"  # Lanczos for SR, Telea for inpainting


@dataclass
class Sample:
    face_id: int
    task: str
    method: str
    psnr: float
    lpips: float | None
    identity_distance: float | None  # None: no face found in the restoration
    seconds: float


@dataclass
class MethodSummary:
    task: str
    method: str
    samples: int
    psnr_mean: float
    lpips_mean: float | None
    identity_mean: float | None  # over the restorations where a face was found
    faces_found: int


@dataclass
class EvalResult:
    tasks: list[str]
    samples: list[Sample] = field(default_factory=list)
    crops: dict[tuple[int, str], dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def summaries(self) -> list[MethodSummary]:
        out = []
        for task in self.tasks:
            for method in Method:
                rows = [s for s in self.samples if s.task == task and s.method == method.value]
                if not rows:
                    continue
                ids = [s.identity_distance for s in rows if s.identity_distance is not None]
                lp = [s.lpips for s in rows if s.lpips is not None]
                out.append(
                    MethodSummary(
                        task,
                        method.value,
                        len(rows),
                        round(float(np.mean([s.psnr for s in rows])), 3),
                        round(float(np.mean(lp)), 4) if lp else None,
                        round(float(np.mean(ids)), 4) if ids else None,
                        len(ids),
                    )
                )
        return out

    def to_json(self) -> dict:
        return {
            "tasks": self.tasks,
            "summary": [asdict(s) for s in self.summaries()],
            "samples": [asdict(s) for s in self.samples],
        }


def parse_tasks(text: str) -> list[str]:
    tasks = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise PhotokitError(f"tasks {text!r}: use a comma-separated list of {', '.join(TASKS)}")
    return list(dict.fromkeys(tasks))


def sr_factor(task: str) -> int:
    return int(task[2:])


def task_degradation(task: str, resolution: int) -> Degradation:
    """phi of a task at the generator's resolution (PhotokitError when the input would be under 4 px)."""
    if task == "inpaint":
        known = np.ones((resolution, resolution), np.float32)
        (r0, r1), (c0, c1) = INPAINT_BOX
        known[round(r0 * resolution) : round(r1 * resolution), round(c0 * resolution) : round(c1 * resolution)] = 0
        return inpainting(known)
    size = resolution // sr_factor(task)
    if size < 4:
        raise PhotokitError(f"{task}: a {resolution} px generator leaves a {size} px input; use a smaller factor")
    return Degradation(size=size)


def classical(task: str, observed: torch.Tensor, degradation: Degradation, resolution: int) -> torch.Tensor:
    """Lanczos upscaling (SR) or Telea inpainting (OpenCV), (1, 3, R, R) in [-1, 1]."""
    image = to_image(observed)
    if degradation.mask is None:
        out = cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_LANCZOS4)
    else:
        hole = (degradation.mask[0, 0].cpu().numpy() < 0.5).astype(np.uint8) * 255
        out = cv2.inpaint(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8), hole, 3, cv2.INPAINT_TELEA)
        out = out.astype(np.float32) / 255
    return torch.from_numpy(np.clip(out, 0, 1)).permute(2, 0, 1)[None].float() * 2 - 1


@dataclass
class Restorers:
    """What the evaluation restores with: the person's tuned generator and anchors, the base generator."""

    personal: torch.nn.Module
    anchors: torch.Tensor
    base: torch.nn.Module
    loss_fn: Callable
    steps: int
    alpha_config: AlphaConfig = field(default_factory=AlphaConfig)
    wplus_config: WPlusConfig = field(default_factory=WPlusConfig)

    def run(self, method: Method, task: str, observed: torch.Tensor, phi: Degradation) -> torch.Tensor:
        if method is Method.CLASSICAL:
            return classical(task, observed, phi, int(self.base.resolution))
        if method is Method.PERSONAL:
            beta = self.alpha_config.beta_for("inpaint" if phi.mask is not None else "super_resolution")
            projection = AlphaProjection(
                self.personal, self.anchors, observed, phi, self.loss_fn, beta, self.alpha_config
            )
        else:
            projection = WPlusProjection(self.base, observed, phi, self.loss_fn, self.wplus_config)
        return projection.run(self.steps).image.detach()


def _score(
    restored: torch.Tensor,
    truth: torch.Tensor,
    phi: Degradation,
    lpips_model,
    describe: Describe | None,
    references: np.ndarray,
) -> tuple[float, float | None, float | None, np.ndarray]:
    hole = None if phi.mask is None else (1 - phi.mask).to(truth.device, truth.dtype)
    score = psnr(restored, truth, hole)
    lp = None
    if lpips_model is not None:
        with torch.no_grad():
            lp = float(lpips_model(restored.clamp(-1, 1), truth, normalize=False).mean())
    image = to_image(restored)
    identity = None
    if describe is not None and len(references):
        descriptor = describe(image)
        identity = None if descriptor is None else nearest_distance(descriptor, references)
    return score, lp, identity, image


def evaluate(
    truths: torch.Tensor,
    face_ids: list[int],
    tasks: list[str],
    restorers: Restorers,
    describe: Describe | None = None,
    references: np.ndarray | None = None,
    lpips_model=None,
    methods: tuple[Method, ...] = tuple(Method),
    on_sample: Callable[[Sample], None] | None = None,
) -> EvalResult:
    """Degrade each ground-truth face (K, 3, R, R) in [-1, 1] per task, restore it with each method, score."""
    references = np.zeros((0, 0), np.float32) if references is None else np.asarray(references)  # none: any width
    resolution = int(truths.shape[-1])
    result = EvalResult(list(tasks))
    for task in tasks:
        phi = task_degradation(task, resolution)
        for truth, face_id in zip(truths, face_ids):
            truth = truth[None]
            observed = phi(truth)
            crops = {"truth": to_image(truth), "input": to_image(observed)}
            for method in methods:
                start = time.perf_counter()
                restored = restorers.run(method, task, observed, phi)
                score, lp, identity, image = _score(restored, truth, phi, lpips_model, describe, references)
                sample = Sample(
                    int(face_id),
                    task,
                    method.value,
                    round(score, 3),
                    None if lp is None else round(lp, 4),
                    None if identity is None else round(identity, 4),
                    round(time.perf_counter() - start, 3),
                )
                result.samples.append(sample)
                crops[method.value] = image
                if on_sample is not None:
                    on_sample(sample)
            result.crops[(int(face_id), task)] = crops
    return result
