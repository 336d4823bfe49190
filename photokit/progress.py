"""Rich progress bars on stderr (stdout stays clean for ``--json``)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

stderr_console = Console(stderr=True)


class StatusColumn(ProgressColumn):
    """Free text from ``progress.update(task, status=...)`` (current loss, file name...)."""

    def render(self, task):
        from rich.text import Text

        from photokit.pathtext import shown

        return Text(shown(str(task.fields.get("status", ""))), style="dim")


def make_progress(transient: bool = False, console: Console | None = None) -> Progress:
    """A progress bar with count, elapsed time and ETA. Use as a context manager."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        StatusColumn(),
        console=console or stderr_console,
        transient=transient,
    )
