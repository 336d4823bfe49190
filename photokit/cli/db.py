"""``photokit db``: schema migrations of the library database."""

from __future__ import annotations

import typer

from photokit.cli.common import console, print_json, settings_from
from photokit.db import migrate, open_database

db_app = typer.Typer(help="Library database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_cmd(ctx: typer.Context, revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    db = open_database(settings_from(ctx), upgrade=False)
    try:
        migrate.upgrade(db.engine, revision)
        console.print(f"database at revision [bold]{db.current_revision()}[/bold]")
    finally:
        db.dispose()


@db_app.command("current")
def current_cmd(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Show the database's schema revision and the newest one this photokit knows."""
    db = open_database(settings_from(ctx), upgrade=False)
    try:
        current, head = db.current_revision(), migrate.head_revision(db.engine)
    finally:
        db.dispose()
    if json_out:
        print_json({"current": current, "head": head, "url": db.url})
    else:
        state = "up to date" if current == head else f"behind (head is {head}; run `photokit db upgrade`)"
        console.print(f"{current or '(empty)'}  {state}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
