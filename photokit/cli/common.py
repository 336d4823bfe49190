"""Helpers every command module uses: settings from the context, the database, output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from photokit.devices import Device
from photokit.errors import PhotokitError
from photokit.faces.vocab import Detector
from photokit.settings import Settings

if TYPE_CHECKING:
    from photokit.db import Database

console = Console()  # stdout: tables and human output
err_console = Console(stderr=True)  # stderr: notes, warnings, progress

DeviceOption = typer.Option(Device.AUTO, "--device", help="Where models run (auto: a GPU when there is one).")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
DetectorOption = typer.Option(Detector.MTCNN, "--detector", help="Face detector: mtcnn or hog (dlib, faster on a CPU).")


def settings_from(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings.load()
    return root.obj


def database_from(ctx: typer.Context) -> Database:
    """Open the library database (migrating it to head), once per command invocation."""
    from photokit.db import open_database  # SQLAlchemy is imported only by commands that use the database

    root = ctx.find_root()
    meta = root.meta
    if "photokit.db" not in meta:
        meta["photokit.db"] = open_database(settings_from(ctx))
        root.call_on_close(meta["photokit.db"].dispose)
    return meta["photokit.db"]


def new_output_path(path: Path, force: bool = False) -> Path:
    """An output file the user named: never silently replace an existing file (it may be an original)."""
    path = path.expanduser()
    if path.is_dir():
        raise PhotokitError(f"{path} is a folder: give a file name, e.g. {path / 'sheet.png'}")
    if path.exists() and not force:
        raise PhotokitError(f"{path} already exists: choose another name or pass --force to replace it")
    return path


def print_json(data: Any) -> None:
    """Write one JSON document to stdout (never through rich, so it stays parseable)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    err_console.print(message, highlight=False)
