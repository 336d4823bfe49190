"""Checks a restored face must pass before it is pasted: is it still the photo, and is it still the person?

(a) Consistency: the prior's face, degraded by the same phi as the input (area downsampling to the
    face's real resolution; for inpainting only the known pixels), must reproduce the input face:
    PSNR(phi(G(w)), I) >= ``min_psnr_db``. It is measured on the generator's own output, before the
    low-frequency colour match, so it tells whether the *prior* explains the photo.
(b) Identity: the descriptor of the restored face (the library's kind: dlib's 128-D by default;
    re-detected and re-aligned like any face, through ``photokit.faces.analyze``) must be within the
    clustering's same-person distance of the person's reference faces (nearest one, as MyStyle's ID
    metric), and not farther from them than the input face itself by more than ``identity_margin``. A face of unknown person (generic prior) is
    compared with the input face's own descriptor. No face found in the restoration fails the check.

Thresholds (``VerifyConfig``) were measured with ``python -m benchmarks.run_all verify`` on the real
faces of ``../shared/data/faces/deepface``; the figures are in the README ("Checks before paste-back").
They are dlib distances; with another descriptor kind they are scaled like the clustering's
(``VerifyConfig.for_descriptor``, ``faces.descriptors.DISTANCE_SCALE``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from photokit.faces.cluster import pairwise_distances
from photokit.faces.cluster_config import ClusterConfig
from photokit.prior.selection import RefsConfig
from photokit.restore.degrade import Degradation

# (H, W, 3) float RGB in [0, 1] -> the descriptor of the face found in it, or None when none is found.
Describe = Callable[[np.ndarray], np.ndarray | None]


@dataclass(frozen=True)
class VerifyConfig:
    # Consistency at the input's resolution. Measured on deepface/ (62 faces) at x4 / x8 / x16: a Lanczos
    # upscale, degraded again, scores 31-44 dB; another photo of the same person, aligned the same way,
    # 4-18.5 dB; a random generator's face 4-12 dB. 22 dB is above every "plausible but not this photo".
    min_psnr_db: float = 22.0
    # Same-person distance of the clustering: how close two lone faces must be to join
    # (``ClusterConfig.pair_distance``, 0.5; ``max_distance`` is only the outer limit of a link).
    same_person_distance: float = ClusterConfig.pair_distance
    # Measured: resampling a face x2 (area down, Lanczos up; no identity lost) moves its distance to the
    # person's other photos by at most 0.02; x4 by up to 0.12 (95th percentile 0.11), x8 by up to 0.41.
    # 0.05 is above the descriptor's own noise and below what a x4 blur costs.
    identity_margin: float = 0.05
    # References closer than this to the input face are the same shot (the photo itself, if it is in
    # the library), which would make the check trivially pass: they are left out.
    same_shot_distance: float = RefsConfig.duplicate_distance

    def for_descriptor(self, kind: str) -> VerifyConfig:
        """This config with its distances in ``kind``'s units (the values above are dlib's)."""
        from photokit.faces.cluster_config import in_units_of

        return in_units_of(kind, self, "same_person_distance", "identity_margin", "same_shot_distance")


@dataclass
class CheckResult:
    """Scores and verdict of one restored face (JSON-ready)."""

    passed: bool
    reason: str | None = None
    consistency_psnr: float | None = None  # dB, phi(restored) vs the input face
    identity_distance: float | None = None  # restored face -> nearest reference (or the input face)
    input_distance: float | None = None  # input face -> nearest reference
    identity_against: str = "references"  # 'references' or 'input face'
    references: int = 0
    forced: bool = False  # pasted although it failed (--force)

    def to_json(self) -> dict:
        return asdict(self)


def psnr(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2), over the pixels where ``weight`` is 1."""
    err = (a.clamp(-1, 1) - b.clamp(-1, 1)).pow(2)
    if weight is not None:
        w = weight.expand_as(err)
        mse = (err * w).sum() / w.sum().clamp_min(1)
    else:
        mse = err.mean()
    return float(10 * torch.log10(4.0 / mse.clamp_min(1e-12)))


def consistency_psnr(restored: torch.Tensor, observed: torch.Tensor, degradation: Degradation) -> float:
    """PSNR(phi(restored), observed) over the known pixels: (1, 3, R, R) and (1, 3, s, s) in [-1, 1]."""
    with torch.no_grad():
        degraded = degradation(restored.to(observed.device, observed.dtype))
    mask = None if degradation.mask is None else degradation.mask.to(observed.device, observed.dtype)
    return psnr(degraded, observed, mask)


def nearest_distance(descriptor: np.ndarray, references: np.ndarray) -> float:
    return float(pairwise_distances(descriptor[None], references).min())


def identity_verdict(
    restored: np.ndarray | None,
    input_face: np.ndarray | None,
    references: np.ndarray,
    config: VerifyConfig = VerifyConfig(),
) -> CheckResult:
    """Identity part of the checks (pure): descriptors (D,), references (M, D) of one descriptor kind."""
    if restored is None:
        return CheckResult(False, "no face found in the restoration")
    refs = np.asarray(references, np.float32).reshape(-1, restored.shape[-1])
    if input_face is not None and len(refs):
        refs = refs[pairwise_distances(input_face[None], refs)[0] >= config.same_shot_distance]
    if len(refs) == 0:
        if input_face is None:
            return CheckResult(False, "no reference faces and no descriptor of the input face to compare with")
        d = float(np.linalg.norm(restored - input_face))
        result = CheckResult(True, None, identity_distance=round(d, 4), identity_against="input face")
        if d > config.same_person_distance:
            result.passed = False
            result.reason = f"identity: restored face is {d:.2f} from the input face (> {config.same_person_distance})"
        return result
    d = nearest_distance(restored, refs)
    d_in = nearest_distance(input_face, refs) if input_face is not None else None
    result = CheckResult(
        True,
        None,
        identity_distance=round(d, 4),
        input_distance=None if d_in is None else round(d_in, 4),
        references=len(refs),
    )
    if d > config.same_person_distance:
        result.passed = False
        result.reason = (
            f"identity: restored face is {d:.2f} from the person's nearest reference face "
            f"(same-person distance {config.same_person_distance})"
        )
    elif d_in is not None and d > d_in + config.identity_margin:
        result.passed = False
        result.reason = (
            f"identity: restored face is farther from the person ({d:.2f}) than the input face ({d_in:.2f}) "
            f"by more than {config.identity_margin}"
        )
    return result


def verify_face(
    restored: torch.Tensor,
    observed: torch.Tensor,
    degradation: Degradation,
    describe: Describe,
    input_descriptor: np.ndarray | None,
    references: np.ndarray,
    config: VerifyConfig = VerifyConfig(),
) -> CheckResult:
    """Both checks on one projection result (``restored`` (1, 3, R, R) in [-1, 1], the generator's face)."""
    score = consistency_psnr(restored, observed, degradation)
    image = ((restored.detach()[0].float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    result = identity_verdict(describe(image), input_descriptor, references, config)
    result.consistency_psnr = round(score, 2)
    if score < config.min_psnr_db:
        consistency = (
            f"consistency: degraded again, the restored face matches the input at {score:.1f} dB "
            f"(< {config.min_psnr_db:g} dB)"
        )
        result.reason = consistency if result.passed else f"{consistency}; {result.reason}"
        result.passed = False
    return result


def analyzer_describe(analyzer) -> Describe:
    """Descriptor of the largest face a ``FaceAnalyzer`` finds in an aligned crop (None when none)."""

    def describe(image: np.ndarray) -> np.ndarray | None:
        rgb = np.clip(np.rint(np.asarray(image) * 255), 0, 255).astype(np.uint8)
        faces = [f for f in analyzer.analyze(rgb) if f.embedding is not None]
        if not faces:
            return None
        return max(faces, key=lambda f: f.size_px).embedding

    return describe
