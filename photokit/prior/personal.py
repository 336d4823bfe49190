"""Building a personal prior: references -> anchors (W inversion) -> tuning -> stored prior.

Each stage resumes what a previous, interrupted run finished: the reference set is reused, finished
inversion batches are kept in ``work/anchors.partial.safetensors`` and tuning restarts from its checkpoint.
The folder layout and loading live in ``storage.py``; presets and the cost-based schedule in ``schedule.py``;
resolving a build and its up-front cost estimate (shared with the gallery) in ``estimate.py``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import torch

from photokit.prior.adapters import rank_range, stored_bytes, stored_ranks, synthesis_parameters
from photokit.prior.anchors import compute_anchors
from photokit.prior.estimate import BuildEstimate, BuildSetup, plan_build, schedule_for, start_build
from photokit.prior.meta import FORMAT, FORMAT_VERSION, TUNING_CHECKPOINT, prior_summary
from photokit.prior.projector import ProjectorConfig
from photokit.prior.refs import ReferenceSet, build_reference_set, load_reference_images, read_reference_set
from photokit.prior.schedule import BuildOptions, BuildPlan
from photokit.prior.selection import RefsConfig
from photokit.prior.storage import save_prior
from photokit.prior.tuning import TuningConfig, TuningResult, tune
from photokit.reporting import NULL_REPORTER, Reporter, reported_task
from photokit.settings import Settings
from photokit.store.atomic import atomic_write_text
from photokit.stylegan2.vocab import LossKind


@dataclass
class BuiltPrior:
    """A finished build: the stored prior's description (``prior.json``) and where it lies."""

    meta: dict
    folder: Path
    notes: list[str] = field(default_factory=list)

    @property
    def person_id(self) -> int:
        return int(self.meta["person_id"])

    def summary(self) -> dict:
        return prior_summary(self.meta)

    def to_json(self) -> dict:
        return self.meta


def _reference_stage(db, b: BuildSetup, max_refs: int, options: BuildOptions, reporter: Reporter) -> ReferenceSet:
    """Stage 1: the reference set, reused when an earlier run picked it with the same limits."""
    resolution = b.base.generator.resolution
    refs = None if options.restart else read_reference_set(b.folder)
    if refs is not None and (refs.resolution != resolution or refs.config.get("max_refs") != max_refs):
        refs = None
    if refs is None:
        refs = build_reference_set(
            db, str(b.person_id), resolution, b.folder, RefsConfig(max_refs=max_refs), reporter=reporter
        )
        dropped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in refs.counts().items() if k != "kept")
        reporter.note(f"references: {len(refs.faces)} kept; dropped: {dropped or 'none'}")
    else:
        reporter.note(f"references: reusing {len(refs.faces)} from {b.folder / 'refs.json'}")
    return refs


def _schedule_stage(
    b: BuildSetup, state: dict | None, face_ids: list[int], estimate: BuildEstimate, options: BuildOptions
) -> BuildPlan:
    """The schedule for ``face_ids`` (``schedule_for``, as estimated); a new one is recorded in
    ``work/state.json`` so a resumed build keeps it."""
    plan = schedule_for(
        b.preset, len(face_ids), estimate.invert_batch, estimate.step_costs, options, b.tuning.batch_size, state
    )
    if state is None:
        recorded = {
            "faces": face_ids,
            "base": b.base.fingerprint,
            "max_refs": estimate.max_refs,
            "invert_steps": plan.invert_steps,
            "tuning_steps": plan.tuning_steps,
        }
        atomic_write_text(b.state_path, json.dumps(recorded))
    b.projector = replace(b.projector, steps=plan.invert_steps)
    b.tuning = replace(b.tuning, steps=plan.tuning_steps)
    return plan


def _announce_plan(estimate: BuildEstimate, plan: BuildPlan, reporter: Reporter) -> None:
    """The plan and what each stage will cost (the estimate, before any long work)."""
    for line in estimate.lines(plan):
        reporter.note(line)


def _tuning_stage(b: BuildSetup, anchors: torch.Tensor, targets: torch.Tensor, reporter: Reporter) -> TuningResult:
    """Stage 3: tune the generator so every anchor reproduces its reference (resumes from its checkpoint)."""
    with reported_task(reporter, "tuning", "tuning", b.tuning.steps) as task:
        shown = [0]  # steps on the bar: a resumed run's first step jumps it to the checkpoint's step

        def on_step(step: int, total: int, loss: float) -> None:
            reporter.task_advanced(task, step - shown[0], f"loss {loss:.4f}")
            shown[0] = step

        result = tune(
            b.base.generator,
            anchors,
            targets,
            b.tun_loss,
            b.tuning,
            b.base.fingerprint,
            checkpoint=b.work / TUNING_CHECKPOINT,
            on_step=on_step,
        )
    if result.resumed_from:
        reporter.note(f"tuning resumed from its checkpoint at step {result.resumed_from}")
    return result


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values))


def _prior_meta(
    b: BuildSetup,
    refs: ReferenceSet,
    plan: BuildPlan,
    inversion: tuple[list[float], list[float]],
    result: TuningResult,
    timings: dict[str, float],
) -> dict:
    """The description written as ``prior.json`` (``save_prior`` adds the file records)."""
    inv_start, inv_final = inversion
    full_bytes = (
        sum(p.numel() for p in synthesis_parameters(b.base.generator.synthesis).values())
        * torch.finfo(getattr(torch, b.tuning.storage_dtype)).bits
        // 8
    )
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "person_id": b.person_id,
        "person_name": b.person_name,
        "owner": b.owner,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "preset": b.preset,
        "device": str(b.device),
        "base": b.base.to_json(),
        "loss": {
            "kind": b.loss_kind,
            "degraded": b.loss_kind == LossKind.MSE,
            "inversion": f"lpips-{b.projector.lpips_net}" if b.loss_kind != LossKind.MSE else "mse",
            "tuning": b.loss_kind,
        },
        "references": [{"index": i, **f} for i, f in enumerate(refs.faces)],
        "projector": b.projector.to_json(),
        "anchors": {"loss_start": _mean(inv_start), "loss_final": _mean(inv_final), "per_reference": inv_final},
        "tuning": {
            **b.tuning.to_json(),
            "kind": result.kind,
            "steps_done": result.steps,
            "resumed_from": result.resumed_from,
            "loss_before": _mean(result.losses_before),
            "loss_after": _mean(result.losses_after),
            "per_reference_after": result.losses_after,
            "adapter_ranks": rank_range(stored_ranks(result.stored)),
            "stored_bytes": stored_bytes(result.stored),
            "full_delta_bytes": full_bytes,
        },
        "plan": plan.to_json(),
        "timings": timings,
        "warnings": list(b.warnings),
    }


def build_prior(
    db,
    settings: Settings,
    person_ref: str,
    options: BuildOptions = BuildOptions(),
    device: str | torch.device = "auto",
    generator_path: str | Path | None = None,
    reporter: Reporter = NULL_REPORTER,
    projector: ProjectorConfig | None = None,
    tuning: TuningConfig | None = None,
) -> BuiltPrior:
    """refs -> anchors -> tuning -> stored prior, resuming whatever a previous run finished.

    ``reporter`` receives the up-front plan and cost lines and the progress of each stage.
    """
    started = time.perf_counter()
    b = start_build(db, settings, person_ref, options, device, generator_path, projector, tuning, reporter)
    if options.restart and b.work.exists():
        shutil.rmtree(b.work)
    estimate = plan_build(db, b, options)  # too few faces: stops here, before anything is written
    _announce_plan(estimate, estimate.plan, reporter)

    refs = _reference_stage(db, b, estimate.max_refs, options, reporter)
    targets = load_reference_images(refs).to(b.device)
    face_ids = [f["face_id"] for f in refs.faces]
    state = b.read_state()  # an unfinished build's plan
    if state is not None and (state.get("faces") != face_ids or state.get("base") != b.base.fingerprint):
        shutil.rmtree(b.work)
        state = None
    plan = _schedule_stage(b, state, face_ids, estimate, options)
    if (plan.refs, plan.invert_steps, plan.tuning_steps) != (
        estimate.plan.refs,
        estimate.plan.invert_steps,
        estimate.plan.tuning_steps,
    ):
        reporter.note("the plan changed once the references were picked:")
        _announce_plan(estimate, plan, reporter)

    t0 = time.perf_counter()
    anchors, inv_start, inv_final = compute_anchors(
        b.base, refs, targets, b.inv_loss, b.projector, b.loss_kind, b.work, reporter
    )
    timings = {"anchors_s": round(time.perf_counter() - t0, 2)}
    result = _tuning_stage(b, anchors, targets, reporter)
    timings["tuning_s"] = round(result.seconds, 2)
    timings["total_s"] = round(time.perf_counter() - started, 2)
    meta = _prior_meta(b, refs, plan, (inv_start, inv_final), result, timings)
    meta = save_prior(b.folder, anchors, result.stored, meta)
    shutil.rmtree(b.work, ignore_errors=True)
    return BuiltPrior(meta, b.folder)
