"""`photokit eval PERSON`: MyStyle's enhancement evaluation (sec. 5.2, fig. 9) on your own library."""

from __future__ import annotations

from pathlib import Path

import typer

from photokit.cli.common import DeviceOption, JsonOption, database_from, note, print_json, settings_from
from photokit.devices import Device
from photokit.errors import PhotokitError
from photokit.stylegan2.vocab import LossKind


def eval_command(
    ctx: typer.Context,
    person: str = typer.Argument(..., help="Whose faces to evaluate on: id or name."),
    holdout: int = typer.Option(5, "--holdout", help="Reference faces held out of the prior and restored."),
    task: str = typer.Option("sr8,sr16,sr32,inpaint", "--task", help="Comma-separated: sr8, sr16, sr32, inpaint."),
    out: Path | None = typer.Option(None, "--out", help="Write the HTML page (crops side by side) here."),
    steps: int | None = typer.Option(None, "--steps", help="Projection steps (default 1000 on GPU, 50 on CPU)."),
    invert_steps: int | None = typer.Option(
        None, "--invert-steps", help="Anchor inversion steps (default 450 GPU / 30 CPU)."
    ),
    tuning_steps: int | None = typer.Option(
        None, "--tuning-steps", help="Tuning steps (default 350 epochs on GPU, 5 on CPU)."
    ),
    loss: LossKind = typer.Option(
        LossKind.LPIPS, "--loss", help="lpips (needs `photokit models install lpips-alex`) or mse."
    ),
    device: Device = DeviceOption,
    as_json: bool = JsonOption,
) -> None:
    """Hold out faces of a person, build the prior without them, degrade and restore them with the personal
    prior, the generic W+ prior and Lanczos/Telea, and report identity, PSNR and LPIPS per method."""
    from dataclasses import replace

    from photokit.cli.html_report import report_path
    from photokit.devices import resolve_device
    from photokit.restore.evaluate import parse_tasks
    from photokit.restore.holdout import CPU_DEFAULTS, GPU_DEFAULTS, evaluate_person

    tasks = parse_tasks(task)
    out = report_path(out)
    for name, value in (("--steps", steps), ("--invert-steps", invert_steps), ("--tuning-steps", tuning_steps)):
        if value is not None and value < 1:
            raise PhotokitError(f"{name} must be at least 1")
    torch_device = resolve_device(device)
    schedule = GPU_DEFAULTS if torch_device.type != "cpu" else CPU_DEFAULTS
    schedule = replace(
        schedule,
        invert_steps=invert_steps or schedule.invert_steps,
        tuning_steps=tuning_steps,
    )
    db = database_from(ctx)
    from photokit.cli.reporters import RichReporter

    with RichReporter() as reporter:
        result = evaluate_person(
            db, settings_from(ctx), person, tasks, holdout, torch_device, loss, steps, schedule, reporter=reporter
        )
    if out is not None:
        from photokit.cli.html_report import eval_report_html, write_html

        write_html(out, eval_report_html(result))
        note(f"report: {out}")
    if as_json:
        print_json(result.to_json())
    else:
        _print_table(result)


def _print_table(result) -> None:
    from rich.table import Table

    from photokit.cli.common import console

    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    table = Table(title=f"eval: {result.split.person_name or f'person {result.split.person_id}'}")
    for column in ("task", "method", "faces", "PSNR dB", "LPIPS", "identity dist.", "face found"):
        table.add_column(column, justify="left" if column in ("task", "method") else "right")
    for s in result.result.summaries():
        table.add_row(
            s.task,
            s.method,
            str(s.samples),
            f"{s.psnr_mean:.2f}",
            "–" if s.lpips_mean is None else f"{s.lpips_mean:.3f}",
            "–" if s.identity_mean is None else f"{s.identity_mean:.3f}",
            f"{s.faces_found}/{s.samples}",
        )
    console.print(table)
    if not result.meaningful:
        console.print(
            "[bold red]These numbers mean nothing about faces: the generator is not a pretrained face model.[/]"
        )


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
