"""`photokit enhance`: restore the faces of photos (or whole albums) with each person's own prior."""

from __future__ import annotations

from pathlib import Path

import typer

from photokit.cli.common import (
    DeviceOption,
    JsonOption,
    RayCommand,
    RayOption,
    WorkersOption,
    database_from,
    print_json,
    ray_address,
    settings_from,
)
from photokit.devices import Device
from photokit.errors import PhotokitError
from photokit.pathtext import shown
from photokit.prior.vocab import ProjectionOptimizer
from photokit.stylegan2.vocab import LossKind, Precision


def _enhance_on_ray(
    db, settings, paths, options, device: str, address: str, workers: int | None, as_json: bool, crops: dict | None
):
    """The album's jobs on Ray workers that keep their models loaded; progress (and, for --report, the
    faces' crops) stream back here."""
    from photokit.cli.reporters import RichReporter
    from photokit.distributed import require_ray
    from photokit.distributed.album import LibraryEnhancerFactory, restore_album_on_ray
    from photokit.distributed.cluster import connect, wants_gpu, worker_count
    from photokit.restore.batch import queue_album

    require_ray()
    plan = queue_album(db, paths, options, options.force)
    info = connect(address)
    gpu = wants_gpu(device, info)
    count = worker_count(info, workers, gpu)
    factory = LibraryEnhancerFactory(settings, options, "cuda" if gpu else device, plan.targets, crops is not None)
    with RichReporter(enabled=not as_json, notes=True) as reporter:
        reporter.note(
            f"{info.describe()}; {count} workers{' with a GPU each' if gpu else ''}, {len(plan.sources)} photos"
        )
        return restore_album_on_ray(
            db, plan, options, factory, count, num_gpus=1 if gpu else 0, reporter=reporter, crops=crops
        )


def _parse_beta(value: str | None):
    if value is None or value.lower() == "auto":
        return "auto"
    if value.lower() in ("none", "unconstrained"):
        return None
    try:
        return float(value)  # range and finiteness: EnhanceOptions checks them
    except ValueError:
        raise PhotokitError(f"--beta {value!r}: give a number (e.g. 0.05), 'auto' or 'none'") from None


OptimizerOption = typer.Option(
    ProjectionOptimizer.AUTO,
    "--optimizer",
    help="gauss-newton (L-BFGS, then Levenberg-Marquardt steps; personal priors), adam (the paper's), lbfgs "
    "(stops when the loss is flat) or auto (adam on a GPU, gauss-newton on a CPU).",
)
PrecisionOption = typer.Option(
    Precision.AUTO,
    "--precision",
    help="Synthesis arithmetic: fp32, bf16 (about 2x faster on CPUs with native bf16; Adam only) or auto "
    "(bf16 for adam on such a CPU, else fp32).",
)
ForceOption = typer.Option(
    False,
    "--force",
    help="Replace existing output files (default: pick a free name) and paste restored faces even when they "
    "fail the consistency/identity checks.",
)


def enhance(
    ctx: typer.Context,
    raw_paths: list[str] = typer.Argument(..., metavar="PATH", help="Photos and/or folders (albums) to restore."),
    scale: float | None = typer.Option(None, "--scale", help="Output size factor (default 2; 1 with --mask)."),
    mask: Path | None = typer.Option(None, "--mask", help="Inpainting mask, same size as the photo: white = keep."),
    person: str | None = typer.Option(None, "--person", help="Whose face it is (single-face photos): id or name."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: next to each photo)."),
    beta: str | None = typer.Option(
        None, "--beta", help="Prior dilation: number, 'auto' (0.05 SR / 0.02 inpainting) or 'none'."
    ),
    steps: int | None = typer.Option(
        None,
        "--steps",
        help="Projection steps (GPU: 1000; CPU: gauss-newton 86, adam 100 or 200 in bf16; lbfgs: at most 250).",
    ),
    optimizer: ProjectionOptimizer = OptimizerOption,
    precision: Precision = PrecisionOption,
    device: Device = DeviceOption,
    loss: LossKind = typer.Option(
        LossKind.LPIPS, "--loss", help="lpips (LPIPS + MSE, needs `photokit models install lpips-alex`) or mse."
    ),
    force: bool = ForceOption,
    report_html: Path | None = typer.Option(
        None, "--report", help="Write an HTML page: before/after crops of every face, routing, prior, check scores."
    ),
    as_json: bool = JsonOption,
    ray: str | None = RayOption,
    workers: int | None = WorkersOption,
) -> None:
    """Restore every face in the photos with that person's prior and paste it back; albums resume after Ctrl-C."""
    from photokit.cli.html_report import report_path
    from photokit.devices import resolve_device
    from photokit.restore.crops import CropCollector
    from photokit.restore.options import EnhanceOptions

    paths = _checked_paths(raw_paths, mask)
    report_html = report_path(report_html)
    ray = ray_address(ray)
    settings = settings_from(ctx)
    torch_device = resolve_device(device)
    options = EnhanceOptions(
        scale=scale,
        mask=mask,
        person=person,
        beta=_parse_beta(beta),
        steps=steps,
        optimizer=optimizer,
        precision=precision,
        loss=loss,
        out_dir=out,
        force=force,
    )
    collector = None if report_html is None else CropCollector()
    db = database_from(ctx)
    db.check_writable()  # it records every photo it restores: refuse a read-only library before loading models
    if ray is not None:
        crops = None if collector is None else collector.crops
        summary = _enhance_on_ray(db, settings, paths, options, device, ray, workers, as_json, crops)
    else:
        summary = _enhance_here(db, settings, paths, options, torch_device, as_json, collector)
    _finish(summary, paths, as_json, report_html, collector)


def _checked_paths(raw_paths: list[str], mask: Path | None) -> list[Path]:
    """The photos and folders to restore, refused up front when one (or the mask) does not exist."""
    if any(not raw.strip() for raw in raw_paths):  # as text: Typer would turn "" into Path("."), this folder
        raise PhotokitError("an empty path was given: name a photo or folder ('.' for the current folder)")
    paths = [Path(raw) for raw in raw_paths]
    for path in paths:
        if not path.expanduser().exists():
            raise PhotokitError(f"{path}: no such file or folder")
    if mask is not None and not mask.is_file():
        raise PhotokitError(f"--mask {mask}: no such file")
    return paths


def _enhance_here(db, settings, paths: list[Path], options, torch_device, as_json: bool, collector):
    """The photos restored in this process, the cost said up front (also with --json, on stderr)."""
    from photokit.cli.reporters import RichReporter
    from photokit.devices import describe_device
    from photokit.prior.storage import person_owner
    from photokit.reporting import NoteLevel
    from photokit.restore.batch import run_batch
    from photokit.restore.pipeline import Enhancer
    from photokit.restore.priors import DatabasePeople, StorePriors

    with RichReporter(enabled=not as_json, notes=True) as reporter:
        priors = StorePriors(settings, torch_device, owner_of=lambda person_id: person_owner(db, person_id))
        enhancer = Enhancer(
            options, priors, DatabasePeople(db), device=torch_device, reporter=reporter, on_face=collector
        )
        reporter.note(
            f"restoring on {describe_device(torch_device)}, {enhancer.steps} {enhancer.optimizer} projection steps per face "
            f"in {enhancer.precision}, "
            f"scale {options.effective_scale:g}, loss {enhancer.loss_fn.name if enhancer.loss_fn else 'none'}"
        )
        for warning in enhancer.warnings():
            reporter.note(warning, NoteLevel.WARNING)
        return run_batch(db, paths, enhancer, reporter=reporter, force=options.force)


def _finish(summary, paths: list[Path], as_json: bool, report_html: Path | None, collector) -> None:
    if report_html is not None:
        from photokit.cli.html_report import enhance_report_html, write_html

        write_html(report_html, enhance_report_html(summary.done, collector.crops))
        typer.echo(f"report: {report_html}", err=True)
    if as_json:
        print_json(summary.to_json())
    else:
        _print_summary(summary)
    if summary.total == 0:
        raise PhotokitError("no photos found in " + ", ".join(str(p) for p in paths))
    if summary.failed or not (summary.done or summary.already_done):
        raise typer.Exit(1)


def _print_summary(summary) -> None:
    from photokit.cli.common import console

    def plain(line: str) -> None:  # lines of user data (file names, person names, errors): never markup
        console.print(shown(line), highlight=False, markup=False)

    for report in summary.done:
        plain(f"{Path(report['source']).name} -> {report['output']} ({report['seconds']:.0f} s)")
        for face in report["faces"]:
            who = face["person"] or (f"person {face['person_id']}" if face["person_id"] else "unknown")
            if face["status"] == "restored":
                plain(
                    f"  face {face['index'] + 1}: {who}, {face['prior_name']}, beta {face['beta']}, "
                    f"{face['steps']} steps, loss {face['loss']:.4f}"
                    + (f"; FORCED past failed checks: {face['checks']['reason']}" if face.get("forced") else ""),
                )
            else:
                plain(f"  face {face['index'] + 1}: {who}, left as is: {face['reason']}")
        for warning in report["warnings"]:
            plain(f"  warning: {warning}")
    for item in summary.already_done:
        plain(f"{Path(item['source']).name}: already done -> {item['output']}")
    for item in summary.skipped:
        plain(f"{Path(item['source']).name}: skipped: {item['reason']}")
    faces = sum(f["status"] == "restored" for r in summary.done for f in r["faces"])
    plain(
        f"{len(summary.done)} photos written ({faces} faces restored), {len(summary.already_done)} "
        f"already done, {len(summary.skipped)} skipped, {len(summary.failed)} failed"
    )
    if summary.failed:
        console.print("[red]failed:[/]")
        for item in summary.failed:
            plain(f"  {item['error']}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("enhance", cls=RayCommand)(enhance)
