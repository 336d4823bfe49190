"""What a prior build will do and cost, worked out before anything is written.

``estimate_build`` resolves the device, preset, base generator, person and losses, previews the reference
selection, times one real inversion step and one tuning step on the device and plans the schedule
(``schedule.py``). `photokit prior build` announces exactly this estimate before its long work, and the
gallery shows it on a confirm page before it starts a build job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from photokit.devices import describe_device, resolve_device
from photokit.errors import PhotokitError
from photokit.prior.meta import WORK_DIR, prior_dir, rank_rule_words
from photokit.prior.projector import ProjectorConfig, balanced_batch_size, inversion_step_probe
from photokit.prior.refs import preview_selection, read_reference_set
from photokit.prior.schedule import (
    FIXED_RANK,
    PRESET_SCHEDULES,
    BuildOptions,
    BuildPlan,
    plan_schedule,
    preset_configs,
    resolve_preset,
)
from photokit.prior.selection import RefsConfig
from photokit.prior.storage import person_owner
from photokit.prior.tuning import TuningConfig, tuning_step_probe
from photokit.prior.vocab import Preset
from photokit.reporting import NULL_REPORTER, NoteLevel, Reporter, format_duration
from photokit.settings import Settings
from photokit.stylegan2.base import BaseGenerator, resolve_base
from photokit.stylegan2.timing import time_step
from photokit.stylegan2.vocab import LossKind

MSE_WARNING = "loss: MSE only: explicitly degraded quality, recorded in prior.json"


def make_losses(options: BuildOptions, device: torch.device, projector: ProjectorConfig, tuning: TuningConfig):
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


@dataclass
class BuildSetup:
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

    def read_state(self) -> dict | None:
        """The schedule an unfinished build recorded (``None`` when there is none)."""
        return json.loads(self.state_path.read_text()) if self.state_path.is_file() else None


def start_build(
    db,
    settings: Settings,
    person_ref: str,
    options: BuildOptions,
    device: str | torch.device,
    generator_path: str | Path | None = None,
    projector: ProjectorConfig | None = None,
    tuning: TuningConfig | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> BuildSetup:
    """Resolve the device, preset, base generator, person and losses (stops early on any of them).
    Writes nothing."""
    from photokit.faces.people import resolve_person

    device = device if isinstance(device, torch.device) else resolve_device(device)
    preset = resolve_preset(options.preset, device)
    base = resolve_base(settings, device, generator_path)
    warning = base.warning()
    if warning:
        reporter.note(warning, NoteLevel.WARNING)
    with db.session(write=False) as session:
        person = resolve_person(session, person_ref)
        person_id, person_name = person.id, person.name
    projector, tuning = preset_configs(
        preset, projector or ProjectorConfig(), tuning or TuningConfig(), device, options.precision
    )
    if options.adapter_rank is not None:  # a fixed rank for every weight (0: all weights) replaces the preset's rule
        tuning = replace(tuning, adapter_rank=options.adapter_rank, **FIXED_RANK)
    tuning = replace(tuning, checkpoint_every_s=options.checkpoint_every_s)
    inv_loss, tun_loss, loss_kind = make_losses(options, device, projector, tuning)
    if loss_kind == LossKind.MSE:
        reporter.note(MSE_WARNING, NoteLevel.WARNING)
    owner = person_owner(db, person_id)
    folder = prior_dir(settings, person_id)
    return BuildSetup(
        device, preset, base, person_id, person_name, owner, folder, projector, tuning, inv_loss, tun_loss, loss_kind,
        [w for w in [warning] if w],
    )  # fmt: skip


def measure_step_costs(b: BuildSetup, invert_batch: int) -> tuple[float, float]:
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


def schedule_for(
    preset: str,
    refs: int,
    invert_batch: int,
    step_costs: tuple[float, float],
    options: BuildOptions,
    tuning_batch: int,
    state: dict | None,
) -> BuildPlan:
    """The schedule for ``refs`` references (pure): a resumed build keeps the step counts it started with
    (the fast preset's depend on timings), explicit options still win."""
    inv_step_s, tun_step_s = step_costs
    batch = balanced_batch_size(refs, invert_batch)  # as compute_anchors splits them
    plan = plan_schedule(
        preset,
        refs,
        batch,
        inv_step_s * batch / invert_batch,
        tun_step_s,
        replace(options, max_refs=refs),
        tuning_batch,
    )
    if state is not None:
        plan.invert_steps = options.invert_steps or state["invert_steps"]
        plan.tuning_steps = options.tuning_steps or state["tuning_steps"]
        plan.notes.append("resuming an unfinished build with its original schedule")
    return plan


@dataclass
class BuildEstimate:
    """A build's plan and cost before it runs: the resolved preset and device, how many references it
    will use, and the schedule with seconds per step measured on that device."""

    person_id: int
    person_name: str | None
    asked_preset: str
    preset: str
    device: str  # 'cpu', 'cuda', 'mps'
    device_name: str  # e.g. 'cpu (2 threads)'
    resolution: int
    base: str
    loss: str
    adapter_rank: int | None
    adapter_rank_fraction: float | None  # ranks that follow each weight's width (None: adapter_rank for all)
    adapter_rank_cap: int | None  # ... up to this rank
    precision: str  # the synthesis arithmetic of both stages' steps: 'fp32' or 'bf16'
    usable_faces: int  # faces that pass the reference filters (before the schedule's limit)
    max_refs: int
    invert_batch: int
    step_costs: tuple[float, float]  # seconds per inversion step (a full batch), per tuning step
    plan: BuildPlan
    resuming: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return self.plan.invert_s + self.plan.tuning_s

    @property
    def tuned(self) -> str:
        """What tuning will change, in words."""
        if self.adapter_rank_fraction:
            rule = {k: getattr(self, k) for k in ("adapter_rank_fraction", "adapter_rank", "adapter_rank_cap")}
            return f"low-rank adapters, {rank_rule_words(rule)}"
        return f"low-rank adapters R={self.adapter_rank}" if self.adapter_rank else "full tuning"

    def lines(self, plan: BuildPlan | None = None) -> list[str]:
        """The plan in words, as `photokit prior build` announces it (``plan``: the final one, when the
        references came out differently than estimated)."""
        plan = plan or self.plan
        auto = f" (auto on {self.device})" if self.asked_preset == Preset.AUTO else ""
        lines = [
            f"preset {self.preset}{auto} on {self.device_name}: {plan.refs} references at {self.resolution} px, "
            f"loss {self.loss}, {self.tuned}, in {self.precision}",
            f"  anchors: {plan.invert_batches} batch(es) x {plan.invert_steps} steps at {plan.invert_step_s:.3g} "
            f"s/step = about {format_duration(plan.invert_s)}",
            f"  tuning: {plan.tuning_steps} steps at {plan.tuning_step_s:.3g} s/step "
            f"= about {format_duration(plan.tuning_s)}",
        ]
        if self.preset != Preset.PAPER:
            lines.append(f"  (the paper schedule would take about {format_duration(plan.paper_estimate_s)} here)")
        return lines + [f"  {note}" for note in plan.notes]

    def to_json(self) -> dict:
        return {
            **{k: v for k, v in self.__dict__.items() if k not in ("plan", "step_costs")},
            "plan": self.plan.to_json(),
            "estimate_s": round(self.total_s, 1),
        }


def plan_build(db, b: BuildSetup, options: BuildOptions) -> BuildEstimate:
    """The estimate for a resolved build; reads what an unfinished build left (its schedule, its references)
    and writes nothing."""
    state = None if options.restart else b.read_state()
    resolution = b.base.generator.resolution
    upper = options.max_refs or (state or {}).get("max_refs") or PRESET_SCHEDULES[b.preset]["max_refs"]
    selection = preview_selection(db, str(b.person_id), resolution, RefsConfig(max_refs=upper))  # too few: stop
    invert_batch = min(b.projector.batch_size, upper)
    step_costs = measure_step_costs(b, invert_batch)
    max_refs = upper
    if not (state or options.max_refs):
        max_refs = plan_schedule(b.preset, upper, invert_batch, *step_costs, options, b.tuning.batch_size).refs
    refs = None if options.restart else read_reference_set(b.folder)
    if refs is not None and refs.resolution == resolution and refs.config.get("max_refs") == max_refs:
        n = len(refs.faces)  # the build will reuse them
        if state is not None and state.get("faces") != [f["face_id"] for f in refs.faces]:
            state = None
    else:
        n = min(max_refs, len(selection.kept))
    if state is not None and state.get("base") != b.base.fingerprint:
        state = None
    plan = schedule_for(b.preset, n, invert_batch, step_costs, options, b.tuning.batch_size, state)
    return BuildEstimate(
        person_id=b.person_id,
        person_name=b.person_name,
        asked_preset=str(options.preset),
        preset=str(b.preset),
        device=b.device.type,
        device_name=describe_device(b.device),
        resolution=resolution,
        base=b.base.name,
        loss=str(b.loss_kind),
        adapter_rank=b.tuning.adapter_rank,
        adapter_rank_fraction=b.tuning.adapter_rank_fraction,
        adapter_rank_cap=b.tuning.adapter_rank_cap,
        precision=str(b.tuning.precision),
        usable_faces=len(selection.kept),
        max_refs=max_refs,
        invert_batch=invert_batch,
        step_costs=step_costs,
        plan=plan,
        resuming=state is not None,
        warnings=list(b.warnings) + ([MSE_WARNING] if b.loss_kind == LossKind.MSE else []),
    )


def estimate_build(
    db,
    settings: Settings,
    person_ref: str,
    options: BuildOptions = BuildOptions(),
    device: str | torch.device = "auto",
    generator_path: str | Path | None = None,
) -> BuildEstimate:
    """What `build_prior` with these arguments would do and cost, without building or writing anything.

    Costs a few seconds: the base generator is loaded and one step of each stage is timed on ``device``.
    Raises the same one-line ``PhotokitError``s the build would (no generator, no LPIPS, too few faces).
    """
    return plan_build(db, start_build(db, settings, person_ref, options, device, generator_path), options)
