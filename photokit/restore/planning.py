"""Which faces of a photo get restored, with which prior and degradation; and why the others do not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photokit.errors import PhotokitError
from photokit.faces.align import FaceAlignment
from photokit.restore import degrade, paste
from photokit.restore.options import EnhanceOptions
from photokit.restore.output import Photo
from photokit.restore.priors import PeopleIndex, PriorChoice, PriorSource, choose_prior

IDENTIFIED_BY_LIBRARY = "library"  # matched against the library's people
IDENTIFIED_BY_USER = "given"  # the person was named by the user (single-face photos)


@dataclass
class FaceReport:
    index: int
    box: list[float]
    side_px: float | None
    person_id: int | None = None
    person: str | None = None
    distance: float | None = None
    identified_by: str | None = None  # IDENTIFIED_BY_LIBRARY or IDENTIFIED_BY_USER
    prior: str | None = None  # 'personal' or 'generic'
    prior_name: str | None = None
    status: str = "untouched"  # 'restored', 'rejected' (failed the checks) or 'untouched'
    reason: str | None = None  # why it was left as it is
    beta: float | None = None
    steps: int = 0  # optimiser steps taken (L-BFGS may stop early, when the objective is flat)
    optimizer: str | None = None  # 'adam', 'lbfgs' or 'gauss-newton'
    evaluations: int = 0  # generator forward+backward passes (L-BFGS: ~1.1 per step)
    forward_passes: int = 0  # forward-only generator passes (Gauss-Newton's Jacobians)
    precision: str | None = None  # the synthesis arithmetic: 'fp32' or 'bf16'
    sr_factor: float | None = None
    loss: float | None = None
    seconds: float = 0.0
    min_dilation: float | None = None
    checks: dict | None = None  # restore.verify.CheckResult: scores, verdict, reason, forced
    forced: bool = False  # pasted although the checks failed (--force)


@dataclass
class FacePlan:
    """One face that will be restored."""

    report: FaceReport
    alignment: FaceAlignment
    prior: PriorChoice
    degradation: degrade.Degradation
    known: np.ndarray | None
    landmarks: np.ndarray | None = None  # (68, 2) photo coordinates: the paste-back mask
    embedding: np.ndarray | None = None  # the input face's descriptor: the identity check


def forced_person(options: EnhanceOptions, people: PeopleIndex, faces: list, warnings: list[str]):
    """(id, name) the user named for a single-face photo, or None (with a warning when it cannot apply)."""
    if options.person is None:
        return None
    if len(faces) == 1:
        return people.resolve(options.person)
    warnings.append(
        f"the given person was ignored: it applies to single-face photos and this one has "
        f"{len(faces)} faces (each was identified from the library)"
    )
    return None


def identify(report: FaceReport, face, forced, people: PeopleIndex) -> None:
    """Fill in who the face is: the person the user named, else the library's nearest person."""
    if forced is not None:
        report.person_id, report.person, report.identified_by = forced[0], forced[1], IDENTIFIED_BY_USER
    elif face.embedding is not None:
        pid, name, distance = people.identify(face.embedding)
        report.person_id, report.person = pid, name
        report.distance = round(distance, 4) if np.isfinite(distance) else None
        report.identified_by = IDENTIFIED_BY_LIBRARY if pid is not None else None


def alignment_problem(face, options: EnhanceOptions) -> str | None:
    """Why the face cannot be aligned to the generator's frame (None: it can)."""
    alignment = face.alignment
    if alignment is None:
        return "no landmarks to align the face with"
    if alignment.side_px < options.min_face_px:
        return f"too small to align ({alignment.side_px:.0f} px < {options.min_face_px:.0f} px)"
    if face.yaw is not None and abs(face.yaw) > options.max_yaw:
        return f"turned too far to align (yaw {face.yaw:.0f} deg > {options.max_yaw:.0f})"
    return None


def degradation_for(
    alignment: FaceAlignment, resolution: int, photo: Photo, known: np.ndarray | None
) -> tuple[degrade.Degradation | None, str | None]:
    """The degradation the face is observed through (inpainting with a mask, else super-resolution), or
    (None, why) when the generator has nothing to add."""
    if known is not None:
        hole = paste.hole_mask(known, alignment, photo.shape, 1.0)
        if not hole.any():
            return None, "the mask leaves this face untouched"
        size = int(min(resolution, max(8, round(alignment.side_px))))
        degradation = degrade.inpainting(degrade.warp_mask_to_crop(known, alignment, size))
    else:
        degradation = degrade.super_resolution(resolution, alignment.side_px)
        if alignment.side_px >= resolution:
            return None, (
                f"already has more detail ({alignment.side_px:.0f} px) than the {resolution} px "
                "generator can add: left to the Lanczos upscale"
            )
    return degrade.Degradation(degradation.size, degradation.mask, gray=photo.gray), None


def plan_face(
    index: int,
    face,
    photo: Photo,
    known: np.ndarray | None,
    forced,
    beta: float | None,
    priors: PriorSource,
    people: PeopleIndex,
    options: EnhanceOptions,
) -> tuple[FaceReport, FacePlan | None]:
    """The report of one detected face and, when it can be restored, its plan."""
    alignment = face.alignment
    report = FaceReport(
        index=index,
        box=[round(float(v), 1) for v in face.box],
        side_px=round(alignment.side_px, 1) if alignment is not None else None,
    )
    identify(report, face, forced, people)
    report.reason = alignment_problem(face, options)
    if report.reason is not None:
        return report, None
    try:
        choice, why = choose_prior(priors, report.person_id, report.person)
    except PhotokitError as exc:  # e.g. a prior built on another base generator: say so, keep going
        choice, why = None, str(exc)
    if choice is None:
        report.reason = why
        return report, None
    report.prior, report.prior_name = choice.kind, choice.name
    resolution = int(choice.generator.resolution)
    degradation, report.reason = degradation_for(alignment, resolution, photo, known)
    if degradation is None:
        return report, None
    report.beta = beta if choice.kind == "personal" else None
    report.sr_factor = round(degradation.factor(resolution), 3)
    return report, FacePlan(report, alignment, choice, degradation, known, face.landmarks68, face.embedding)
