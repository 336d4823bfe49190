"""The command-line reference (``docs/cli.md``), generated from the Typer app's own help texts.

Run ``python -m photokit.cli.reference > docs/cli.md`` after adding or changing a command; a test fails
when the file is stale or a command is missing, so the reference never drifts from ``--help``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

HEADER = """# photokit command reference

Generated from the commands' `--help` texts by `python -m photokit.cli.reference > docs/cli.md`;
do not edit by hand. Every command also prints this with `--help`.
"""


# Typer ships its own click; commands and parameters are duck-typed here rather than imported from it.
Command = Any


def iter_commands(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command and sub-command (depth first, in name order), with its path below ``photokit``."""
    yield path, command
    if hasattr(command, "commands"):
        for name in sorted(command.commands):
            sub = command.commands[name]
            if not getattr(sub, "hidden", False):
                yield from iter_commands(sub, (*path, name))


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _param_row(param: Any, ctx: typer.Context) -> str:
    """A table row from exactly what ``--help`` prints for the parameter."""
    record = param.get_help_record(ctx)
    if record is None:
        return ""
    names, help_text = record
    return f"| `{_escape(names)}` | {_escape(help_text)} |"


def command_section(path: tuple[str, ...], command: Command) -> str:
    """One command's heading, usage, help and options, as Markdown."""
    name = " ".join(("photokit", *path))
    ctx = typer.Context(command, info_name=name)
    lines = [f"{'#' * min(2 + len(path), 4)} `{name}`", ""]
    lines += [f"```\n{command.get_usage(ctx).strip()}\n```", ""]
    if command.help:
        lines += [command.help.strip(), ""]
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False) and p.name != "help"]
    if params:
        lines += ["| option | meaning |", "| --- | --- |"]
        lines += [row for row in (_param_row(p, ctx) for p in params) if row]
        lines.append("")
    if hasattr(command, "commands"):
        subs = [n for n in sorted(command.commands) if not getattr(command.commands[n], "hidden", False)]
        lines += ["Commands: " + ", ".join(f"`{n}`" for n in subs), ""]
    return "\n".join(lines)


def render(app: typer.Typer | None = None) -> str:
    """The whole reference for ``app`` (default: the photokit command)."""
    if app is None:
        from photokit.cli.app import app
    root = typer.main.get_command(app)
    sections = [command_section(path, command) for path, command in iter_commands(root)]
    return HEADER + "\n" + "\n".join(sections).rstrip() + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
