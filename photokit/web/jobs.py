"""Background jobs for the gallery: one worker thread, rows in ``background_jobs``, progress via ``Reporter``.

A job row is the truth: the page polls it, so a reload loses nothing. On start the runner puts every
``queued``/``running`` row back in line; the work itself resumes from its own records (an album's
``EnhanceJob`` rows, a prior build's checkpoints), so a restarted server neither loses nor repeats work.
Cancel sets ``cancel_requested``; the job's reporter reads it on every progress step (an inversion or tuning
step, a face's projection step, a photo) and stops the library call the way Ctrl-C does, which leaves
resumable state behind (``tests/test_web_priors.py`` cancels a 20,000-step build a few steps in).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select

from photokit.db import Database
from photokit.db.models import BackgroundJob, utcnow
from photokit.errors import PhotokitError
from photokit.reporting import NoteLevel
from photokit.web.hints import error_text

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.5
MAX_NOTES = 50
RESUMED_NOTE = "started again after the server stopped: continuing from what was saved"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class JobStopped(KeyboardInterrupt):
    """Raised inside a job when it was cancelled or the server is stopping; library code treats it as Ctrl-C
    (saves what it has, leaves the rest queued)."""


@dataclass
class JobContext:
    """What a job handler gets: its parameters, a reporter writing into its row, and the stop check."""

    job_id: int
    params: dict
    reporter: JobReporter
    should_stop: Callable[[], bool]

    def check(self) -> None:
        """Call between units of work."""
        if self.should_stop():
            raise JobStopped


Handler = Callable[[JobContext], dict]


@dataclass
class JobReporter:
    """A ``photokit.reporting.Reporter`` that writes progress into a job row (at most every 0.5 s).

    The first task started is the job's progress bar; later ones (a face inside a photo) only update the
    stage text. It is also where cancel is noticed between steps: ``task_advanced`` and ``note`` raise
    ``JobStopped`` (a KeyboardInterrupt) once the job should stop, which library code handles as Ctrl-C
    (checkpoint, leave the rest queued). Everything else it does never raises.
    """

    db: Database
    job_id: int
    should_stop: Callable[[], bool] = lambda: False
    _tasks: dict[str, list] = field(default_factory=dict)  # key -> [description, done, total]
    _main: str | None = None
    _notes: list = field(default_factory=list)
    _last_flush: float = 0.0

    # -- Reporter protocol ----------------------------------------------------------------------
    def task_started(self, key: str, description: str, total: float | None, completed: float = 0) -> None:
        self._tasks[key] = [description, float(completed), total]
        if self._main is None:
            self._main = key
        self._flush(force=True)

    def task_advanced(self, key: str, advance: float = 1, status: str | None = None) -> None:
        task = self._tasks.get(key)
        if task is None:
            return
        task[1] += advance
        if status:
            task[0] = task[0].split(" · ")[0] + " · " + status
        self._flush()
        self._stop_if_asked()

    def task_finished(self, key: str) -> None:
        if key == self._main:
            self._flush(force=True)  # the bar's final count (advances since the last flush were not written)
        self._tasks.pop(key, None)
        if key == self._main:
            self._main = None
        self._flush(force=True)

    def note(self, message: str, level: NoteLevel = NoteLevel.INFO) -> None:
        self._notes.append([NoteLevel(level).value, str(message)])
        self._flush(force=True)
        self._stop_if_asked()

    def _stop_if_asked(self) -> None:
        if self.should_stop():
            self._flush(force=True)  # the row shows where the work stopped
            raise JobStopped

    # -- storage --------------------------------------------------------------------------------
    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_flush < FLUSH_EVERY_S:
            return
        self._last_flush = now
        main = self._tasks.get(self._main) if self._main else None
        latest = next(reversed(self._tasks.values()), None)
        try:
            with self.db.session() as session:
                job = session.get(BackgroundJob, self.job_id)
                if job is None:
                    return
                if main is not None:
                    job.progress_done, job.progress_total = main[1], main[2]
                if latest is not None:
                    job.stage = latest[0]
                if self._notes:
                    job.notes = (list(job.notes or []) + self._notes)[-MAX_NOTES:]
                    self._notes = []
        except Exception:  # progress must never break the work it reports on
            log.exception("could not record progress of job %s", self.job_id)


class JobRunner:
    """Runs queued jobs one at a time in a daemon thread."""

    def __init__(self, db, handlers: dict[str, Handler]) -> None:
        self.db = db
        self.handlers = handlers
        self._queue: queue.Queue[int] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------------
    def start(self) -> None:
        """Re-queue what a previous server left unfinished, then start working."""
        with self.db.session() as session:
            pending = session.scalars(
                select(BackgroundJob).where(BackgroundJob.status.in_(UNFINISHED)).order_by(BackgroundJob.id)
            ).all()
            for job in pending:
                job.status = JobStatus.QUEUED.value
                self._queue.put(job.id)
        self._thread = threading.Thread(target=self._work, name="photokit-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current unit of work; the running job stays queued and resumes next start."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, kind: str, title: str, params: dict) -> int:
        if kind not in self.handlers:
            raise PhotokitError(f"unknown job kind '{kind}'")
        with self.db.session() as session:
            job = BackgroundJob(kind=kind, title=title, params=params, status=JobStatus.QUEUED.value, notes=[])
            session.add(job)
            session.flush()
            job_id = job.id
        self._queue.put(job_id)
        return job_id

    def cancel(self, job_id: int) -> BackgroundJob:
        with self.db.session() as session:
            job = session.get(BackgroundJob, job_id)
            if job is None:
                raise LookupError(job_id)
            if job.status == JobStatus.QUEUED.value:
                job.status, job.finished_at = JobStatus.CANCELLED.value, utcnow()
            elif job.status == JobStatus.RUNNING.value:
                job.cancel_requested = True
            return job

    # -- work -----------------------------------------------------------------------------------
    def _cancel_requested(self, job_id: int) -> bool:
        with self.db.session(write=False) as session:
            return bool(session.scalar(select(BackgroundJob.cancel_requested).where(BackgroundJob.id == job_id)))

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                job_id = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._run(job_id)
            except Exception:  # the worker must outlive any job
                log.exception("background job %s crashed the worker", job_id)

    def _claim(self, job_id: int) -> tuple[str, dict] | None:
        with self.db.session() as session:
            job = session.get(BackgroundJob, job_id)
            if job is None or job.status != JobStatus.QUEUED.value:
                return None
            if job.started_at is not None:  # a server stopped in the middle of it: the work resumes
                job.notes = (list(job.notes or []) + [[NoteLevel.INFO.value, RESUMED_NOTE]])[-MAX_NOTES:]
            job.status, job.started_at, job.error = JobStatus.RUNNING.value, utcnow(), None
            job.stage, job.progress_done, job.progress_total = None, 0.0, None  # this run's progress, not the last's
            return job.kind, dict(job.params or {})

    def _run(self, job_id: int) -> None:
        claimed = self._claim(job_id)
        if claimed is None:
            return
        kind, params = claimed
        last_check = [0.0, False]

        def should_stop() -> bool:  # the DB flag, read at most every 0.3 s
            if self._stopping.is_set():
                return True
            if time.monotonic() - last_check[0] > 0.3:
                last_check[0], last_check[1] = time.monotonic(), self._cancel_requested(job_id)
            return last_check[1]

        reporter = JobReporter(self.db, job_id, should_stop)
        ctx = JobContext(job_id, params, reporter, should_stop)
        status, error, result = JobStatus.DONE, None, None
        try:
            ctx.check()
            result = self.handlers[kind](ctx)
        except KeyboardInterrupt:  # JobStopped, or a library's own Ctrl-C path re-raising it
            status = JobStatus.QUEUED if self._stopping.is_set() else JobStatus.CANCELLED
        except PhotokitError as exc:
            status, error = JobStatus.FAILED, error_text(exc)
        except Exception as exc:
            log.exception("background job %s failed", job_id)
            status, error = JobStatus.FAILED, f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"
        reporter._flush(force=True)
        with self.db.session() as session:
            job = session.get(BackgroundJob, job_id)
            job.status, job.error = status.value, error
            if result is not None:
                job.result = result
            if status is not JobStatus.QUEUED:
                job.finished_at = utcnow()
