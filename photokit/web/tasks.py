"""What the gallery's background jobs do: each kind calls the same library function as its CLI command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from photokit.errors import PhotokitError
from photokit.reporting import NoteLevel
from photokit.settings import Settings
from photokit.web.jobs import Handler, JobContext

if TYPE_CHECKING:
    from photokit.prior.schedule import BuildOptions

RESTORE_ALBUM = "restore_album"
PRIOR_BUILD = "prior_build"
LOSSES = ("lpips", "mse")
MAX_STEPS = 1_000_000


def restore_album_params(path: str, out: str | None, loss: str, steps: int | None) -> dict:
    """Checked parameters of an album restoration (same rules as `photokit enhance`)."""
    folder = Path(path).expanduser()
    if not path.strip() or not folder.exists():
        raise PhotokitError(f"{path}: no such file or folder")
    if loss not in LOSSES:
        raise PhotokitError(f"loss {loss!r}: use lpips or mse")
    if steps is not None and steps < 0:
        raise PhotokitError("steps must be 0 or more")
    return {"paths": [str(folder.resolve())], "out": out or None, "loss": loss, "steps": steps}


def prior_build_params(
    person_id: int,
    preset: str,
    loss: str,
    budget_min: float,
    invert_steps: int | None = None,
    tuning_steps: int | None = None,
) -> dict:
    """Checked parameters of a prior build (same rules as `photokit prior build`; steps: None = the preset's)."""
    from photokit.prior.vocab import Preset

    if preset not in set(Preset):
        raise PhotokitError(f"preset {preset!r}: use one of {', '.join(Preset)}")
    if loss not in LOSSES:
        raise PhotokitError(f"loss {loss!r}: use lpips or mse")
    if not 0.5 <= budget_min <= 24 * 60:
        raise PhotokitError("budget must be between 0.5 and 1440 minutes")
    params = {"person_id": int(person_id), "preset": str(preset), "loss": str(loss), "budget_min": float(budget_min)}
    for key, steps in (("invert_steps", invert_steps), ("tuning_steps", tuning_steps)):
        if steps is not None:
            if not 1 <= steps <= MAX_STEPS:
                raise PhotokitError(f"{key.replace('_', ' ')} must be between 1 and {MAX_STEPS}")
            params[key] = int(steps)
    return params


def optional_steps(text: str) -> int | None:
    """A step count typed into a form: blank means the preset's."""
    return int(text) if text.strip() else None


def build_options(params: dict) -> BuildOptions:
    """The ``BuildOptions`` of a prior build job: the confirm page estimates exactly what the job runs."""
    from photokit.prior.schedule import BuildOptions

    return BuildOptions(
        preset=params.get("preset", "auto"),
        loss=params.get("loss", "lpips"),
        budget_s=params["budget_min"] * 60,
        invert_steps=params.get("invert_steps"),
        tuning_steps=params.get("tuning_steps"),
    )


def handlers(db, settings: Settings) -> dict[str, Handler]:
    def restore_album(ctx: JobContext) -> dict:
        from photokit.devices import resolve_device
        from photokit.prior.storage import person_owner
        from photokit.restore.batch import run_batch
        from photokit.restore.options import EnhanceOptions
        from photokit.restore.pipeline import Enhancer
        from photokit.restore.priors import DatabasePeople, StorePriors

        p = ctx.params
        device = resolve_device(p.get("device", "auto"))
        out = Path(p["out"]) if p.get("out") else None
        options = EnhanceOptions(steps=p.get("steps"), loss=p.get("loss", "lpips"), out_dir=out)
        priors = StorePriors(settings, device, owner_of=lambda person_id: person_owner(db, person_id))
        enhancer = Enhancer(options, priors, DatabasePeople(db), device=device, reporter=ctx.reporter)
        for warning in enhancer.warnings():
            ctx.reporter.note(warning, NoteLevel.WARNING)
        summary = run_batch(db, p["paths"], enhancer, reporter=ctx.reporter, on_photo_done=lambda *_: ctx.check())
        result = summary.to_json()
        result.pop("reports", None)  # the per-photo reports live on the EnhanceJob rows
        return result

    def prior_build(ctx: JobContext) -> dict:
        from photokit.prior.personal import build_prior

        p = ctx.params
        built = build_prior(
            db, settings, str(p["person_id"]), build_options(p), device=p.get("device", "auto"), reporter=ctx.reporter
        )
        return built.summary()

    return {RESTORE_ALBUM: restore_album, PRIOR_BUILD: prior_build}
