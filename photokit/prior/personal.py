"""Building a personal prior: references -> anchors (W inversion) -> tuning -> stored prior.

Each stage resumes what a previous, interrupted run finished: the reference set is reused, finished
inversion batches are kept in ``work/anchors.partial.safetensors`` and tuning restarts from its checkpoint.
The folder layout and loading live in ``storage.py``; presets and the cost-based schedule in ``schedule.py``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import torch

from photokit.devices import describe_device, resolve_device
from photokit.errors import PhotokitError
from photokit.prior.adapters import stored_bytes, synthesis_parameters
from photokit.prior.anchors import compute_anchors
from photokit.prior.projector import ProjectorConfig, inversion_step_probe
from photokit.prior.refs import (
    ReferenceSet,
    RefsConfig,
    build_reference_set,
    load_reference_images,
    preview_selection,
    read_reference_set,
)
from photokit.prior.schedule import (  # noqa: F401 - re-exported for callers of the former single module
    FAST_FLOORS,
    PRESET_SCHEDULES,
    PRESETS,
    BuildOptions,
    BuildPlan,
    Preset,
    plan_schedule,
    resolve_preset,
)
from photokit.prior.storage import (
    FORMAT,
    FORMAT_VERSION,
    TUNING_CHECKPOINT,
    WORK_DIR,
    person_owner,
    prior_dir,
    prior_summary,
    save_prior,
)
from photokit.prior.tuning import TuningConfig, TuningResult, tune, tuning_step_probe
from photokit.reporting import NULL_REPORTER, NoteLevel, Reporter, format_duration, reported_task
from photokit.settings import Settings
from photokit.store.atomic import atomic_write_text
from photokit.stylegan2.base import BaseGenerator, resolve_base
from photokit.stylegan2.timing import time_step
from photokit.stylegan2.vocab import LossKind


def _make_losses(options: BuildOptions, device: torch.device, projector: ProjectorConfig, tuning: TuningConfig):
    """(inversion loss, tuning loss, loss kind). Stops with a one-line message when LPIPS is missing."""
    from photokit.stylegan2.losses import ReconstructionLoss, make_reconstruction_loss

    if options.loss == LossKind.MSE:
        return (
            ReconstructionLoss(None, 1.0).to(device),
            ReconstructionLoss(None, tuning.mse_weight).to(device),
            LossKind.MSE,
        )
    if options.loss != LossKind.LPIPS:
        raise PhotokitError(f"unknown loss '{options.loss}': use one of {', '.join(LossKind)}")
    # The projector's loss is LPIPS alone; tuning adds lambda_L2 x MSE (MyStyle eq. 1).
    inv = make_reconstruction_loss(LossKind.LPIPS, projector.lpips_net, device, 0.0, options.allow_random_lpips)
    tun = make_reconstruction_loss(
        LossKind.LPIPS, tuning.lpips_net, device, tuning.mse_weight, options.allow_random_lpips
    )
    return inv, tun, tun.name


# =====================================================================================================
# The build, stage by stage


@dataclass
class _Build:
    """What the stages of one build share: the person, the base generator, the losses and configs."""

    device: torch.device
    preset: str
    base: BaseGenerator
    person_id: int
    person_name: str | None
    owner: dict | None
    folder: Path
    projector: ProjectorConfig
    tuning: TuningConfig
    inv_loss: object
    tun_loss: object
    loss_kind: str
    warnings: list[str] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.folder / WORK_DIR

    @property
    def state_path(self) -> Path:
        return self.work / "state.json"


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


def _start_build(
    db,
    settings: Settings,
    person_ref: str,
    options: BuildOptions,
    device: str | torch.device,
    generator_path: str | Path | None,
    projector: ProjectorConfig | None,
    tuning: TuningConfig | None,
    reporter: Reporter,
) -> _Build:
    """Resolve the device, preset, base generator, person and losses (stops early on any of them)."""
    from photokit.faces.people import resolve_person

    device = device if isinstance(device, torch.device) else resolve_device(device)
    preset = resolve_preset(options.preset, device)
    base = resolve_base(settings, device, generator_path)
    warning = base.warning()
    if warning:
        reporter.note(warning, NoteLevel.WARNING)
    with db.session() as session:
        person = resolve_person(session, person_ref)
        person_id, person_name = person.id, person.name
    folder = prior_dir(settings, person_id)
    if options.restart and (folder / WORK_DIR).exists():
        shutil.rmtree(folder / WORK_DIR)
    projector = projector or ProjectorConfig()
    tuning = tuning or TuningConfig()
    tuning = replace(
        tuning, adapter_rank=options.adapter_rank or tuning.adapter_rank, checkpoint_every_s=options.checkpoint_every_s
    )
    inv_loss, tun_loss, loss_kind = _make_losses(options, device, projector, tuning)
    if loss_kind == LossKind.MSE:
        reporter.note("loss: MSE only: explicitly degraded quality, recorded in prior.json", NoteLevel.WARNING)
    owner = person_owner(db, person_id)
    return _Build(
        device, preset, base, person_id, person_name, owner, folder, projector, tuning, inv_loss, tun_loss, loss_kind,
        [w for w in [warning] if w],
    )  # fmt: skip


def _measure_step_costs(b: _Build, invert_batch: int) -> tuple[float, float]:
    """Seconds per inversion step (a batch of ``invert_batch``) and per tuning step, timed on the device
    before any long work (a step costs the same for any image)."""
    G, device, resolution = b.base.generator, b.device, b.base.generator.resolution
    probe = torch.rand(invert_batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0)).to(device)
    inv_step_s = time_step(inversion_step_probe(G, probe * 2 - 1, b.inv_loss, b.projector), device)
    batch = b.tuning.batch_size
    probe_anchors = G.w_avg.to(device).reshape(1, -1).repeat(batch, 1)
    probe_targets = probe.repeat(batch, 1, 1, 1)[:batch]
    tun_step_s = time_step(tuning_step_probe(G, probe_anchors, probe_targets, b.tun_loss, b.tuning), device)
    return inv_step_s, tun_step_s


def _reference_stage(db, b: _Build, max_refs: int, options: BuildOptions, reporter: Reporter) -> ReferenceSet:
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
    b: _Build,
    state: dict | None,
    face_ids: list[int],
    max_refs: int,
    invert_batch: int,
    step_costs: tuple[float, float],
    options: BuildOptions,
) -> BuildPlan:
    """The schedule for ``face_ids``: a resumed build keeps the one it started with (fast depends on timings);
    a new one is recorded in ``work/state.json``."""
    n = len(face_ids)
    inv_step_s, tun_step_s = step_costs
    plan = plan_schedule(
        b.preset,
        n,
        min(invert_batch, n),
        inv_step_s * min(invert_batch, n) / invert_batch,
        tun_step_s,
        replace(options, max_refs=n),
        b.tuning.batch_size,
    )
    if state is not None:
        plan.invert_steps = options.invert_steps or state["invert_steps"]
        plan.tuning_steps = options.tuning_steps or state["tuning_steps"]
        plan.notes.append("resuming an unfinished build with its original schedule")
    else:
        recorded = {
            "faces": face_ids,
            "base": b.base.fingerprint,
            "max_refs": max_refs,
            "invert_steps": plan.invert_steps,
            "tuning_steps": plan.tuning_steps,
        }
        atomic_write_text(b.state_path, json.dumps(recorded))
    b.projector = replace(b.projector, steps=plan.invert_steps)
    b.tuning = replace(b.tuning, steps=plan.tuning_steps)
    return plan


def _announce_plan(b: _Build, plan: BuildPlan, asked_preset: str, reporter: Reporter) -> None:
    """The up-front plan and what each stage will cost."""
    reporter.note(
        f"preset {b.preset}{' (auto on ' + b.device.type + ')' if asked_preset == Preset.AUTO else ''} on "
        f"{describe_device(b.device)}: {plan.refs} references at {b.base.generator.resolution} px, "
        f"loss {b.loss_kind}"
        + (f", low-rank adapters R={b.tuning.adapter_rank}" if b.tuning.adapter_rank else ", full tuning")
    )
    reporter.note(
        f"  anchors: {plan.invert_batches} batch(es) x {plan.invert_steps} steps at {plan.invert_step_s:.3g} s/step "
        f"= about {format_duration(plan.invert_s)}"
    )
    reporter.note(
        f"  tuning: {plan.tuning_steps} steps at {plan.tuning_step_s:.3g} s/step = about {format_duration(plan.tuning_s)}"
    )
    if b.preset != Preset.PAPER:
        reporter.note(f"  (the paper schedule would take about {format_duration(plan.paper_estimate_s)} here)")
    for line in plan.notes:
        reporter.note(f"  {line}")


def _tuning_stage(b: _Build, anchors: torch.Tensor, targets: torch.Tensor, reporter: Reporter) -> TuningResult:
    """Stage 3: tune the generator so every anchor reproduces its reference (resumes from its checkpoint)."""
    with reported_task(reporter, "tuning", "tuning", b.tuning.steps) as task:

        def on_step(step: int, total: int, loss: float) -> None:
            reporter.task_advanced(task, 1, f"loss {loss:.4f}")

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
    b: _Build,
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
    b = _start_build(db, settings, person_ref, options, device, generator_path, projector, tuning, reporter)
    state = json.loads(b.state_path.read_text()) if b.state_path.is_file() else None  # an unfinished build's plan
    upper = options.max_refs or (state or {}).get("max_refs") or PRESET_SCHEDULES[b.preset]["max_refs"]
    resolution = b.base.generator.resolution
    preview_selection(db, str(b.person_id), resolution, RefsConfig(max_refs=upper))  # too few faces: stop now
    invert_batch = min(b.projector.batch_size, upper)
    step_costs = _measure_step_costs(b, invert_batch)
    max_refs = upper
    if not (state or options.max_refs):
        max_refs = plan_schedule(b.preset, upper, invert_batch, *step_costs, options, b.tuning.batch_size).refs

    refs = _reference_stage(db, b, max_refs, options, reporter)
    targets = load_reference_images(refs).to(b.device)
    face_ids = [f["face_id"] for f in refs.faces]
    if state is not None and (state.get("faces") != face_ids or state.get("base") != b.base.fingerprint):
        shutil.rmtree(b.work)
        state = None
    plan = _schedule_stage(b, state, face_ids, max_refs, invert_batch, step_costs, options)
    _announce_plan(b, plan, options.preset, reporter)

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
