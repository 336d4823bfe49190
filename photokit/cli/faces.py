"""`photokit faces detect`: (re)run face detection on the library, then cluster new faces."""

from __future__ import annotations

import typer

from photokit.cli.common import (
    DescriptorOption,
    DetectorOption,
    DeviceOption,
    JsonOption,
    database_from,
    note,
    print_json,
)
from photokit.devices import Device
from photokit.faces.vocab import DescriptorKind, Detector

faces_app = typer.Typer(help="Face detection on the library.", no_args_is_help=True)


@faces_app.command("detect")
def detect(
    ctx: typer.Context,
    redo: bool = typer.Option(
        False, "--redo", help="Detect again on every photo (faces found again keep their id and person)."
    ),
    device: Device = DeviceOption,
    detector: Detector = DetectorOption,
    descriptor: DescriptorKind | None = DescriptorOption,
    max_side: int = typer.Option(
        1024, "--max-side", min=0, help="Detect on a copy at most this many px long (0 = full size)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Find, measure and cluster faces on photos not processed yet (all photos with --redo)."""
    from photokit.cli.reporters import RichReporter
    from photokit.faces.analyze import FaceConfig
    from photokit.faces.pipeline import process_pending_photos

    db = database_from(ctx)
    with RichReporter(enabled=not as_json) as reporter:
        summary = process_pending_photos(
            db,
            device=device,
            detector=detector,
            redo=redo,
            reporter=reporter,
            config=FaceConfig(detector=detector, max_side=max_side),
            descriptor=descriptor,
        )
    if as_json:
        print_json(summary.to_json())
        return
    clustering = summary.clustering
    note(
        f"{summary.done} photo(s) processed, {summary.failed} failed, {summary.faces} face(s) found "
        f"({summary.added} new, {summary.kept} kept, {summary.removed} removed) in {summary.seconds:.1f} s"
    )
    note(
        f"clustering: {clustering.assigned} face(s) assigned, {clustering.new_people} new people, "
        f"{clustering.unassigned} left unassigned"
    )
    for error in summary.errors[:10]:
        note(f"  failed: {error['error']}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(faces_app, name="faces")
