"""``photokit scan`` (index folders, then find faces) and ``photokit status`` (what the library holds)."""

from __future__ import annotations

import typer

from photokit.cli.common import (
    DescriptorOption,
    DetectorOption,
    DeviceOption,
    RayCommand,
    RayOption,
    WorkersOption,
    console,
    database_from,
    note,
    print_json,
    ray_address,
    settings_from,
)
from photokit.devices import Device
from photokit.errors import PhotokitError
from photokit.faces.vocab import DescriptorKind, Detector


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


def _run_faces(db, device: str, detector: str, descriptor: str | None, reporter):
    try:
        from photokit.faces.pipeline import process_pending_photos
    except ModuleNotFoundError as exc:
        if exc.name == "photokit.faces.pipeline":
            raise PhotokitError("face detection is not part of this photokit build; use --no-faces") from None
        raise
    return process_pending_photos(db, device=device, detector=detector, reporter=reporter, descriptor=descriptor)


def _run_faces_on_ray(
    db, device: str, detector: str, descriptor: str | None, address: str, workers: int | None, reporter
):
    from photokit.distributed.cluster import connect, wants_gpu, worker_count
    from photokit.distributed.faces import detect_faces_on_ray

    info = connect(address)
    gpu = wants_gpu(device, info)
    count = worker_count(info, workers, gpu)
    reporter.note(f"{info.describe()}; {count} face workers{' with a GPU each' if gpu else ''}")
    return detect_faces_on_ray(
        db, "cuda" if gpu else device, detector, count, 1 if gpu else 0, reporter, descriptor=descriptor
    )


def scan_cmd(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(  # text, not Path: Typer would turn "" into Path("."), this folder
        ..., metavar="PATH", help="Folders (or single files) to index.", show_default=False
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    no_faces: bool = typer.Option(False, "--no-faces", help="Only index files; do not detect faces."),
    device: Device = DeviceOption,
    detector: Detector = DetectorOption,
    descriptor: DescriptorKind | None = DescriptorOption,
    ray: str | None = RayOption,
    workers: int | None = WorkersOption,
) -> None:
    """Index photos under PATH (recursively, incrementally), then detect and group faces."""
    from photokit.cli.hints import error_line
    from photokit.cli.reporters import RichReporter
    from photokit.library.scan import scan_library
    from photokit.library.walk import resolve_roots

    if not no_faces:  # bad options fail before any work
        from photokit.devices import resolve_device

        resolve_device(device)
    if ray_address(ray) is not None:
        from photokit.distributed import require_ray

        require_ray()
    roots = resolve_roots(paths)  # a typo fails before the database is touched
    db = database_from(ctx)
    faces_error = None
    with RichReporter(enabled=not json_out) as reporter:
        summary = scan_library(db, roots, reporter=reporter).to_json()
        if not no_faces:
            try:
                if ray is not None:
                    faces = _run_faces_on_ray(db, device, detector, descriptor, ray, workers, reporter)
                else:
                    faces = _run_faces(db, device, detector, descriptor, reporter)
                summary["faces"] = faces.to_json()
            except PhotokitError as exc:  # the index is saved; say what failed and exit non-zero
                faces_error = exc
                summary["faces"] = {"error": error_line(exc)}
    if json_out:
        print_json(summary)
    else:
        _print_scan_summary(summary)
    if faces_error is not None:
        raise faces_error


def _print_scan_summary(summary: dict) -> None:
    """The scan's one-line totals, unreadable folders as warnings, then the face counts."""
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
        f"{photos['pending']:,} pending, {photos['failed']:,} failed; descriptor {faces['descriptor']}"
        + (f" ({faces['described']:,} described so far)" if faces["described"] < faces["faces"] else "")
    )
    lines.append(f"People    {people['named']:,} named, {people['unnamed']:,} unnamed, {people['ignored']:,} ignored")
    models = status["models"]
    lines.append(f"Models    {models['installed']} of {models['known']} installed in {models['dir']}")
    lines.append(f"Priors    {status['priors']} personal priors")
    database = status["database"]
    search = database["face_search"]
    pgvector = f"; pgvector {search['pgvector']}, not used" if "pgvector" in search else ""
    lines.append(
        f"Database  {database['url']} (revision {database['revision']}); face search {search['index']}{pgvector}"
    )
    return lines


def status_cmd(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON on stdout."),
) -> None:
    """What the library holds: photos, files, skipped files, faces, people, models, priors."""
    from photokit.db.reader import read_library
    from photokit.status import collect_status

    with read_library(settings_from(ctx)) as library:  # stdlib sqlite3 when it can: a fast start
        status = collect_status(library, settings_from(ctx))
    if json_out:
        print_json(status)
    else:
        for line in _status_lines(status):
            console.print(line, highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("scan", cls=RayCommand)(scan_cmd)
    app.command("status")(status_cmd)
