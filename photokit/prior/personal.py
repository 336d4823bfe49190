"""Personal priors: building them (refs -> anchors -> tuning) and storing/loading them.

A prior is the folder ``settings.priors_dir/person_<id>/``:

- ``refs/face_<id>.png`` + ``refs.json``: the reference crops, in anchor order (see ``refs.py``);
- ``anchors.safetensors``: ``anchors`` (N, w_dim) float32, row i = reference i of ``prior.json``;
- ``delta.safetensors`` (tuned - base, per synthesis tensor) or ``adapters.safetensors`` (low-rank
  factors): the change against the base generator, never a whole generator;
- ``prior.json``: person, references, base generator (name, fingerprint), hyperparameters, preset, loss
  kind, losses before/after, timings, and the SHA-256 of every file above. Written last: a folder without
  it is an unfinished build (``work/`` then holds its checkpoints).

Every file is written atomically. Loading checks the checksums and the base generator's fingerprint.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from photokit.errors import PhotokitError
from photokit.prior.adapters import apply_stored, stored_bytes, stored_kind, synthesis_parameters
from photokit.prior.projector import ProjectorConfig, inversion_step_probe, invert_w, w_statistics
from photokit.prior.refs import (
    RefsConfig,
    build_reference_set,
    load_reference_images,
    preview_selection,
    read_reference_set,
)
from photokit.prior.tuning import TuningConfig, tune, tuning_step_probe
from photokit.settings import Settings
from photokit.store.atomic import atomic_path, atomic_write_text
from photokit.stylegan2.base import BaseGenerator, resolve_base

FORMAT = "photokit-personal-prior"
FORMAT_VERSION = 1
PRIOR_JSON = "prior.json"
ANCHORS_FILE = "anchors.safetensors"
WEIGHT_FILES = {"full": "delta.safetensors", "lowrank": "adapters.safetensors"}
WORK_DIR = "work"
ANCHORS_PARTIAL = "anchors.partial.safetensors"
TUNING_CHECKPOINT = "tuning.ckpt"


def prior_dir(settings: Settings, person_id: int) -> Path:
    return settings.priors_dir / f"person_{int(person_id)}"


# =====================================================================================================
# Storage


@dataclass
class PersonalPrior:
    person_id: int
    person_name: str | None
    generator: nn.Module  # the tuned generator (eval, frozen)
    anchors: torch.Tensor  # (N, w_dim), rows in the order of meta["references"]
    meta: dict
    path: Path


def person_owner(db, person_id: int) -> dict | None:
    """Whom a prior belongs to: this library's id and the person's creation time. Person ids can be reused
    (a deleted person's id, another library in the same home), so the id alone does not prove it."""
    from photokit.db.models import Person

    with db.session() as session:
        person = session.get(Person, int(person_id))
        if person is None:
            return None
        created = person.created_at.isoformat()
    return {"library_id": db.library_id(), "person_created_at": created}


def has_prior(settings: Settings, person_id: int) -> bool:
    return (prior_dir(settings, person_id) / PRIOR_JSON).is_file()


def read_prior_meta(settings: Settings, person_id: int) -> dict:
    path = prior_dir(settings, person_id) / PRIOR_JSON
    if not path.is_file():
        raise PhotokitError(f"person {person_id} has no personal prior: run `photokit prior build {person_id}`")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PhotokitError(
            f"{path} is corrupt ({exc.__class__.__name__}); rebuild it with "
            f"`photokit prior build {person_id} --restart`"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PhotokitError(f"{path} is not a photokit prior description; rebuild it")
    problem = _meta_problem(meta)
    if problem:
        raise PhotokitError(
            f"{path} is incomplete ({problem}); rebuild it with `photokit prior build {person_id} --restart`"
        )
    return meta


def _meta_problem(meta: dict) -> str | None:
    """What is missing from a prior.json that loading and listing rely on (None: nothing)."""
    if not isinstance(meta.get("person_id"), int) or isinstance(meta.get("person_id"), bool):
        return "no person_id"
    if not isinstance(meta.get("references"), list):
        return "no references"
    base = meta.get("base")
    if not isinstance(base, dict) or not isinstance(base.get("fingerprint"), str):
        return "no base generator fingerprint"
    tuning = meta.get("tuning")
    if not isinstance(tuning, dict) or not isinstance(tuning.get("kind"), str) or tuning["kind"] not in WEIGHT_FILES:
        return "no tuning kind"
    files = meta.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(f, dict) and isinstance(f.get("bytes"), int) and isinstance(f.get("sha256"), str)
        for f in files.values()
    ):
        return "no file records"
    for section in ("loss", "anchors", "timings"):
        if section in meta and not isinstance(meta[section], dict):
            return f"'{section}' is not a table"
    return None


def prior_summary(meta: dict) -> dict:
    """The short form `prior list` prints."""
    tuning = meta.get("tuning", {})
    return {
        "person_id": meta["person_id"],
        "person_name": meta.get("person_name"),
        "anchors": len(meta.get("references", [])),
        "kind": tuning.get("kind"),
        "rank": tuning.get("adapter_rank"),
        "bytes": sum(f["bytes"] for f in meta.get("files", {}).values()),
        "preset": meta.get("preset"),
        "loss": meta.get("loss", {}).get("kind"),
        "base": meta.get("base", {}).get("name"),
        "real_face_prior": meta.get("base", {}).get("pretrained_face_model", False)
        and meta.get("loss", {}).get("kind") != "mse",
        "loss_before": tuning.get("loss_before"),
        "loss_after": tuning.get("loss_after"),
        "created": meta.get("created"),
    }


def list_priors(settings: Settings) -> list[dict]:
    """Every finished prior in the store (unreadable ones listed with an ``error``)."""
    out = []
    if not settings.priors_dir.is_dir():
        return out
    for folder in sorted(settings.priors_dir.glob("person_*")):
        if not (folder / PRIOR_JSON).is_file():
            continue
        try:
            person_id = int(folder.name.split("_", 1)[1])
        except ValueError:
            continue
        try:
            out.append(prior_summary(read_prior_meta(settings, person_id)))
        except PhotokitError as exc:
            out.append({"person_id": person_id, "error": str(exc)})
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # one odd file must not stop the list
            out.append(
                {
                    "person_id": person_id,
                    "error": f"{folder / PRIOR_JSON} is malformed ({type(exc).__name__}: {exc}); rebuild it",
                }
            )
    return sorted(out, key=lambda d: d["person_id"])


def remove_prior(settings: Settings, person_id: int) -> Path:
    """Delete a person's prior folder (references, anchors, weights, unfinished work)."""
    folder = prior_dir(settings, person_id)
    if not folder.is_dir():
        raise PhotokitError(f"person {person_id} has no personal prior")
    shutil.rmtree(folder)
    return folder


def _file_record(path: Path) -> dict:
    from photokit.store.hashing import file_sha256

    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


def _save_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata() or {})  # noqa: SIM118 - not iterable
    except Exception as exc:
        raise PhotokitError(f"{path} is corrupt or truncated ({exc.__class__.__name__})") from None


def save_prior(folder: Path, anchors: torch.Tensor, stored: dict[str, torch.Tensor], meta: dict) -> dict:
    """Write anchors, weights and (last) prior.json; returns the final meta."""
    (folder / PRIOR_JSON).unlink(missing_ok=True)  # the old prior, if any, is invalid from here on
    kind = stored_kind(stored)
    weights = folder / WEIGHT_FILES[kind]
    fingerprint = meta["base"]["fingerprint"]
    _save_safetensors(
        folder / ANCHORS_FILE,
        {"anchors": anchors.float()},
        {
            "format": FORMAT,
            "face_ids": json.dumps([r["face_id"] for r in meta["references"]]),
            "base_fingerprint": fingerprint,
        },
    )
    _save_safetensors(weights, stored, {"format": FORMAT, "kind": kind, "base_fingerprint": fingerprint})
    for other in WEIGHT_FILES.values():
        if other != weights.name:
            (folder / other).unlink(missing_ok=True)
    meta = {**meta, "files": {ANCHORS_FILE: _file_record(folder / ANCHORS_FILE), weights.name: _file_record(weights)}}
    atomic_write_text(folder / PRIOR_JSON, json.dumps(meta, indent=2, default=float))
    return meta


def load_personal_prior(
    settings: Settings,
    person_id: int,
    device: str | torch.device = "cpu",
    base_generator: BaseGenerator | nn.Module | None = None,
    owner: dict | None = None,
) -> PersonalPrior:
    """The tuned generator and anchors of a person (PhotokitError on corrupt files, another base generator,
    or, when ``owner`` (see ``person_owner``) is given, a prior built for someone else with the same id).

    ``base_generator`` (default: the installed one) is not modified. Passing the same ``BaseGenerator``
    for every person avoids reloading the base and re-hashing its weights (its fingerprint is cached).
    """
    import copy

    from photokit.devices import resolve_device
    from photokit.store.hashing import file_sha256

    device = device if isinstance(device, torch.device) else resolve_device(device)
    folder = prior_dir(settings, person_id)
    meta = read_prior_meta(settings, person_id)
    recorded = meta.get("owner")
    if owner is not None and recorded is not None and recorded != owner:
        whom = (
            "another library"
            if recorded.get("library_id") != owner.get("library_id")
            else "an earlier person who had the same id"
        )
        raise PhotokitError(
            f"the prior in {folder} was built for {whom}, not for person {person_id}: "
            f"rebuild it with `photokit prior build {person_id} --restart`"
        )
    for name, record in meta.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            raise PhotokitError(f"prior of person {person_id} is incomplete: {name} is missing; rebuild it")
        if file_sha256(path) != record.get("sha256"):
            raise PhotokitError(
                f"prior of person {person_id} is corrupt: {name} does not match its checksum; "
                f"rebuild it with `photokit prior build {person_id} --restart`"
            )
    kind = meta["tuning"]["kind"]
    if WEIGHT_FILES[kind] not in meta.get("files", {}) or ANCHORS_FILE not in meta.get("files", {}):
        raise PhotokitError(f"prior of person {person_id} lists no {WEIGHT_FILES[kind]}; rebuild it")
    expected = meta["base"]["fingerprint"]
    if base_generator is None:
        base_generator = resolve_base(settings, device)
    elif not isinstance(base_generator, BaseGenerator):
        base_generator = BaseGenerator(base_generator, "the given generator")
    base, actual = base_generator.generator, base_generator.fingerprint
    if actual != expected:
        raise PhotokitError(
            f"prior of person {person_id} was tuned on base generator {meta['base'].get('name')} "
            f"({expected[:12]}), not on this one ({actual[:12]}): install that generator or rebuild the prior"
        )
    anchors = _load_safetensors(folder / ANCHORS_FILE)[0].get("anchors")
    if anchors is None or anchors.dim() != 2 or anchors.shape != (len(meta["references"]), base.w_dim):
        raise PhotokitError(f"prior of person {person_id}: anchors do not match its references or the generator")
    stored, _ = _load_safetensors(folder / WEIGHT_FILES[kind])
    tuned = copy.deepcopy(base).to(device)
    try:
        apply_stored(tuned.synthesis, {k: v.to(device) for k, v in stored.items()})
    except ValueError as exc:
        raise PhotokitError(f"prior of person {person_id} does not fit the base generator ({exc})") from None
    tuned.eval().requires_grad_(False)
    return PersonalPrior(int(meta["person_id"]), meta.get("person_name"), tuned, anchors.to(device), meta, folder)


# =====================================================================================================
# Building: presets, cost plan, stages


PRESETS = ("auto", "paper", "fast")


@dataclass(frozen=True)
class BuildOptions:
    """What `photokit prior build` was asked for. ``None`` = the preset's value."""

    preset: str = "auto"  # auto = paper on a GPU, fast elsewhere
    loss: str = "lpips"  # 'mse' = explicitly degraded (no LPIPS backbone installed)
    max_refs: int | None = None
    invert_steps: int | None = None
    tuning_steps: int | None = None
    adapter_rank: int | None = None
    budget_s: float = 600.0  # the fast preset shrinks its schedule to fit this (both stages together)
    restart: bool = False
    allow_random_lpips: bool = False  # tests only: LPIPS on a random backbone (never from the CLI)
    checkpoint_every_s: float = 180.0

    def __post_init__(self) -> None:
        from photokit.validation import checked_number

        checked_number("budget (seconds)", self.budget_s, 0.0, 7 * 24 * 3600.0, low_open=True)


# The published schedules, and a CPU-sized one. Fast: fewer, most diverse references (farthest-point order),
# a short projection and ~30 tuning epochs, then shrunk further to fit ``budget_s``.
PRESET_SCHEDULES = {
    "paper": {"max_refs": 100, "invert_steps": ProjectorConfig.steps, "epochs": TuningConfig.epochs},
    "fast": {"max_refs": 10, "invert_steps": 100, "epochs": 30},
}
FAST_FLOORS = {"invert_steps": 30, "epochs": 5, "refs": 5}


def resolve_preset(preset: str, device: torch.device) -> str:
    if preset not in PRESETS:
        raise PhotokitError(f"unknown preset '{preset}': use one of {', '.join(PRESETS)}")
    if preset == "auto":
        return "paper" if device.type == "cuda" else "fast"
    return preset


@dataclass
class BuildPlan:
    preset: str
    refs: int
    invert_steps: int
    invert_batch: int
    tuning_steps: int
    invert_step_s: float
    tuning_step_s: float
    paper_estimate_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def invert_batches(self) -> int:
        return -(-self.refs // self.invert_batch)

    @property
    def invert_s(self) -> float:
        return self.invert_steps * self.invert_batches * self.invert_step_s

    @property
    def tuning_s(self) -> float:
        return self.tuning_steps * self.tuning_step_s

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "invert_estimate_s": round(self.invert_s, 1),
            "tuning_estimate_s": round(self.tuning_s, 1),
        }


def plan_schedule(
    preset: str,
    refs: int,
    invert_batch: int,
    invert_step_s: float,
    tuning_step_s: float,
    options: BuildOptions,
    tuning_batch: int = 1,
) -> BuildPlan:
    """Step counts for a preset from measured per-step costs (pure). Explicit options always win;
    the fast preset then shrinks what is left to fit ``options.budget_s``, down to fixed floors."""
    per_epoch = -(-refs // tuning_batch)
    batches = -(-refs // invert_batch)
    sched = PRESET_SCHEDULES[preset]
    invert_steps = options.invert_steps or sched["invert_steps"]
    tuning_steps = options.tuning_steps or sched["epochs"] * per_epoch
    paper = PRESET_SCHEDULES["paper"]
    paper_s = paper["invert_steps"] * batches * invert_step_s + paper["epochs"] * per_epoch * tuning_step_s
    notes = []
    if preset == "fast":

        def cost(refs: int, invert_steps: int, tuning_steps: int) -> float:
            return invert_steps * -(-refs // invert_batch) * invert_step_s + tuning_steps * tuning_step_s

        total = cost(refs, invert_steps, tuning_steps)
        if total > options.budget_s:
            scale = options.budget_s / total
            if options.invert_steps is None:
                invert_steps = max(FAST_FLOORS["invert_steps"], int(invert_steps * scale))
            if options.tuning_steps is None:
                tuning_steps = max(FAST_FLOORS["epochs"] * per_epoch, int(tuning_steps * scale))
            # Still too slow at the floors: fewer references (the most diverse come first).
            while (
                options.max_refs is None
                and refs > FAST_FLOORS["refs"]
                and cost(refs, invert_steps, tuning_steps) > options.budget_s
            ):
                refs -= 1
                if options.tuning_steps is None:
                    tuning_steps = max(
                        FAST_FLOORS["epochs"] * -(-refs // tuning_batch), int(tuning_steps * refs / (refs + 1))
                    )
            notes.append(f"fast schedule shrunk to fit a budget of {options.budget_s / 60:.0f} min")
    return BuildPlan(
        preset, refs, invert_steps, min(invert_batch, refs), tuning_steps, invert_step_s, tuning_step_s, paper_s, notes
    )


def _make_losses(options: BuildOptions, device: torch.device, projector: ProjectorConfig, tuning: TuningConfig):
    """(inversion loss, tuning loss, loss kind). Stops with a one-line message when LPIPS is missing."""
    from photokit.stylegan2.losses import ReconstructionLoss, make_reconstruction_loss

    if options.loss == "mse":
        return ReconstructionLoss(None, 1.0).to(device), ReconstructionLoss(None, tuning.mse_weight).to(device), "mse"
    if options.loss != "lpips":
        raise PhotokitError(f"unknown loss '{options.loss}': use lpips or mse")
    # The projector's loss is LPIPS alone; tuning adds lambda_L2 x MSE (MyStyle eq. 1).
    inv = make_reconstruction_loss("lpips", projector.lpips_net, device, 0.0, options.allow_random_lpips)
    tun = make_reconstruction_loss("lpips", tuning.lpips_net, device, tuning.mse_weight, options.allow_random_lpips)
    return inv, tun, tun.name


def _anchor_signature(base: BaseGenerator, refs, projector: ProjectorConfig, loss_kind: str) -> str:
    import hashlib

    data = {
        "base": base.fingerprint,
        "faces": [f["face_id"] for f in refs.faces],
        "loss": loss_kind,
        "projector": projector.to_json(),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def compute_anchors(
    base: BaseGenerator,
    refs,
    targets: torch.Tensor,
    loss_fn,
    projector: ProjectorConfig,
    loss_kind: str,
    work: Path,
    progress=None,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[torch.Tensor, list[float], list[float]]:
    """Invert every reference, batch by batch; finished batches are saved, so an interruption loses at
    most the batch in progress. Returns (anchors (N, w_dim), start losses, final losses)."""
    G = base.generator
    partial = work / ANCHORS_PARTIAL
    signature = _anchor_signature(base, refs, projector, loss_kind)
    done = torch.zeros(0, G.w_dim)
    start_losses: list[float] = []
    final_losses: list[float] = []
    if partial.is_file():
        tensors, meta = _load_safetensors(partial)
        if meta.get("signature") == signature:
            done = tensors["anchors"]
            start_losses = json.loads(meta["start_losses"])
            final_losses = json.loads(meta["final_losses"])
    n = len(targets)
    w_stats = w_statistics(G, projector.w_avg_samples, targets.device, projector.seed)
    task = (
        progress.add_task("anchors (W inversion)", total=n * projector.steps, completed=len(done) * projector.steps)
        if progress
        else None
    )
    while len(done) < n:
        lo, hi = len(done), min(n, len(done) + projector.batch_size)

        def step(i: int, loss: float) -> None:
            if progress:
                progress.update(
                    task, advance=hi - lo, status=f"batch {lo // projector.batch_size + 1}, loss {loss:.4f}"
                )
            if on_step is not None:
                on_step(i, loss)

        result = invert_w(G, targets[lo:hi], loss_fn, projector, w_stats=w_stats, on_step=step)
        done = torch.cat([done, result.ws.cpu()])
        start_losses += result.start_loss
        final_losses += result.final_loss
        _save_safetensors(
            partial,
            {"anchors": done},
            {
                "signature": signature,
                "start_losses": json.dumps(start_losses),
                "final_losses": json.dumps(final_losses),
            },
        )
    return done.to(targets.device), start_losses, final_losses


def build_prior(
    db,
    settings: Settings,
    person_ref: str,
    options: BuildOptions = BuildOptions(),
    device: str | torch.device = "auto",
    generator_path: str | Path | None = None,
    notify: Callable[[str], None] = lambda message: None,
    progress: bool = True,
    projector: ProjectorConfig | None = None,
    tuning: TuningConfig | None = None,
) -> dict:
    """refs -> anchors -> tuning -> stored prior, resuming whatever a previous run finished.

    ``notify`` receives the up-front plan and cost lines; the returned dict is the build report.
    """
    from photokit.devices import describe_device, resolve_device
    from photokit.faces.people import resolve_person
    from photokit.progress import format_duration
    from photokit.stylegan2.timing import time_step

    started = time.perf_counter()
    device = device if isinstance(device, torch.device) else resolve_device(device)
    preset = resolve_preset(options.preset, device)
    base = resolve_base(settings, device, generator_path)
    warning = base.warning()
    if warning:
        notify(f"warning: {warning}")
    with db.session() as session:
        person = resolve_person(session, person_ref)
        person_id, person_name = person.id, person.name
    owner = person_owner(db, person_id)
    folder = prior_dir(settings, person_id)
    work = folder / WORK_DIR
    if options.restart and work.exists():
        shutil.rmtree(work)

    projector = projector or ProjectorConfig()
    tuning = tuning or TuningConfig()
    tuning = replace(
        tuning, adapter_rank=options.adapter_rank or tuning.adapter_rank, checkpoint_every_s=options.checkpoint_every_s
    )
    inv_loss, tun_loss, loss_kind = _make_losses(options, device, projector, tuning)
    if loss_kind == "mse":
        notify("loss: MSE only (--loss mse): explicitly degraded quality, recorded in prior.json")

    # -- cost, measured on the device before any long work (a step costs the same for any image) -----
    G = base.generator
    resolution = G.resolution
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else None  # an unfinished build's plan
    upper = options.max_refs or (state or {}).get("max_refs") or PRESET_SCHEDULES[preset]["max_refs"]
    preview_selection(db, str(person_id), resolution, RefsConfig(max_refs=upper))  # too few faces: stop now
    invert_batch = min(projector.batch_size, upper)
    probe = torch.rand(invert_batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0)).to(device)
    inv_step_s = time_step(inversion_step_probe(G, probe * 2 - 1, inv_loss, projector), device)
    probe_anchors = G.w_avg.to(device).reshape(1, -1).repeat(tuning.batch_size, 1)
    tun_step_s = time_step(
        tuning_step_probe(
            G, probe_anchors, probe.repeat(tuning.batch_size, 1, 1, 1)[: tuning.batch_size], tun_loss, tuning
        ),
        device,
    )
    max_refs = (
        upper
        if state or options.max_refs
        else plan_schedule(preset, upper, invert_batch, inv_step_s, tun_step_s, options, tuning.batch_size).refs
    )

    # -- stage 1: references -------------------------------------------------------------------------
    refs = None if options.restart else read_reference_set(folder)
    if refs is not None and (refs.resolution != resolution or refs.config.get("max_refs") != max_refs):
        refs = None
    if refs is None:
        refs = build_reference_set(db, str(person_id), resolution, folder, RefsConfig(max_refs=max_refs), progress)
        dropped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in refs.counts().items() if k != "kept")
        notify(f"references: {len(refs.faces)} kept; dropped: {dropped or 'none'} (details: `photokit prior refs`)")
    else:
        notify(f"references: reusing {len(refs.faces)} from {folder / 'refs.json'}")
    targets = load_reference_images(refs).to(device)
    n = len(targets)
    face_ids = [f["face_id"] for f in refs.faces]
    if state is not None and (state.get("faces") != face_ids or state.get("base") != base.fingerprint):
        shutil.rmtree(work)
        state = None

    # -- the schedule: a resumed build keeps the one it started with (fast depends on timings) ---------
    plan = plan_schedule(
        preset,
        n,
        min(invert_batch, n),
        inv_step_s * min(invert_batch, n) / invert_batch,
        tun_step_s,
        replace(options, max_refs=n),
        tuning.batch_size,
    )
    if state is not None:
        plan.invert_steps = options.invert_steps or state["invert_steps"]
        plan.tuning_steps = options.tuning_steps or state["tuning_steps"]
        plan.notes.append("resuming an unfinished build with its original schedule")
    else:
        atomic_write_text(
            state_path,
            json.dumps(
                {
                    "faces": face_ids,
                    "base": base.fingerprint,
                    "max_refs": max_refs,
                    "invert_steps": plan.invert_steps,
                    "tuning_steps": plan.tuning_steps,
                }
            ),
        )
    projector = replace(projector, steps=plan.invert_steps)
    tuning = replace(tuning, steps=plan.tuning_steps)
    notify(
        f"preset {preset}{' (auto on ' + device.type + ')' if options.preset == 'auto' else ''} on "
        f"{describe_device(device)}: {n} references at {resolution} px, loss {loss_kind}"
        + (f", low-rank adapters R={tuning.adapter_rank}" if tuning.adapter_rank else ", full tuning")
    )
    notify(
        f"  anchors: {plan.invert_batches} batch(es) x {plan.invert_steps} steps at {plan.invert_step_s:.3g} s/step "
        f"= about {format_duration(plan.invert_s)}"
    )
    notify(f"  tuning: {plan.tuning_steps} steps at {tun_step_s:.3g} s/step = about {format_duration(plan.tuning_s)}")
    if preset != "paper":
        notify(
            f"  (the paper schedule, --preset paper, would take about {format_duration(plan.paper_estimate_s)} here)"
        )
    for line in plan.notes:
        notify(f"  {line}")

    from photokit.progress import make_progress

    bar = make_progress() if progress else None
    timings = {}
    with bar if bar is not None else contextlib.nullcontext():
        # -- stage 2: anchors ----------------------------------------------------------------------------
        t0 = time.perf_counter()
        anchors, inv_start, inv_final = compute_anchors(base, refs, targets, inv_loss, projector, loss_kind, work, bar)
        timings["anchors_s"] = round(time.perf_counter() - t0, 2)

        # -- stage 3: tuning -----------------------------------------------------------------------------
        task = bar.add_task("tuning", total=plan.tuning_steps) if bar is not None else None

        def on_step(step: int, total: int, loss: float) -> None:
            if bar is not None:
                bar.update(task, completed=step, status=f"loss {loss:.4f}")

        result = tune(
            base.generator,
            anchors,
            targets,
            tun_loss,
            tuning,
            base.fingerprint,
            checkpoint=work / TUNING_CHECKPOINT,
            on_step=on_step,
        )
        timings["tuning_s"] = round(result.seconds, 2)
    if result.resumed_from:
        notify(f"tuning resumed from its checkpoint at step {result.resumed_from}")

    full_bytes = (
        sum(p.numel() for p in synthesis_parameters(base.generator.synthesis).values())
        * torch.finfo(getattr(torch, tuning.storage_dtype)).bits
        // 8
    )
    mean = lambda xs: float(sum(xs) / len(xs))  # noqa: E731
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "person_id": person_id,
        "person_name": person_name,
        "owner": owner,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "preset": preset,
        "device": str(device),
        "base": base.to_json(),
        "loss": {
            "kind": loss_kind,
            "degraded": loss_kind == "mse",
            "inversion": f"lpips-{projector.lpips_net}" if loss_kind != "mse" else "mse",
            "tuning": loss_kind,
        },
        "references": [{"index": i, **f} for i, f in enumerate(refs.faces)],
        "projector": projector.to_json(),
        "anchors": {"loss_start": mean(inv_start), "loss_final": mean(inv_final), "per_reference": inv_final},
        "tuning": {
            **tuning.to_json(),
            "kind": result.kind,
            "steps_done": result.steps,
            "resumed_from": result.resumed_from,
            "loss_before": mean(result.losses_before),
            "loss_after": mean(result.losses_after),
            "per_reference_after": result.losses_after,
            "stored_bytes": stored_bytes(result.stored),
            "full_delta_bytes": full_bytes,
        },
        "plan": plan.to_json(),
        "timings": {**timings, "total_s": round(time.perf_counter() - started, 2)},
        "warnings": [w for w in [warning] if w],
    }
    meta = save_prior(folder, anchors, result.stored, meta)
    shutil.rmtree(work, ignore_errors=True)
    return meta
