"""The CLI's ``Reporter``: rich progress bars (count, elapsed, ETA) on stderr, notes as dim lines.

stdout stays clean for ``--json``; with ``enabled=False`` (``--json``) there are no bars and only warnings
are printed, unless ``notes=True`` keeps the up-front plan and cost lines (they go to stderr either way).
"""

from __future__ import annotations

from types import TracebackType

from rich.markup import escape
from rich.progress import Progress, TaskID

from photokit import progress as _progress_module
from photokit.pathtext import shown
from photokit.progress import make_progress
from photokit.reporting import NoteLevel


class RichReporter:
    """Use as a context manager around the work: ``with RichReporter() as reporter: job(..., reporter)``."""

    def __init__(self, enabled: bool = True, transient: bool = False, notes: bool | None = None) -> None:
        self.enabled = enabled
        self.notes = enabled if notes is None else notes
        self._progress: Progress | None = make_progress(transient=transient) if enabled else None
        self._tasks: dict[str, TaskID] = {}
        self._started = False

    def __enter__(self) -> RichReporter:
        return self  # the bars start with the first task: a command that fails before it prints nothing extra

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None and self._started:
            self._progress.stop()

    def task_started(self, key: str, description: str, total: float | None, completed: float = 0) -> None:
        if self._progress is not None:
            if not self._started:
                self._progress.start()
                self._started = True
            self._tasks[key] = self._progress.add_task(escape(shown(description)), total=total, completed=completed)

    def task_advanced(self, key: str, advance: float = 1, status: str | None = None) -> None:
        if self._progress is not None and key in self._tasks:
            fields = {} if status is None else {"status": status}
            self._progress.update(self._tasks[key], advance=advance, **fields)

    def task_finished(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if self._progress is not None and task is not None:
            self._progress.remove_task(task)

    def note(self, message: str, level: NoteLevel = NoteLevel.INFO) -> None:
        # While the bar is live, everything printed goes through its console (another one would garble it).
        console = self._progress.console if self._progress is not None else _progress_module.stderr_console
        if level is NoteLevel.WARNING:
            console.print(f"[yellow]warning:[/yellow] {escape(shown(message))}", highlight=False)
        elif self.notes:
            console.print(escape(shown(message)), style="dim", highlight=False)
