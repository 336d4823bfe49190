"""docs/cli.md documents every command and is what the generator makes from the current --help texts."""

from __future__ import annotations

from pathlib import Path

import typer

from photokit.cli.app import app
from photokit.cli.reference import iter_commands, render

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
REGENERATE = "regenerate it: python -m photokit.cli.reference > docs/cli.md"


def test_every_command_and_sub_command_has_a_section():
    text = REFERENCE.read_text()
    paths = [path for path, _ in iter_commands(typer.main.get_command(app))]
    assert len(paths) > 10  # the walk reaches sub-commands, so the check below means something
    missing = [" ".join(("photokit", *p)) for p in paths if f"`{' '.join(('photokit', *p))}`" not in text]
    assert not missing, f"docs/cli.md lacks {missing}; {REGENERATE}"


def test_the_reference_is_not_stale():
    assert REFERENCE.read_text() == render(), f"docs/cli.md differs from the commands' help; {REGENERATE}"


def test_a_new_command_changes_the_reference():
    extra = typer.Typer()

    @extra.command("hello")
    def hello(name: str = typer.Option("x", "--name", help="Whom to greet.")) -> None:
        """Say hello."""

    @extra.command("bye")
    def bye() -> None:
        """Say goodbye."""

    text = render(extra)
    assert "`photokit hello`" in text and "Whom to greet." in text and "`photokit bye`" in text
