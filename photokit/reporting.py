"""How library code tells its caller what it is doing, without knowing who listens.

Layers below the CLI and the web app never print and never build progress bars: they take a
``Reporter`` and call it. The CLI implements it with rich progress bars on stderr
(``photokit.cli.reporters``), the web gallery with job-progress rows, tests with a recorder. Code
that has nobody to tell uses ``NULL_REPORTER``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class NoteLevel(StrEnum):
    """How much a note matters to the user."""

    INFO = "info"  # an estimate, a choice made on the user's behalf
    WARNING = "warning"  # the result is degraded or not what was asked (e.g. a random-weight generator)


class Reporter(Protocol):
    """Progress of named tasks, and sentences for the user. Every method must be cheap and must not raise."""

    def task_started(self, key: str, description: str, total: float | None, completed: float = 0) -> None:
        """A unit of work with ``total`` steps (None: unknown) began; ``completed`` of them are already done."""

    def task_advanced(self, key: str, advance: float = 1, status: str | None = None) -> None:
        """``advance`` more steps of ``key`` are done; ``status`` is a short free text (a loss, a file name)."""

    def task_finished(self, key: str) -> None:
        """``key`` is done (or abandoned); its bar may go."""

    def note(self, message: str, level: NoteLevel = NoteLevel.INFO) -> None:
        """A sentence for the user: an up-front cost estimate, a warning about quality."""


class NullReporter:
    """Tells nobody."""

    def task_started(self, key: str, description: str, total: float | None, completed: float = 0) -> None:
        pass

    def task_advanced(self, key: str, advance: float = 1, status: str | None = None) -> None:
        pass

    def task_finished(self, key: str) -> None:
        pass

    def note(self, message: str, level: NoteLevel = NoteLevel.INFO) -> None:
        pass


NULL_REPORTER: Reporter = NullReporter()


@dataclass
class RecordingReporter:
    """Keeps everything it is told (tests; the web app's job rows read ``progress``)."""

    progress: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # key -> (completed, total)
    descriptions: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    notes: list[tuple[NoteLevel, str]] = field(default_factory=list)

    def task_started(self, key: str, description: str, total: float | None, completed: float = 0) -> None:
        self.progress[key] = (completed, total)
        self.descriptions[key] = description

    def task_advanced(self, key: str, advance: float = 1, status: str | None = None) -> None:
        done, total = self.progress.get(key, (0.0, None))
        self.progress[key] = (done + advance, total)
        if status is not None:
            self.statuses[key] = status

    def task_finished(self, key: str) -> None:
        self.finished.append(key)

    def note(self, message: str, level: NoteLevel = NoteLevel.INFO) -> None:
        self.notes.append((level, message))


@contextmanager
def reported_task(
    reporter: Reporter, key: str, description: str, total: float | None, completed: float = 0
) -> Iterator[str]:
    """``task_started`` ... ``task_finished``, also when the work inside raises."""
    reporter.task_started(key, description, total, completed)
    try:
        yield key
    finally:
        reporter.task_finished(key)


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '3.5 h': how long something will take, for up-front estimates."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
