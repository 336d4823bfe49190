"""`photokit models list|install|verify|remove|convert|sample`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from photokit.cli.common import (
    DeviceOption,
    JsonOption,
    console,
    new_output_path,
    note,
    print_json,
    settings_from,
    user_text,
)
from photokit.devices import Device
from photokit.errors import PhotokitError

models_app = typer.Typer(
    help="Pretrained model files: what is installed, what is missing, and what each unlocks.", no_args_is_help=True
)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@models_app.command("list")
def list_models(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Installed and missing models, their size and SHA-256, and what each one unlocks."""
    from photokit.store.models import ModelStore

    store = ModelStore(settings_from(ctx))
    statuses = store.list()
    if as_json:
        default = store.default_generator_path()
        print_json(
            {
                "models_dir": str(store.root),
                "default_generator": str(default) if default else None,
                "models": [s.to_json() for s in statuses],
            }
        )
        return
    table = Table(title=f"Model store: {store.root}")
    for column in ("name", "status", "size", "sha256", "unlocks"):
        table.add_column(column, overflow="fold")
    for s in statuses:
        if s.changed:
            status = "[red]changed[/]"
        elif s.installed:
            status = "[green]installed[/]"
        else:
            status = "[yellow]missing[/]" if s.entry.required else "[dim]optional[/]"
        table.add_row(s.name, status, _size(s.bytes), (s.sha256 or "-")[:16], s.entry.unlocks)
    console.print(table)
    for s in statuses:
        if s.changed:
            note(
                f"{s.name}: the file changed since it was installed: run `photokit models verify {s.name}`, "
                f"then reinstall it if it is damaged"
            )
        if not s.installed:
            how = f"photokit models install {s.name}" + (" (or --from FILE)" if s.entry.url else " --from FILE")
            note(f"{s.name}: {how}")
    note("`photokit models list --json` shows where each file comes from")


@models_app.command("install")
def install(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Catalog name (see `photokit models list`)."),
    from_file: Path | None = typer.Option(None, "--from", help="Install a file you already downloaded."),
    url: str | None = typer.Option(None, "--url", help="Download from this URL instead of the catalog's."),
    as_json: bool = JsonOption,
) -> None:
    """Install a model from the catalog URL, another URL, or a local file (resumes interrupted downloads)."""
    from photokit.cli.reporters import RichReporter
    from photokit.store.models import ModelStore
    from photokit.stylegan2 import GENERATOR_FILES

    store = ModelStore(settings_from(ctx), generator_files=GENERATOR_FILES)
    with RichReporter(enabled=not as_json) as reporter:
        status = store.install(name, from_file=from_file, url=url, reporter=reporter)
    if (status.record or {}).get("random_weights"):
        note(
            f"warning: {status.name} was made by photokit's random-weight builder (a test fixture), not trained on "
            "faces: its faces are noise, and photokit reports name it a test generator, never a restoration"
        )
    if as_json:
        print_json(status.to_json())
    else:
        console.print(
            f"installed {status.name}: {user_text(status.path)} ({_size(status.bytes)}, sha256 {status.sha256})"
        )


@models_app.command("verify")
def verify(
    ctx: typer.Context,
    names: list[str] | None = typer.Argument(None, help="Models to check (default: all)."),
    as_json: bool = JsonOption,
) -> None:
    """Re-hash installed models and load generators; exit 1 if any file is damaged or changed."""
    from photokit.store.models import ModelStore
    from photokit.stylegan2 import GENERATOR_FILES

    results = ModelStore(settings_from(ctx), generator_files=GENERATOR_FILES).verify(names or None)
    bad = [r for r in results if r["installed"] and not r["ok"]]
    if as_json:
        print_json({"ok": not bad, "models": results})
    else:
        for r in results:
            if not r["installed"]:
                console.print(f"{r['name']}: not installed")
            elif r["ok"]:
                console.print(f"{r['name']}: [green]ok[/] ({r['sha256'][:16]})")
            else:
                console.print(f"{r['name']}: [red]FAILED[/] {user_text(r['problem'])}")
    if bad:
        raise typer.Exit(1)


@models_app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(..., help="Catalog name.")) -> None:
    """Delete an installed model file."""
    from photokit.store.models import ModelStore

    path = ModelStore(settings_from(ctx)).remove(name)
    console.print(f"removed {user_text(name)} ({user_text(path)})")


@models_app.command("convert")
def convert(
    src: Path = typer.Argument(..., help="A StyleGAN2 generator: NVIDIA .pkl or state dict, rosinality .pt, photokit."),
    dst: Path = typer.Argument(..., help="Output file (photokit format: safetensors + JSON config)."),
    as_json: bool = JsonOption,
) -> None:
    """Convert a StyleGAN2 checkpoint to photokit's format (never executes code from the file)."""
    from photokit.stylegan2 import convert_generator

    if dst.exists() and dst.resolve() == src.resolve():
        raise PhotokitError("the output would overwrite the input: choose another file name")
    info = convert_generator(src, dst)
    if as_json:
        print_json(info)
    else:
        console.print(
            f"{user_text(src)} -> {user_text(dst)}: {info['source']} layout, {info['resolution']} px, {info['num_ws']} ws, "
            f"{_size(info['bytes'])}"
        )


@models_app.command("sample")
def sample(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    generator: Path | None = typer.Option(None, "--generator", help="Generator file (default: the installed one)."),
    seed: int = typer.Option(0, "--seed"),
    count: int = typer.Option(4, "--count", min=1, max=64),
    truncation: float = typer.Option(0.7, "--truncation", help="Truncation psi (1 = none)."),
    device: Device = DeviceOption,
    force: bool = typer.Option(False, "--force", help="Replace --out if it already exists."),
) -> None:
    """Render a few random faces from a generator: a quick check that an install works."""
    from photokit.store.models import ModelStore
    from photokit.stylegan2.sampling import render_samples

    out = new_output_path(out, force)
    path = generator or ModelStore(settings_from(ctx)).require_generator()
    info = render_samples(path, out, seed=seed, count=count, truncation_psi=truncation, device=device)
    console.print(
        f"wrote {user_text(out)} ({info['count']} samples at {info['resolution']} px on {info['device']}, {info['seconds']:.1f} s)"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(models_app, name="models")
