"""The ``photokit`` command: global options, sub-command registration and error handling."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from photokit import __version__
from photokit.cli.hints import error_line
from photokit.errors import PhotokitError
from photokit.settings import Settings


class PhotokitGroup(TyperGroup):
    """Turns expected failures into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx):  # click's Context (typer vendors its own click)
        try:
            return super().invoke(ctx)
        except PhotokitError as exc:
            typer.echo(f"error: {error_line(exc)}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # unreadable folders, full or read-only disks, a file where a folder should be
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: work done so far is saved; run the same command again to continue", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=PhotokitGroup,
    name="photokit",
    help="Index your photo library, learn each person's face, and restore old photos with a personal prior.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"photokit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Path | None = typer.Option(None, "--home", envvar="PHOTOKIT_HOME", help="Data folder (library.db)."),
    models: Path | None = typer.Option(None, "--models", envvar="PHOTOKIT_MODELS", help="Model store folder."),
    db_url: str | None = typer.Option(
        None, "--db-url", envvar="PHOTOKIT_DB_URL", help="SQLAlchemy URL of the library database."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    ctx.obj = Settings.load(home=home, models=models, db_url=db_url)


def _register() -> None:
    """Sub-command modules each expose ``register(app)``."""
    from photokit.cli import db as db_cli
    from photokit.cli import edit as edit_cli
    from photokit.cli import enhance as enhance_cli
    from photokit.cli import faces as faces_cli
    from photokit.cli import models as models_cli
    from photokit.cli import people as people_cli
    from photokit.cli import prior as prior_cli
    from photokit.cli import scan as scan_cli
    from photokit.cli import serve as serve_cli

    for module in (scan_cli, db_cli, faces_cli, people_cli, models_cli, prior_cli, enhance_cli, edit_cli, serve_cli):
        module.register(app)


_register()


def main() -> None:
    try:
        app()
    except PhotokitError as exc:  # raised outside a command (e.g. while parsing options)
        print(f"error: {error_line(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
