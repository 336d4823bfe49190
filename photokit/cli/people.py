"""`photokit people ...`: look at and curate the people found in the library."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from photokit.cli.common import (
    JsonOption,
    console,
    database_from,
    new_output_path,
    note,
    print_json,
    settings_from,
    user_text,
)
from photokit.pathtext import shown

if TYPE_CHECKING:
    from photokit.db.reader import SqlReader
    from photokit.settings import Settings

people_app = typer.Typer(
    help="People found in your photos: list, name, merge, fix and look at them.", no_args_is_help=True
)

PersonArg = typer.Argument(..., help="Person id or name.")


@people_app.command("list")
def list_cmd(
    ctx: typer.Context,
    show_all: bool = typer.Option(False, "--all", help="Also show ignored people and small unnamed groups."),
    as_json: bool = JsonOption,
) -> None:
    """People, most faces first (unnamed groups of fewer than 3 faces are hidden unless --all)."""
    from photokit.db.reader import read_library
    from photokit.faces.listing import cached_pending, list_people

    settings = settings_from(ctx)
    with read_library(settings) as library:  # stdlib sqlite3 when it can: a fast start
        rows = list_people(library.reader, include_all=show_all)
        pending = (
            cached_pending(library.reader, _suggestions_cache(settings, library.reader))
            if rows and not as_json
            else None
        )
    if as_json:
        print_json(rows)
        return
    if not rows:
        note("no people yet: run `photokit scan PATH` (or `photokit people list --all`)")
        return
    table = Table("id", "name", "faces", "photos", "cover face")
    for r in rows:
        name = user_text(r["name"]) if r["name"] else "[dim](unnamed)[/dim]"
        table.add_row(
            str(r["id"]),
            name + (" [dim](ignored)[/dim]" if r["ignored"] else ""),
            str(r["faces"]),
            str(r["photos"]),
            str(r["cover_face"] or ""),
        )
    console.print(table)
    _note_pending_suggestions(ctx, pending)


def _suggestions_cache(settings: Settings, reader: SqlReader) -> Path | None:
    """Where the last suggestions are kept: the library's cache folder (safe to delete)."""
    from photokit.db.reader import library_id

    found = library_id(reader)
    return settings.home / "cache" / found / "suggestions.json" if found is not None else None


def _note_pending_suggestions(ctx: typer.Context, pending: int | None) -> None:
    """Say how many suggestions wait; ``pending`` None: the cached ones are stale, so compute them (slow)."""
    if pending is None:
        from photokit.db.reader import SessionReader
        from photokit.faces.suggest import cached_suggestions

        with database_from(ctx).session(write=False) as session:
            cache = _suggestions_cache(settings_from(ctx), SessionReader(session))
            pending = cached_suggestions(session, cache).pending
    if pending:
        note(f"{pending} suggestion(s) pending: see `photokit people suggest`")


def _change_dismissals(ctx: typer.Context, dismiss: list[str], undismiss: list[str], as_json: bool) -> None:
    from photokit.faces import dismissals

    with database_from(ctx).session() as session:
        dismissed = [dismissals.dismiss(session, ref) for ref in dismiss]
        restored = [(dismissals.parse_suggestion_id(ref), dismissals.undismiss(session, ref)) for ref in undismiss]
    if as_json:
        print_json({"dismissed": [r.id for r in dismissed], "undismissed": [r.id for r, found in restored if found]})
        return
    for ref in dismissed:
        note(f"dismissed {ref.id}: {ref.describe()} will not be suggested again")
    for ref, found in restored:
        note(f"{ref.id}: {ref.describe()} may be suggested again" if found else f"{ref.id} was not dismissed")


def _print_dismissed(ctx: typer.Context, as_json: bool) -> None:
    from photokit.faces.dismissals import dismissed

    with database_from(ctx).session(write=False) as session:
        refs = dismissed(session)
    if as_json:
        print_json([{"id": r.id, "kind": r.kind.value} for r in refs])
    elif not refs:
        note("no dismissed suggestions")
    else:
        for ref in refs:
            console.print(f"{ref.id}: {ref.describe()}", highlight=False, markup=False)


@people_app.command("suggest")
def suggest_cmd(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", min=0, help="At most this many of each kind (0 = all)."),
    dismiss: list[str] = typer.Option(
        [], "--dismiss", help="Say no to a suggestion by its id (m3-7: a merge, f131-7: a move); repeatable."
    ),
    undismiss: list[str] = typer.Option([], "--undismiss", help="Let a dismissed suggestion be made again."),
    show_dismissed: bool = typer.Option(False, "--dismissed", help="List the dismissed suggestions."),
    as_json: bool = JsonOption,
) -> None:
    """People that are probably one person, and faces that probably belong to someone else, surest first."""
    from photokit.faces.suggest import cached_suggestions, merge_id, move_id

    if dismiss or undismiss:
        _change_dismissals(ctx, dismiss, undismiss, as_json)
        return
    if show_dismissed:
        _print_dismissed(ctx, as_json)
        return
    from photokit.db.reader import SessionReader

    with database_from(ctx).session(write=False) as session:
        cache = _suggestions_cache(settings_from(ctx), SessionReader(session))
        found = cached_suggestions(session, cache, limit=limit or None)
    if as_json:
        print_json(found.to_json())
        return
    if not found.pending:
        note("no suggestions: clustering found nothing it is unsure about")
        return
    if found.merges:
        table = Table("id", "merge", "into", "score", "command", title="probably one person (lower score = surer)")
        for m in found.merges:
            command = f"photokit people merge {m.keep} {m.other}"
            table.add_row(merge_id(m.keep, m.other), str(m.other), str(m.keep), f"{m.score:.2f}", command)
        console.print(table)
    if found.moves:
        table = Table("id", "face", "from", "to", "score", "command", title="faces that fit another person better")
        for move in found.moves:
            command = f"photokit people move {move.face} --to {move.to_person}"
            row = (str(move.face), str(move.from_person), str(move.to_person), f"{move.score:.2f}", command)
            table.add_row(move_id(move.face, move.to_person), *row)
        console.print(table)
    shown = len(found.merges) + len(found.moves)
    more = f"{found.pending - shown} more with --limit 0; " if found.pending > shown else ""
    note(f"{more}not the same person? `photokit people suggest --dismiss ID`")


@people_app.command("show")
def show_cmd(ctx: typer.Context, person: str = PersonArg, as_json: bool = JsonOption) -> None:
    """A person's faces, with photo paths and boxes."""
    from photokit.faces.people import person_detail, resolve_person
    from photokit.prior.directions import directions_summary

    db = database_from(ctx)
    with db.session(write=False) as session:
        detail = person_detail(session, resolve_person(session, person))
    detail["edit_directions"] = directions_summary(db, settings_from(ctx), detail["id"])
    if as_json:
        print_json(detail)
        return
    console.print(
        f"person {detail['id']}: {shown(detail['name'] or '(unnamed)')} - {detail['faces']} face(s) in "
        f"{detail['photos']} photo(s){' (ignored)' if detail['ignored'] else ''}",
        highlight=False,
        markup=False,
    )
    table = Table("face", "photo", "box", "px", "blur", "yaw", "gray", "by")
    for f in detail["face_list"]:
        table.add_row(
            str(f["id"]),
            user_text(f["path"]) if f["path"] else "?",
            ",".join(f"{v:.0f}" for v in f["box"]),
            f"{f['size_px']:.0f}",
            "" if f["blur"] is None else f"{f['blur']:.0f}",
            "" if f["yaw"] is None else f"{f['yaw']:.0f}",
            "yes" if f["is_gray"] else "",
            user_text(f["assigned_by"] or ""),
        )
    console.print(table)
    _print_directions(detail["id"], detail["edit_directions"])


def _print_directions(person_id: int, summary: dict) -> None:
    """Which `photokit edit` directions this person's prior supports."""
    if not summary["prior"]:
        console.print(f"edit directions: none yet (`photokit prior build {person_id}` first)", highlight=False)
        return
    if summary.get("error"):
        console.print(f"edit directions: unknown ({summary['error']})", highlight=False)
        return
    sefa = [f"{summary['sefa'][0]}..{summary['sefa'][-1]}"] if summary["sefa"] else []
    usable = summary["personal"] + sefa + summary["files"]
    refused = "; ".join(f"{k}: {v}" for k, v in summary["refused"].items())
    console.print(
        "edit directions: " + (", ".join(usable) or "none") + (f"; not supported: {refused}" if refused else "")
        + f"; details: `photokit edit --list {person_id}`",
        highlight=False,
    )  # fmt: skip


@people_app.command("name")
def name_cmd(
    ctx: typer.Context, person: str = PersonArg, name: str = typer.Argument(..., help="The new name.")
) -> None:
    """Name (or rename) a person."""
    from photokit.faces.people import name_person, resolve_person

    with database_from(ctx).session() as session:
        target = name_person(session, resolve_person(session, person), name)
        note(f"person {target.id} is now '{target.name}'")


@people_app.command("merge")
def merge_cmd(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="Person that stays (id or name)."),
    b: str = typer.Argument(..., help="Person merged into A and removed (id or name)."),
) -> None:
    """Merge person B into person A (their faces become A's; A keeps its id)."""
    from photokit.faces.people import merge_people, resolve_person

    with database_from(ctx).session() as session:
        target, source = resolve_person(session, a), resolve_person(session, b)
        source_id = source.id
        merged = merge_people(session, target, source)
        note(f"merged person {source_id} into {merged.id} ({len(merged.faces)} faces)")


@people_app.command("move")
def move_cmd(
    ctx: typer.Context,
    faces: list[str] = typer.Argument(..., help="Face ids."),
    to: str = typer.Option(..., "--to", help="Person (id or name) the faces belong to."),
) -> None:
    """Move faces to a person (a decision clustering never undoes)."""
    from photokit.faces.people import move_faces, resolve_person

    with database_from(ctx).session() as session:
        person = resolve_person(session, to)
        moved = move_faces(session, faces, person)
        note(f"moved {len(moved)} face(s) to person {person.id}")


@people_app.command("split")
def split_cmd(
    ctx: typer.Context,
    faces: list[str] = typer.Argument(..., help="Face ids (see `people show`)."),
    name: str = typer.Option(None, "--name", help="Name for the new person."),
) -> None:
    """Split faces off into a new person (when clustering put two people together)."""
    from photokit.faces.people import split_faces

    with database_from(ctx).session() as session:
        person = split_faces(session, faces, name)
        note(f"new person {person.id}{f' ({person.name})' if person.name else ''} with {len(faces)} face(s)")


@people_app.command("remove-face")
def remove_face_cmd(ctx: typer.Context, face: str = typer.Argument(..., help="Face id.")) -> None:
    """Take a face out of its person; it will not be assigned automatically again."""
    from photokit.faces.people import remove_face

    with database_from(ctx).session() as session:
        removed = remove_face(session, face)
        note(f"face {removed.id} is no longer assigned to anyone")


@people_app.command("ignore")
def ignore_cmd(ctx: typer.Context, person: str = PersonArg) -> None:
    """Hide a person (strangers, posters): listed only with --all, never used for restoration."""
    from photokit.faces.people import ignore_person, resolve_person

    with database_from(ctx).session() as session:
        target = ignore_person(session, resolve_person(session, person))
        note(f"person {target.id} is ignored")


@people_app.command("unignore")
def unignore_cmd(ctx: typer.Context, person: str = PersonArg) -> None:
    """Show an ignored person again and let restoration use them."""
    from photokit.faces.people import ignore_person, resolve_person

    with database_from(ctx).session() as session:
        target = ignore_person(session, resolve_person(session, person), ignored=False)
        note(f"person {target.id} is no longer ignored")


@people_app.command("sheet")
def sheet_cmd(
    ctx: typer.Context,
    person: str = PersonArg,
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    tile: int = typer.Option(128, "--tile", min=16, max=1024, help="Tile size in px."),
    limit: int = typer.Option(0, "--limit", min=0, help="At most this many faces, largest first (0 = all)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
    as_json: bool = JsonOption,
) -> None:
    """Write a contact sheet of a person's aligned faces."""
    from photokit.faces.people import resolve_person
    from photokit.faces.sheet import write_contact_sheet

    out = new_output_path(out, force)
    with database_from(ctx).session(write=False) as session:
        info = write_contact_sheet(session, resolve_person(session, person), out, tile=tile, limit=limit or None)
    if as_json:
        print_json(info)
    else:
        note(f"wrote {info['out']}: {info['tiles']} face(s), {info['columns']}x{info['rows']}")


@people_app.command("recluster")
def recluster_cmd(
    ctx: typer.Context,
    max_distance: float = typer.Option(
        None,
        "--max-distance",
        help="Faces farther apart than this are never linked [default: 0.6 with dlib128 descriptors, 1.04 with "
        "facenet512].",
    ),
    spread: float = typer.Option(
        None,
        "--spread",
        help="How many expected same-person gaps apart two groups may be and still join; lower is stricter "
        "[default: the tuned value, see docs/faces.md].",
    ),
    min_faces: int = typer.Option(None, "--min-faces", help="Faces needed together to make a new person [default: 2]."),
    force: bool = typer.Option(
        False, "--force", help="Accept a result that removes most automatically found people (refused otherwise)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Cluster all faces again from scratch, keeping every decision you made.

    Named, ignored and hand-fixed people, and people with a personal prior, are kept whole; the other
    people keep their ids where the new groups overlap them.
    """
    from photokit.faces.assignment import recluster
    from photokit.faces.cluster_config import cluster_config
    from photokit.faces.descriptors import active_kind
    from photokit.prior.meta import prior_person_ids

    given = {"max_distance": max_distance, "spread_z": spread, "min_faces": min_faces}
    with database_from(ctx).session() as session:
        # the library's descriptor kind's defaults; validates the options (one-line error)
        config = cluster_config(active_kind(session), **{k: v for k, v in given.items() if v is not None})
        stats = recluster(session, config, keep=prior_person_ids(settings_from(ctx)), force=force)
    if as_json:
        print_json(stats.to_json())
    else:
        note(
            f"reclustered {stats.clustered_faces} face(s): {stats.assigned} assigned, "
            f"{stats.new_people} new people, {stats.unassigned} unassigned, {stats.removed_people} people removed"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(people_app, name="people")
