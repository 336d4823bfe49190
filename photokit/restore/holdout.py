"""`photokit eval`'s data: a person's references split into training and held-out faces, and a prior built
(or reused from a cache) on the training faces only, with the prior build's own stages.

The split follows the reference selection of `prior build` (quality filters, near-duplicates dropped,
farthest-point order); k faces are drawn from it with a fixed seed and held out. The prior without them
is built with ``invert_w`` (anchors) and ``tune`` (pivotal tuning), and cached under
``$PHOTOKIT_HOME/eval/person_<id>/<signature>/`` (signature: base generator, training faces, schedule,
loss), so a second `eval` of the same split only restores.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from photokit.errors import PhotokitError, Remedy
from photokit.faces.vocab import DescriptorKind
from photokit.prior.refs import load_candidates
from photokit.prior.selection import Candidate, RefsConfig, select_references
from photokit.reporting import NULL_REPORTER, NoteLevel, Reporter
from photokit.restore.evaluate import EvalResult
from photokit.settings import Settings
from photokit.stylegan2.base import BaseGenerator


@dataclass(frozen=True)
class BuildSchedule:
    invert_steps: int
    tuning_epochs: int  # passes over the training faces (MyStyle/PTI: 350)
    max_train: int = 100
    tuning_steps: int | None = None  # overrides tuning_epochs: total tuning steps

    def total_tuning_steps(self, n_train: int) -> int:
        return self.tuning_steps if self.tuning_steps is not None else self.tuning_epochs * n_train


@dataclass
class Split:
    person_id: int
    person_name: str | None
    train: list[Candidate]
    held_out: list[Candidate]
    descriptor_kind: DescriptorKind = DescriptorKind.DLIB128  # the library's: the candidates' descriptors

    def train_descriptors(self) -> np.ndarray:
        """(M, D) descriptors of the training faces: the identity check's references."""
        vectors = [c.embedding for c in self.train if c.embedding is not None]
        return np.array(vectors, np.float32).reshape(-1, self.descriptor_kind.dim)

    def to_json(self) -> dict:
        return {
            "person_id": self.person_id,
            "person": self.person_name,
            "train_face_ids": [c.face_id for c in self.train],
            "held_out_face_ids": [c.face_id for c in self.held_out],
        }


def split_references(db, person_ref: str, resolution: int, holdout: int, max_train: int, seed: int = 0) -> Split:
    """Hold out ``holdout`` of the person's usable references (seeded draw); at least 5 must remain."""
    from photokit.faces.cluster_config import in_units_of
    from photokit.faces.descriptors import active_kind
    from photokit.faces.people import resolve_person

    config = RefsConfig(max_refs=10_000)
    with db.session() as session:
        person = resolve_person(session, person_ref)
        kind = active_kind(session)
        selection = select_references(
            load_candidates(session, person), resolution, in_units_of(kind, config, "duplicate_distance")
        )
        person_id, name = person.id, person.name
    usable = selection.kept
    if holdout < 1:
        raise PhotokitError("hold out at least one face")
    if len(usable) < holdout + config.min_refs:
        raise PhotokitError(
            f"person {person_id}{f' ({name})' if name else ''} has {len(usable)} usable reference face(s) at "
            f"{resolution} px; holding out {holdout} needs at least {holdout + config.min_refs} "
            f"(a prior needs {config.min_refs})",
            Remedy.FEWER_HELD_OUT,
        )
    order = np.random.default_rng(seed).permutation(len(usable))
    held = sorted(order[:holdout].tolist())
    train = [c for i, c in enumerate(usable) if i not in set(held)][:max_train]
    return Split(person_id, name, train, [usable[i] for i in held], kind)


def aligned_crops(candidates: list[Candidate], resolution: int, device: torch.device) -> torch.Tensor:
    """The candidates' aligned crops from their photo files, (K, 3, R, R) in [-1, 1]."""
    from photokit.faces.align import FaceAlignment, align_face
    from photokit.library.images import read_rgb

    images = []
    for c in candidates:
        if c.path is None or c.alignment is None:
            raise PhotokitError(f"face {c.face_id}: its photo file is not known", Remedy.SCAN_LIBRARY)
        crop = align_face(read_rgb(c.path), FaceAlignment.from_json(c.alignment), resolution)
        images.append(torch.from_numpy(crop.astype(np.float32)).permute(2, 0, 1) / 127.5 - 1.0)
    return torch.stack(images).to(device)


def cache_folder(settings: Settings, base: BaseGenerator, split: Split, schedule: BuildSchedule, loss: str) -> Path:
    data = {
        "base": base.fingerprint,
        "train": [c.face_id for c in split.train],
        "schedule": asdict(schedule),
        "loss": loss,
    }
    signature = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return settings.home / "eval" / f"person_{split.person_id}" / signature


def load_cached(folder: Path, base: BaseGenerator, device: torch.device) -> tuple[torch.nn.Module, torch.Tensor] | None:
    """(tuned generator, anchors) from a finished cache folder, or None."""
    from safetensors.torch import load_file

    from photokit.prior.adapters import apply_stored

    if not (folder / "done.json").is_file():
        return None
    try:
        anchors = load_file(str(folder / "anchors.safetensors"))["anchors"].to(device)
        stored = load_file(str(folder / "weights.safetensors"))
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None
    tuned = copy.deepcopy(base.generator).to(device)
    apply_stored(tuned.synthesis, {k: v.to(device) for k, v in stored.items()})
    return tuned.eval().requires_grad_(False), anchors


def build_holdout_prior(
    base: BaseGenerator,
    targets: torch.Tensor,
    loss_fn,
    schedule: BuildSchedule,
    folder: Path,
    on_step=None,
) -> tuple[torch.nn.Module, torch.Tensor]:
    """Anchors (W inversion) + pivotal tuning on the training crops, saved to ``folder`` (atomically).

    After Ctrl-C a rerun resumes: finished anchors are reused and tuning continues from its checkpoint."""
    from safetensors.torch import load_file, save_file

    from photokit.prior.projector import ProjectorConfig, invert_w
    from photokit.prior.tuning import TuningConfig, tune
    from photokit.store.atomic import atomic_path, atomic_write_text
    from photokit.stylegan2.network import w_statistics

    def save(name: str, tensors: dict) -> None:
        with atomic_path(folder / name) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))

    folder.mkdir(parents=True, exist_ok=True)
    G, device = base.generator, targets.device
    if (folder / "anchors.safetensors").is_file():
        anchors_t = load_file(str(folder / "anchors.safetensors"))["anchors"].to(device)
    else:
        projector = ProjectorConfig(steps=schedule.invert_steps)
        w_stats = w_statistics(G, projector.w_avg_samples, device, projector.seed)
        anchors = []
        for lo in range(0, len(targets), projector.batch_size):
            batch = targets[lo : lo + projector.batch_size]
            anchors.append(invert_w(G, batch, loss_fn, projector, w_stats=w_stats, on_step=on_step).ws)
        anchors_t = torch.cat(anchors).detach()
        save("anchors.safetensors", {"anchors": anchors_t})
    config = TuningConfig(steps=schedule.total_tuning_steps(len(targets)))
    tuned = tune(G, anchors_t, targets, loss_fn, config, base.fingerprint, checkpoint=folder / "tuning.ckpt")
    save("weights.safetensors", tuned.stored)
    atomic_write_text(folder / "done.json", json.dumps({"anchors": len(anchors_t), **asdict(schedule)}))
    (folder / "tuning.ckpt").unlink(missing_ok=True)
    return tuned.generator, anchors_t


# -- the whole protocol on a library person -----------------------------------------------------------

CPU_DEFAULTS = BuildSchedule(invert_steps=30, tuning_epochs=5, max_train=10)  # minutes on 2 cores at 256 px
GPU_DEFAULTS = BuildSchedule(invert_steps=450, tuning_epochs=350, max_train=100)  # PTI's / MyStyle's
CPU_PROJECTION_STEPS, GPU_PROJECTION_STEPS = 50, 1000


@dataclass
class PersonEval:
    """What `photokit eval` found (the CLI prints it, writes JSON and the HTML page)."""

    split: Split
    base: dict
    meaningful: bool  # False with a random-weight generator: the numbers say nothing about faces
    warnings: list[str]
    prior_cache: str
    prior_reused: bool
    projection_steps: int
    schedule: BuildSchedule
    estimate_s: float
    result: EvalResult
    seconds: float

    def to_json(self) -> dict:
        return {
            **self.split.to_json(),
            "base": self.base,
            "meaningful": self.meaningful,
            "warnings": self.warnings,
            "prior_cache": self.prior_cache,
            "prior_reused": self.prior_reused,
            "projection_steps": self.projection_steps,
            "build_schedule": asdict(self.schedule),
            "estimate_s": round(self.estimate_s, 1),
            "seconds": round(self.seconds, 1),
            **self.result.to_json(),
        }


def estimate_seconds(base: BaseGenerator, loss_fn, device, n_eval: int, steps: int, schedule, n_train, cached):
    """Seconds for the build (unless cached) and the 2 x n_eval projections, from timed steps."""
    from photokit.prior.projector import ProjectorConfig, inversion_step_probe
    from photokit.prior.tuning import TuningConfig, tuning_step_probe
    from photokit.restore.degrade import Degradation
    from photokit.restore.project import AlphaProjection, SmallImageLoss
    from photokit.stylegan2.timing import time_step

    G, r = base.generator, int(base.generator.resolution)
    probe = torch.rand(1, 3, r, r, generator=torch.Generator().manual_seed(0)).to(device) * 2 - 1
    anchors = G.w_avg.detach().reshape(1, -1)[:, : G.w_dim].repeat(2, 1).to(device)
    phi = Degradation(size=max(4, r // 8))
    project_s = time_step(AlphaProjection(G, anchors, phi(probe), phi, SmallImageLoss(loss_fn), 0.05).step, device)
    total = 2 * n_eval * steps * project_s
    if not cached:
        batch = min(ProjectorConfig.batch_size, n_train)
        inv_s = time_step(inversion_step_probe(G, probe.repeat(batch, 1, 1, 1), loss_fn, ProjectorConfig()), device)
        tun_s = time_step(tuning_step_probe(G, anchors, probe, loss_fn, TuningConfig()), device)
        total += schedule.invert_steps * -(-n_train // batch) * inv_s + schedule.total_tuning_steps(n_train) * tun_s
    return total, project_s


def evaluate_person(
    db,
    settings: Settings,
    person_ref: str,
    tasks: list[str],
    holdout: int = 5,
    device: torch.device | None = None,
    loss: str = "lpips",
    steps: int | None = None,
    schedule: BuildSchedule | None = None,
    reporter: Reporter = NULL_REPORTER,
    describe=None,
    allow_random_lpips: bool = False,
    seed: int = 0,
) -> PersonEval:
    """MyStyle's protocol on a library person: split, prior without the held-out faces, restore, score.
    ``reporter`` gets the warnings and the cost (notes, before long work), then "eval" advanced per restoration."""
    import time

    from photokit.devices import resolve_device
    from photokit.restore.evaluate import Restorers
    from photokit.restore.project import SmallImageLoss
    from photokit.stylegan2.losses import make_reconstruction_loss

    started = time.perf_counter()
    device = device or resolve_device("auto")
    gpu = device.type != "cpu"
    steps = steps or (GPU_PROJECTION_STEPS if gpu else CPU_PROJECTION_STEPS)
    schedule = schedule or (GPU_DEFAULTS if gpu else CPU_DEFAULTS)
    base, resolution = _checked_base(settings, device, tasks)
    loss_fn = make_reconstruction_loss(loss, "alex", device, allow_random_backbone=allow_random_lpips)
    split = split_references(db, person_ref, resolution, holdout, schedule.max_train, seed)
    folder = cache_folder(settings, base, split, schedule, loss_fn.name)
    cached = load_cached(folder, base, device)
    warnings = _setup_warnings(base, loss_fn)
    for warning in warnings:
        reporter.note(warning, NoteLevel.WARNING)
    estimate = _announce_cost(base, loss_fn, device, split, tasks, schedule, cached is not None, steps, reporter)
    if cached is None:
        targets = aligned_crops(split.train, resolution, device)
        tuned, anchors = build_holdout_prior(base, targets, loss_fn, schedule, folder)
    else:
        tuned, anchors = cached
    restorers = Restorers(tuned, anchors, base.generator, SmallImageLoss(loss_fn), steps)
    result = _restore_and_score(split, tasks, resolution, device, restorers, describe, warnings, reporter)
    reporter.task_finished("eval")
    reused, seconds = cached is not None, time.perf_counter() - started
    return PersonEval(
        split,
        base.to_json(),
        bool(base.pretrained),
        warnings,
        str(folder),
        reused,
        steps,
        schedule,
        estimate,
        result,
        seconds,
    )


def _checked_base(settings: Settings, device, tasks: list[str]) -> tuple[BaseGenerator, int]:
    """The base generator and its resolution; a task's factor too large for it stops before any work."""
    from photokit.restore.evaluate import task_degradation
    from photokit.stylegan2.base import resolve_base

    base = resolve_base(settings, device)
    resolution = int(base.generator.resolution)
    for task in tasks:
        task_degradation(task, resolution)
    return base, resolution


def _setup_warnings(base: BaseGenerator, loss_fn) -> list[str]:
    """What makes these numbers weaker than MyStyle's: a base that is not a face model, or no LPIPS loss."""
    warnings = [w for w in [base.warning()] if w]
    if not base.pretrained:
        warnings.append("the base generator is not a pretrained face model: these numbers mean nothing about faces")
    if loss_fn.lpips is None:
        warnings.append("loss is MSE only: restorations are blurrier than with LPIPS")
    return warnings


def _announce_cost(base: BaseGenerator, loss_fn, device, split, tasks, schedule, cached: bool, steps: int, reporter):
    """Estimate the run, say it (a note, before any long work) and start the "eval" task; the estimate in s."""
    n_eval = len(split.held_out) * len(tasks)
    estimate, step_s = estimate_seconds(base, loss_fn, device, n_eval, steps, schedule, len(split.train), cached)
    resolution = int(base.generator.resolution)
    reporter.note(_cost_note(split, tasks, resolution, schedule, cached, steps, step_s, device, estimate))
    reporter.task_started("eval", "eval: prior without the held-out faces, then restorations", n_eval * 3)
    return estimate


def _cost_note(split, tasks, resolution, schedule, cached: bool, steps: int, step_s: float, device, estimate) -> str:
    """The plan and its cost, said before any long work."""
    from photokit.reporting import format_duration

    n_eval = len(split.held_out) * len(tasks)
    return (
        f"eval of {split.person_name or f'person {split.person_id}'}: {len(split.train)} training and "
        f"{len(split.held_out)} held-out faces at {resolution} px, tasks {', '.join(tasks)}; prior "
        + (
            "reused from its cache"
            if cached
            else f"built ({schedule.invert_steps} inversion + {schedule.total_tuning_steps(len(split.train))} tuning steps)"
        )
        + f"; {2 * n_eval} projections x {steps} steps at {step_s:.3g} s/step on {device.type}: about "
        + format_duration(estimate)
    )


def _restore_and_score(split, tasks, resolution, device, restorers, describe, warnings: list[str], reporter):
    """Degrade each held-out face, restore it with every method, score it against the original."""
    from photokit.restore.evaluate import evaluate
    from photokit.restore.verify import analyzer_describe
    from photokit.stylegan2.losses import build_lpips, lpips_available

    truths = aligned_crops(split.held_out, resolution, device)
    references = split.train_descriptors()
    if describe is None:
        from photokit.faces.analyze import FaceAnalyzer, FaceConfig

        describe = analyzer_describe(FaceAnalyzer(FaceConfig(descriptor=split.descriptor_kind), device=str(device)))
    lpips_model = build_lpips("alex", device) if lpips_available("alex") else None
    if lpips_model is None:
        warnings.append("LPIPS is not reported: its AlexNet weights (model lpips-alex) are not installed")
    return evaluate(
        truths,
        [c.face_id for c in split.held_out],
        tasks,
        restorers,
        describe,
        references,
        lpips_model,
        on_sample=lambda s: reporter.task_advanced("eval", 1, f"{s.task} {s.method}: {s.psnr:.1f} dB"),
    )
