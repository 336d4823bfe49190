"""``photokit scan`` (index folders, then find faces) and ``photokit status`` (what the library holds)."""

from __future__ import annotations

import typer

from photokit.cli.common import DetectorOption, DeviceOption, console, database_from, note, print_json, settings_from
from photokit.errors import PhotokitError


def _counts_line(summary: dict) -> str:
    parts = [
        f"{summary[key]:,} {label}"
        for key, label in (
            ("new", "new"),
            ("unchanged", "unchanged"),
            ("changed", "changed"),
            ("moved", "moved"),
            ("duplicates", "duplicates"),
            ("returned", "returned"),
            ("missing", "missing"),
        )
        if summary[key] or key in ("new", "unchanged")
    ]
    if summary["skipped_total"]:
        reasons = ", ".join(f"{n} {reason}" for reason, n in summary["skipped"].items())
        parts.append(f"{summary['skipped_total']:,} skipped ({reasons})")
    return ", ".join(parts)


def _run_faces(ctx: typer.Context, db, device: str, detector: str, progress: bool) -> dict:
    try:
        from photokit.faces.pipeline import process_pending_photos
    except ModuleNotFoundError as exc:
        if exc.name == "photokit.faces.pipeline":
            raise PhotokitError("face detection is not part of this photokit build; use --no-faces") from None
        raise
    return process_pending_photos(db, settings_from(ctx), device=device, detector=detector, progress=progress)


def scan_cmd(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(  # text, not Path: Typer would turn "" into Path("."), this folder
        ..., metavar="PATH", help="Folders (or single files) to index.", show_default=False
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    no_faces: bool = typer.Option(False, "--no-faces", help="Only index files; do not detect faces."),
    device: str = DeviceOption,
    detector: str = DetectorOption,
) -> None:
    """Index photos under PATH (recursively, incrementally), then detect and group faces."""
    from photokit.library.scan import scan_library
    from photokit.library.walk import resolve_roots

    if not no_faces:  # bad options fail before any work
        from photokit.devices import resolve_device
        from photokit.faces.analyze import DETECTORS

        resolve_device(device)
        if detector not in DETECTORS:
            raise PhotokitError(f"unknown face detector '{detector}': use one of {', '.join(DETECTORS)}")
    roots = resolve_roots(paths)  # a typo fails before the database is touched
    db = database_from(ctx)
    summary = scan_library(db, roots, progress=not json_out).to_json()
    faces_error = None
    if not no_faces:
        try:
            summary["faces"] = _run_faces(ctx, db, device, detector, progress=not json_out)
        except PhotokitError as exc:  # the index is saved; say what failed and exit non-zero
            faces_error = exc
            summary["faces"] = {"error": str(exc)}
    if json_out:
        print_json(summary)
    else:
        console.print(
            f"Scanned {summary['files']:,} files in {summary['seconds']:.1f} s: {_counts_line(summary)}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        for folder in summary["unreadable_dirs"]:
            note(f"warning: could not read folder {folder} (its photos were not checked)")
        faces = summary.get("faces")
        if isinstance(faces, dict) and "error" not in faces:
            console.print(
                "Faces: " + ", ".join(f"{k} {v}" for k, v in faces.items() if not isinstance(v, (dict, list))),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    if faces_error is not None:
        raise faces_error


def _status_lines(status: dict) -> list[str]:
    lib, faces, people = status["library"], status["faces"], status["people"]
    locs = lib["locations"]
    lines = [
        f"Library   {lib['photos']:,} photos ({lib['photos_present']:,} on disk); files: {locs['present']:,} present, "
        f"{locs['missing']:,} missing, {locs['moved']:,} moved away",
    ]
    if lib["skipped"]:
        lines.append("Skipped   " + ", ".join(f"{n:,} {reason}" for reason, n in sorted(lib["skipped"].items())))
    last = lib["last_scan"]
    if last is None:
        lines.append("Last scan never (run `photokit scan PATH`)")
    else:
        state = "" if last["finished_at"] else " (interrupted: run it again to finish)"
        lines.append(f"Last scan {last['started_at']} of {', '.join(last['roots'])}{state}")
    photos = faces["photos"]
    lines.append(
        f"Faces     {faces['faces']:,} faces ({faces['assigned']:,} assigned); photos: {photos['done']:,} done, "
        f"{photos['pending']:,} pending, {photos['failed']:,} failed"
    )
    lines.append(f"People    {people['named']:,} named, {people['unnamed']:,} unnamed, {people['ignored']:,} ignored")
    models = status["models"]
    lines.append(f"Models    {models['installed']} of {models['known']} installed in {models['dir']}")
    lines.append(f"Priors    {status['priors']} personal priors")
    lines.append(f"Database  {status['database']['url']} (revision {status['database']['revision']})")
    return lines


def status_cmd(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON on stdout."),
) -> None:
    """What the library holds: photos, files, skipped files, faces, people, models, priors."""
    from photokit.status import collect_status

    status = collect_status(database_from(ctx), settings_from(ctx))
    if json_out:
        print_json(status)
    else:
        for line in _status_lines(status):
            console.print(line, highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_cmd)
    app.command("status")(status_cmd)
