"""`photokit edit`: identity-preserving edits of a person's face in a photo, with their personal prior."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from photokit.cli.common import DeviceOption, JsonOption, console, database_from, print_json, settings_from
from photokit.devices import Device
from photokit.errors import PhotokitError
from photokit.prior.vocab import EditPolicy
from photokit.stylegan2.vocab import LossKind

EDIT_HELP = (
    "An edit NAME=AMOUNT; repeat for several, applied in order: --edit smile=10 --edit years=+5. "
    "Names and units: `photokit edit --list PERSON`."
)


def parse_edit(text: str):
    """'smile=1.5' -> EditRequest('smile', 1.5); a one-line error for anything else."""
    from photokit.restore.edit import EditRequest

    name, sep, amount = text.partition("=")
    try:
        value = float(amount)
    except ValueError:
        value = math.nan
    if not sep or not name.strip() or not math.isfinite(value):
        raise PhotokitError(f"--edit {text!r}: write NAME=AMOUNT, e.g. --edit smile=10 or --edit years=+5")
    return EditRequest(name.strip(), value)


def _person_with_prior(ctx: typer.Context, person: str, device):
    """(settings, db, person id, name, StorePriors, base generator or None) for a PERSON who has a prior."""
    from photokit.prior.meta import has_prior
    from photokit.prior.storage import person_owner
    from photokit.restore.priors import DatabasePeople, StorePriors

    settings, db = settings_from(ctx), database_from(ctx)
    person_id, name = DatabasePeople(db).resolve(person)
    if not has_prior(settings, person_id):
        who = name or f"person {person_id}"
        raise PhotokitError(f"{who} has no personal prior yet: run `photokit prior build {person_id}` first")
    priors = StorePriors(settings, device, owner_of=lambda pid: person_owner(db, pid))
    return settings, db, person_id, name, priors, priors.base()


def list_directions(ctx: typer.Context, person: str, as_json: bool) -> None:
    import torch

    from photokit.prior.directions import person_catalog, stored_anchors
    from photokit.prior.meta import read_prior_meta

    settings, db, person_id, name, _, base = _person_with_prior(ctx, person, torch.device("cpu"))
    num_ws = int(base.generator.num_ws) if base is not None else 1
    anchors, meta = stored_anchors(settings, person_id), read_prior_meta(settings, person_id)
    catalog = person_catalog(db, anchors, meta, base.generator if base else None, settings.models_dir, num_ws)
    if as_json:
        print_json({"person_id": person_id, "person": name, "directions": catalog.to_json()})
        return
    table = Table(title=f"edit directions for {name or f'person {person_id}'}")
    for col in ("name", "kind", "amount unit", "quality", "status"):
        table.add_column(col, overflow="fold")
    for d in catalog.directions:
        if d.kind.value == "personal":
            quality = f"R^2 {d.detail['r2']:.2f} (LOO), {d.detail['anchors']} anchors" if "r2" in d.detail else ""
            quality = quality or f"{d.detail.get('anchors', 0)} anchors"
        elif d.kind.value == "sefa":
            quality = f"eigenvalue {d.detail['eigenvalue']:.3g}"
        else:
            quality = f"norm {d.detail['norm']:.3g}" if "norm" in d.detail else ""
        status = "[green]usable[/]" if d.refused is None else f"[yellow]refused: {d.refused}[/]"
        table.add_row(d.name, d.kind.value, d.unit, quality, status)
    console.print(table)
    if base is None:
        console.print("no base generator installed: SeFa directions need one (`photokit models list`)")


def edit(
    ctx: typer.Context,
    photo: Path | None = typer.Argument(None, help="The photo to edit (the output goes next to it)."),
    person: str | None = typer.Option(None, "--person", help="Whose face to edit: person id or name."),
    edits: list[str] = typer.Option([], "--edit", help=EDIT_HELP),
    list_person: str | None = typer.Option(None, "--list", help="List PERSON's edit directions and exit."),
    policy: EditPolicy = typer.Option(
        EditPolicy.STOP,
        "--policy",
        help="When an edit leaves the prior (P_beta): stop there, continue, or project back.",
    ),
    beta: float = typer.Option(0.02, "--beta", min=0.0, help="Allowed dilation of the prior (MyStyle B.4: 0.02)."),
    steps: int | None = typer.Option(None, "--steps", min=0, help="Projection steps (default 1000 GPU, 100 CPU)."),
    loss: LossKind = typer.Option(
        LossKind.LPIPS, "--loss", help="lpips (needs `photokit models install lpips-alex`) or mse."
    ),
    device: Device = DeviceOption,
    as_json: bool = JsonOption,
) -> None:
    """Edit a person's face in a photo along personal, SeFa or installed directions, inside their prior.

    Example: photokit edit photo.jpg --person "Grandma Rose" --edit smile=10 --edit yaw=-15 --policy project
    """
    if list_person is not None:
        list_directions(ctx, list_person, as_json)
        return
    if photo is None or person is None or not edits:
        raise PhotokitError("give a photo, --person and at least one --edit NAME=AMOUNT (or --list PERSON)")
    requests = tuple(parse_edit(e) for e in edits)
    if not photo.expanduser().is_file():
        raise PhotokitError(f"{photo}: no such file")
    _run_edit(ctx, photo.expanduser(), person, requests, policy, beta, steps, loss, device, as_json)


def _run_edit(ctx, photo, person, requests, policy, beta, steps, loss, device, as_json) -> None:
    from photokit.cli.reporters import RichReporter
    from photokit.devices import resolve_device
    from photokit.prior.directions import person_catalog
    from photokit.restore.edit import EditOptions, PhotoEditor
    from photokit.restore.loading import model_warnings
    from photokit.restore.priors import DatabasePeople
    from photokit.restore.project import SmallImageLoss
    from photokit.stylegan2.losses import make_reconstruction_loss

    chosen = EditPolicy(policy)
    torch_device = resolve_device(device)
    settings, db, person_id, name, priors, base = _person_with_prior(ctx, person, torch_device)
    prior = priors.personal(person_id)
    if base is None or prior is None:
        raise PhotokitError("editing needs the base generator the prior was built on: see `photokit models list`")
    catalog = person_catalog(
        db, prior.anchors, prior.meta, base.generator, settings.models_dir, int(prior.generator.num_ws)
    )
    for request in requests:  # unknown names fail before any model work
        catalog.get(request.name)
    loss_fn = SmallImageLoss(make_reconstruction_loss(loss, "alex", torch_device))
    options = EditOptions(requests, chosen, beta, steps)
    warnings = model_warnings(loss_fn, priors)
    intro = (
        f"editing {name or f'person {person_id}'} on {torch_device.type}: {options.steps_for(torch_device)} "
        f"projection steps per face, policy {chosen.value}, beta {beta:g}"
    )
    with RichReporter() as reporter:  # JSON goes to stdout; the cost and the bars to stderr
        editor = PhotoEditor(
            prior, catalog, DatabasePeople(db), options, loss_fn, torch_device, reporter=reporter,
            warnings=warnings, intro=intro,
        )  # fmt: skip
        report = editor.edit(photo)
    if as_json:
        print_json(report.to_json())
        return
    _print_report(report)


def _print_report(report) -> None:
    console.print(f"[bold]{Path(report.source).name}[/] -> {report.output} ({report.seconds:.0f} s)", highlight=False)
    for face in report.faces:
        if face.status != "edited":
            console.print(f"  face {face.index + 1}: left as is: {face.reason}", highlight=False)
            continue
        console.print(
            f"  face {face.index + 1}: projection loss {face.projection_loss:.4f}, "
            f"dilation {face.start_dilation:.3f} -> {face.final_dilation:.3f} (beta {report.beta:g})",
            highlight=False,
        )
        for e in face.edits:
            done = f"{e['applied']:+g}" if e["applied"] != e["requested"] else "all of it"
            console.print(
                f"    {e['name']} {e['requested']:+g} ({e['unit']}): needed dilation {e['dilation_needed']:.3f}; "
                f"{e['action']} ({done})",
                highlight=False,
            )
    for warning in report.warnings:
        console.print(f"  warning: {warning}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("edit")(edit)
