"""`photokit prior refs|build|list|show|sample|remove`: personal generative priors (MyStyle).

Just over 400 lines: one command group, kept together; `build`'s schedule options are most of the excess."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from photokit.cli.common import (
    DeviceOption,
    JsonOption,
    RayCommand,
    RayOption,
    WorkersOption,
    console,
    database_from,
    print_json,
    ray_address,
    settings_from,
    user_text,
)
from photokit.devices import Device
from photokit.errors import PhotokitError
from photokit.prior.vocab import Preset
from photokit.stylegan2.vocab import LossKind, Precision

prior_app = typer.Typer(
    help="Personal generative priors: reference sets, anchors, tuned generators.", no_args_is_help=True
)

GeneratorOption = typer.Option(None, "--generator", help="Base StyleGAN2 file (default: the installed FFHQ model).")


def _person_id(ctx: typer.Context, ref: str) -> tuple[int, str | None]:
    """A person by id or name; a bare id also works for a prior whose person left the library."""
    from photokit.faces.people import resolve_person
    from photokit.prior.meta import prior_dir

    try:
        with database_from(ctx).session(write=False) as session:
            person = resolve_person(session, ref)
            return person.id, person.name
    except PhotokitError:
        if ref.isdigit() and prior_dir(settings_from(ctx), int(ref)).is_dir():
            return int(ref), None
        raise


def _refs_table(refs) -> Table:
    table = Table(
        title=f"references of person {refs.person_id}"
        + (f" ({user_text(refs.person_name)})" if refs.person_name else "")
        + f" at {refs.resolution} px"
    )
    for col in ("face", "photo", "size px", "sharpness", "yaw", "status", "detail"):
        table.add_column(col)
    kept = {f["face_id"]: f for f in refs.faces}
    for d in sorted(refs.decisions, key=lambda d: (not d.kept, d.order if d.kept else 0, d.reason or "", d.face_id)):
        f = kept.get(d.face_id, {})
        table.add_row(
            str(d.face_id),
            user_text(Path(d.path).name) if d.path else "?",
            f"{f['side_px']:.0f}" if f else "",
            f"{f['blur']:.0f}" if f.get("blur") is not None else "",
            f"{f['yaw']:+.0f}" if f.get("yaw") is not None else "",
            f"[green]kept #{d.order}[/]" if d.kept else f"[yellow]dropped: {user_text(d.reason)}[/]",
            user_text(d.detail or ""),
        )
    return table


@prior_app.command("refs")
def refs_command(
    ctx: typer.Context,
    person: str = typer.Argument(..., help="Person id or name."),
    max_refs: int = typer.Option(100, "--max", min=1, help="At most this many references (most diverse first)."),
    generator: Path | None = GeneratorOption,
    json_out: bool = JsonOption,
) -> None:
    """Pick a person's reference faces and write their aligned crops into the prior's folder."""
    import torch

    from photokit.cli.reporters import RichReporter
    from photokit.prior.meta import prior_dir
    from photokit.prior.refs import build_reference_set
    from photokit.prior.selection import RefsConfig
    from photokit.stylegan2.base import resolve_base

    settings = settings_from(ctx)
    base = resolve_base(settings, torch.device("cpu"), generator)
    person_id, _ = _person_id(ctx, person)
    with RichReporter(enabled=not json_out, transient=True) as reporter:
        refs = build_reference_set(
            database_from(ctx),
            str(person_id),
            base.generator.resolution,
            prior_dir(settings, person_id),
            RefsConfig(max_refs=max_refs),
            reporter=reporter,
        )
    if json_out:
        print_json(refs.to_json())
        return
    console.print(_refs_table(refs))
    counts = refs.counts()
    console.print(
        f"kept {counts.pop('kept')}; dropped: "
        + (", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) or "none")
        + f"\ncrops written to {user_text(refs.folder / 'refs')}"
    )


LossOption = typer.Option(
    LossKind.LPIPS,
    "--loss",
    help="lpips (needs `photokit models install lpips-alex lpips-vgg`) or mse (explicitly lower quality).",
)
AdapterRankOption = typer.Option(
    None,
    "--adapter-rank",
    min=0,
    help="Rank-R adapters on every weight (fast: ranks follow the width; 0: all weights).",
)
BuildPrecisionOption = typer.Option(
    Precision.AUTO,
    "--precision",
    help="Arithmetic of the inversion and tuning steps: fp32, bf16 or auto (fast: bf16 on CPUs with native bf16; "
    "paper: fp32). Reconstruction errors are measured in fp32.",
)


@prior_app.command("build", cls=RayCommand)
def build_command(
    ctx: typer.Context,
    person: str | None = typer.Argument(None, help="Person id or name (or --all)."),
    build_all: bool = typer.Option(
        False, "--all", help="Every named person with enough faces and no prior yet (says who is skipped and why)."
    ),
    preset: Preset = typer.Option(
        Preset.AUTO, "--preset", help="auto (paper on a GPU, fast elsewhere), paper or fast."
    ),
    loss: LossKind = LossOption,
    steps: int | None = typer.Option(None, "--steps", min=1, help="Tuning steps (default: from the preset)."),
    invert_steps: int | None = typer.Option(None, "--invert-steps", min=1, help="W-inversion steps per anchor."),
    max_refs: int | None = typer.Option(None, "--max", min=5, help="At most this many references."),
    adapter_rank: int | None = AdapterRankOption,
    budget_min: float = typer.Option(10.0, "--budget", min=0.5, help="Minutes the fast preset aims to fit in."),
    precision: Precision = BuildPrecisionOption,
    resume: bool = typer.Option(
        True, "--resume/--restart", help="Continue an interrupted build (default) or start over."
    ),
    estimate_only: bool = typer.Option(
        False, "--estimate", help="Only time one step of each stage and print the plan and cost; build nothing."
    ),
    generator: Path | None = GeneratorOption,
    device: Device = DeviceOption,
    json_out: bool = JsonOption,
    ray: str | None = RayOption,
    workers: int | None = WorkersOption,
) -> None:
    """Build a person's prior end to end: references -> anchors (W inversion) -> pivotal tuning."""
    from photokit.prior.schedule import BuildOptions

    _check_build_target(person, build_all, ray, estimate_only)
    options = BuildOptions(
        preset=preset,
        loss=loss,
        max_refs=max_refs,
        invert_steps=invert_steps,
        tuning_steps=steps,
        adapter_rank=adapter_rank,
        budget_s=budget_min * 60,
        precision=precision,
        restart=not resume,
    )
    if build_all:
        from photokit.cli.prior_all import build_all

        return build_all(ctx, options, device, generator, json_out, ray, workers)
    assert person is not None
    person_id, _ = _person_id(ctx, person)
    if estimate_only:
        _print_estimate(ctx, person_id, options, device, generator, json_out)
    else:
        _build_one(ctx, person_id, options, device, generator, json_out)


def _check_build_target(person: str | None, build_all: bool, ray: str | None, estimate_only: bool) -> None:
    """One person or --all; --ray only with --all, --estimate only for one person."""
    if build_all == (person is not None):
        raise PhotokitError("name one person to build, or --all for everyone who qualifies")
    if ray_address(ray) is not None and not build_all:
        raise PhotokitError("--ray builds several priors at once: use it with --all")
    if estimate_only and build_all:
        raise PhotokitError("--estimate is for one person: `prior build --all` says every cost before it starts")


def _build_one(ctx: typer.Context, person_id: int, options, device: Device, generator, json_out: bool) -> None:
    """One person's prior built here, the plan and cost said up front (also with --json, on stderr)."""
    from photokit.cli.reporters import RichReporter
    from photokit.prior.personal import build_prior

    with RichReporter(enabled=not json_out, notes=True) as reporter:  # the plan and cost, also with --json
        built = build_prior(
            database_from(ctx),
            settings_from(ctx),
            str(person_id),
            options,
            device=device,
            generator_path=generator,
            reporter=reporter,
        )
    if json_out:
        print_json(built.to_json())
        return
    _print_summary(built.meta, built.summary())


def _print_estimate(ctx: typer.Context, person_id: int, options, device: Device, generator, json_out: bool) -> None:
    from photokit.prior.estimate import estimate_build
    from photokit.reporting import format_duration

    est = estimate_build(database_from(ctx), settings_from(ctx), str(person_id), options, device, generator)
    if json_out:
        print_json(est.to_json())
        return
    console.print(
        f"prior of person {est.person_id}"
        + (f" ({user_text(est.person_name)})" if est.person_name else "")
        + f": {est.usable_faces} usable faces"
        + (", resuming an unfinished build" if est.resuming else "")
    )
    for line in est.lines():
        console.print(user_text(line))
    console.print(f"  total: about {format_duration(est.total_s)}; nothing was built (drop --estimate to build)")
    for w in est.warnings:
        console.print(f"  [yellow]warning:[/] {user_text(w)}")


def _number(value, spec: str = ".4f") -> str:
    """A recorded figure, or '-' when the prior.json does not have it (older or hand-edited files)."""
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _print_summary(meta: dict, summary: dict) -> None:
    from photokit.prior.meta import tuned_weights
    from photokit.reporting import format_duration

    t, anchors, loss = meta["tuning"], meta.get("anchors", {}), meta.get("loss", {})
    lowrank = t["kind"] == "lowrank"
    kind = tuned_weights(t)
    console.print(
        f"prior of person {meta['person_id']}"
        + (f" ({user_text(meta['person_name'])})" if meta.get("person_name") else "")
        + f": {len(meta['references'])} anchors, preset {meta.get('preset', '-')}, loss {loss.get('kind', '-')}"
        + (" (degraded)" if loss.get("degraded") else "")
    )
    console.print(
        f"  anchors: inversion loss {_number(anchors.get('loss_start'))} -> {_number(anchors.get('loss_final'))}"
    )
    console.print(
        f"  tuning: {t.get('steps_done', '-')} steps, reconstruction loss {_number(t.get('loss_before'))} "
        f"-> {_number(t.get('loss_after'))}"
    )
    full, stored = t.get("full_delta_bytes"), t.get("stored_bytes")
    console.print(
        f"  stored: {kind}, {summary['bytes'] / 1e6:.2f} MB"
        + (
            f" (a full delta would be {full / 1e6:.2f} MB, {full / max(stored, 1):.0f}x more)"
            if lowrank and _number(full) != "-" and _number(stored) != "-"
            else ""
        )
    )
    timings = {k: v for k, v in meta.get("timings", {}).items() if _number(v) != "-"}
    if timings:
        console.print(
            "  time: " + ", ".join(f"{k.removesuffix('_s')} {format_duration(v)}" for k, v in timings.items())
        )
    for w in meta.get("warnings", []):
        console.print(f"  [yellow]warning:[/] {user_text(w)}")


@prior_app.command("list")
def list_command(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """Priors in the model store."""
    from photokit.prior.meta import list_priors

    priors = list_priors(settings_from(ctx))
    if json_out:
        print_json(priors)
        return
    if not priors:
        console.print("no personal priors yet: `photokit prior build PERSON`")
        return
    table = Table(title="personal priors")
    for col in ("person", "name", "anchors", "stored", "MB", "loss", "before -> after", "base", "preset"):
        table.add_column(col)
    for p in priors:
        if "error" in p:
            table.add_row(str(p["person_id"]), "", "", "", "", "", f"[red]{user_text(p['error'])}[/]", "", "")
            continue
        stored = f"rank {p['rank']}" if p["kind"] == "lowrank" else "full delta"
        table.add_row(
            str(p["person_id"]),
            user_text(p["person_name"] or ""),
            str(p["anchors"]),
            stored,
            f"{p['bytes'] / 1e6:.2f}",
            p["loss"] or "-",
            f"{_number(p['loss_before'], '.3f')} -> {_number(p['loss_after'], '.3f')}",
            p["base"] or "-",
            p["preset"] or "-",
        )
    console.print(table)


@prior_app.command("show")
def show_command(
    ctx: typer.Context, person: str = typer.Argument(..., help="Person id or name."), json_out: bool = JsonOption
) -> None:
    """Everything recorded about one person's prior."""
    from photokit.prior.meta import prior_summary, read_prior_meta

    person_id, _ = _person_id(ctx, person)
    meta = read_prior_meta(settings_from(ctx), person_id)
    if json_out:
        print_json(meta)
        return
    _print_summary(meta, prior_summary(meta))
    console.print(
        "  references (anchor order): " + ", ".join(f"#{r['index']} face {r['face_id']}" for r in meta["references"])
    )
    console.print(f"  base generator: {user_text(meta['base']['name'])} ({meta['base']['fingerprint'][:12]})")


@prior_app.command("sample")
def sample_command(
    ctx: typer.Context,
    person: str = typer.Argument(..., help="Person id or name."),
    out: Path = typer.Option(..., "--out", help="Contact sheet to write (PNG)."),
    count: int = typer.Option(16, "--count", min=1, max=256, help="How many faces."),
    beta: float = typer.Option(
        0.0, "--beta", min=0.0, help="Dilation: 0 samples the anchors' convex hull P0 (MyStyle B.1); > 0 reaches out."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (the same seed gives the same sheet)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    device: Device = DeviceOption,
    json_out: bool = JsonOption,
) -> None:
    """New faces of a person from their prior: 3 random anchors, uniform weights (MyStyle appendix B.1)."""
    import secrets

    from photokit.cli.common import new_output_path
    from photokit.cli.reporters import RichReporter
    from photokit.devices import resolve_device
    from photokit.prior.personal_sampling import sample_sheet
    from photokit.prior.storage import person_owner
    from photokit.reporting import NoteLevel
    from photokit.restore.priors import StorePriors

    out = new_output_path(out, force)
    person_id, name = _person_id(ctx, person)
    torch_device = resolve_device(device)
    db = database_from(ctx)
    priors = StorePriors(settings_from(ctx), torch_device, owner_of=lambda pid: person_owner(db, pid))
    prior = priors.personal(person_id)
    if prior is None:
        raise PhotokitError(f"person {person_id} has no personal prior: run `photokit prior build {person_id}`")
    warnings = [w for w in [priors.base().warning()] if w]
    seed = secrets.randbelow(2**31) if seed is None else seed
    with RichReporter(transient=True) as reporter:
        for w in warnings:
            reporter.note(w, NoteLevel.WARNING)
        info = sample_sheet(prior, out, count, beta, seed, reporter=reporter)
    info.update(person_id=person_id, person=name, device=torch_device.type, warnings=warnings)
    if json_out:
        print_json(info)
        return
    console.print(
        f"wrote {out}: {count} faces of {name or f'person {person_id}'} from "
        + ("P0 (the anchors' convex hull)" if beta == 0 else f"P_beta, beta {beta:g}")
        + f", seed {seed}, {info['resolution']} px, {info['seconds']:.1f} s",
        highlight=False,
    )


@prior_app.command("remove")
def remove_command(
    ctx: typer.Context,
    person: str = typer.Argument(..., help="Person id or name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Delete a person's prior (references, anchors and weights)."""
    from photokit.prior.storage import remove_prior

    person_id, _ = _person_id(ctx, person)
    if not yes and not typer.confirm(f"delete the personal prior of person {person_id}?"):
        raise typer.Exit(1)
    console.print(f"removed {user_text(remove_prior(settings_from(ctx), person_id))}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(prior_app, name="prior")
