"""``photokit db``: schema migrations of the library database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from photokit.cli.common import console, print_json, settings_from
from photokit.errors import PhotokitError

if TYPE_CHECKING:
    from photokit.db import Database

db_app = typer.Typer(help="Library database maintenance.", no_args_is_help=True)


@contextlib.contextmanager
def _unmigrated(ctx: typer.Context) -> Iterator[Database]:
    """The database as it is (no automatic upgrade); driver errors become one-line errors."""
    from alembic.util.exc import CommandError  # imported here: Alembic and SQLAlchemy are slow to import
    from sqlalchemy.exc import DatabaseError as SADatabaseError
    from sqlalchemy.exc import OperationalError

    from photokit.db import open_database
    from photokit.db.session import explain_db_error

    db = open_database(settings_from(ctx), upgrade=False)
    try:
        yield db
    except (OperationalError, SADatabaseError) as exc:
        raise explain_db_error(exc, db.url) from exc
    except CommandError as exc:  # e.g. an unknown revision
        raise PhotokitError(f"migration failed: {exc}") from exc
    finally:
        db.dispose()


@db_app.command("upgrade")
def upgrade_cmd(
    ctx: typer.Context,
    revision: str = typer.Argument("head", help="Target revision."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from photokit.db import migrate
    from photokit.db.session import display_url

    with _unmigrated(ctx) as db:
        before = db.current_revision()
        if before is not None and not migrate.is_known_revision(db.engine, before):
            raise PhotokitError(
                f"the database is at revision {before}, newer than this photokit knows: upgrade photokit"
            )
        migrate.upgrade(db.engine, revision)
        after = db.current_revision()
    if json_out:
        print_json({"before": before, "current": after, "url": display_url(db.url)})
    else:
        console.print(
            f"database at revision [bold]{escape(str(after))}[/bold]" + ("" if after != before else " (no change)")
        )


@db_app.command("current")
def current_cmd(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Show the database's schema revision and the newest one this photokit knows."""
    from photokit.db import migrate
    from photokit.db.session import display_url

    with _unmigrated(ctx) as db:
        current, head = db.current_revision(), migrate.head_revision(db.engine)
    if json_out:
        print_json({"current": current, "head": head, "url": display_url(db.url)})
    else:
        if current == head:
            state = "up to date"
        elif current is not None and not migrate.is_known_revision(db.engine, current):
            state = f"newer than this photokit, which knows up to {head}: upgrade photokit (not the database)"
        else:
            state = f"behind (head is {head}; run `photokit db upgrade`)"
        console.print(f"{current or '(empty)'}  {state}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
