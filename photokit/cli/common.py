"""Helpers every command module uses: settings from the context, the database, output."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

from photokit.devices import Device
from photokit.errors import PhotokitError
from photokit.faces.vocab import Detector
from photokit.pathtext import shown
from photokit.settings import Settings

if TYPE_CHECKING:
    from photokit.db import Database

console = Console()  # stdout: tables and human output
err_console = Console(stderr=True)  # stderr: notes, warnings, progress

DeviceOption = typer.Option(Device.AUTO, "--device", help="Where models run (auto: a GPU when there is one).")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
DetectorOption = typer.Option(Detector.MTCNN, "--detector", help="Face detector: mtcnn or hog (dlib, faster on a CPU).")
DescriptorOption = typer.Option(
    None,
    "--descriptor",
    help="Face descriptor for this library from now on: dlib128 (the default) or facenet512 (needs "
    "`photokit models install facenet-vggface2`). Switching describes the existing faces again (resumable) "
    "[default: the library's current one].",
    show_default=False,
)

RayOption = typer.Option(
    None,
    "--ray",
    metavar="[ADDRESS]",
    help="Run on a Ray cluster (needs photokit[ray]): its head (host:6379 or ray://host:10001), or bare "
    "for $RAY_ADDRESS, else a cluster on this machine.",
)
WorkersOption = typer.Option(None, "--workers", help="Ray workers (default: one per GPU, else per CPU).")
RAY_LOCAL = "local"  # `--ray` without an address
RAY_ADDRESS = re.compile(r"(ray://)?[\w.\-\[\]:]+:\d+|auto|local")


class RayCommand(TyperCommand):
    """A command with ``--ray [ADDRESS]``: the address is optional, so a bare ``--ray`` (followed by another
    option, a path or nothing) means ``--ray=local``; Typer options otherwise always take their value."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        rewritten: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                rewritten.extend(args[i:])
                break
            if arg == "--ray" and not (i + 1 < len(args) and RAY_ADDRESS.fullmatch(args[i + 1])):
                arg = f"--ray={RAY_LOCAL}"
            rewritten.append(arg)
        return super().parse_args(ctx, rewritten)


def ray_address(value: str | None) -> str | None:
    """The ``--ray`` value checked: None (no Ray), ``local`` or a head address."""
    if value is not None and not RAY_ADDRESS.fullmatch(value):
        raise PhotokitError(f"--ray {value!r}: give the Ray head as host:6379 or ray://host:10001, or no value")
    return value


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


def user_text(value: Any) -> str:
    """User data (paths, names, error messages) ready to go inside rich markup: shown as it is, never
    interpreted (``[red]a.jpg`` stays ``[red]a.jpg``), undecodable file-name bytes as ``\\xHH``."""
    return escape(shown(str(value)))


def _finite(data: Any) -> Any:
    """JSON has no NaN or infinity: a non-finite number becomes null."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def print_json(data: Any) -> None:
    """Write one JSON document to stdout (never through rich, so it stays parseable). Strict JSON: no NaN;
    a non-UTF-8 file name keeps its bytes as ``\\udcXX`` escapes (``os.fsencode`` of the parsed string gives
    them back)."""
    text = json.dumps(_finite(data), indent=2, default=str, ensure_ascii=False, allow_nan=False)
    sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A plain-text line on stderr (no markup: messages carry user data)."""
    err_console.print(shown(message), highlight=False, markup=False)
