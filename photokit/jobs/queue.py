"""A job queue in the library database that many workers, on many machines, can share.

Each job is an ``EnhanceJob`` row. A worker *claims* the oldest job of a batch that is queued, or running
with an expired lease (its worker died), in one short transaction: on PostgreSQL with
``SELECT ... FOR UPDATE SKIP LOCKED`` (concurrent claimers never wait for, nor take, each other's row),
and everywhere with a compare-and-set ``UPDATE`` that only succeeds if the row is still claimable, so
two workers can never both hold a job. The holder renews its lease with heartbeats (``Heartbeat``).
Only the current holder can ``finish`` a job: a worker that lost its lease (it stalled, another one redid
the job) finds its result refused, so no job is finished twice. Outputs are written atomically under
their final name, so a job redone after a crash leaves one complete file.

Times are the database server's clock on PostgreSQL (workers on several machines agree on it), the
local clock on SQLite (one machine).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from photokit.db.models import EnhanceJob, utcnow
from photokit.db.vocab import JobStatus

DEFAULT_LEASE_S = 60.0
LEASE_ENV = "PHOTOKIT_JOB_LEASE_S"  # how long a silent worker keeps its job before another one redoes it


def lease_seconds() -> float:
    """The lease of a claimed job: ``$PHOTOKIT_JOB_LEASE_S`` (at least 1 s) or 60 s."""
    raw = os.environ.get(LEASE_ENV, "").strip()
    try:
        return max(1.0, float(raw)) if raw else DEFAULT_LEASE_S
    except ValueError:
        return DEFAULT_LEASE_S


def worker_name() -> str:
    """A name no other worker (on any machine, in any process) has: host, process id, random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobKind(StrEnum):
    ENHANCE = "enhance"  # restore one photo of an album
    PRIOR_BUILD = "prior_build"  # build one person's prior
    FACE_DETECT = "face_detect"  # detect and describe the faces of one photo


FINAL_STATUSES = (JobStatus.DONE, JobStatus.SKIPPED, JobStatus.FAILED)


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    batch_key: str
    subject: str  # the photo path, or the job's subject for other kinds
    options: dict
    attempts: int  # 1 on the first claim; more when a dead worker's job is redone
    worker: str


@dataclass
class JobOutcome:
    """What doing a job gave: its final status, output, error and report (stored on the job row); ``extra``
    goes back to whoever asked for the work (e.g. face crops over Ray), never into the database."""

    status: JobStatus
    output: str | None = None
    error: str | None = None
    report: dict | None = None
    extra: dict | None = None


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _now(session: Session) -> ColumnElement | datetime:
    """UTC now: the server's clock on PostgreSQL (as a naive UTC timestamp, like every column here)."""
    if _is_postgres(session):
        return func.timezone("UTC", func.clock_timestamp())
    return utcnow()


def _lease_end(session: Session, lease_s: float) -> ColumnElement | datetime:
    return _now(session) + timedelta(seconds=lease_s)


def enqueue(
    db,
    kind: JobKind,
    batch_key: str,
    subjects: Iterable[str],
    options: dict | None = None,
    subject_options: Mapping[str, dict] | None = None,
) -> int:
    """Queue a job per subject not yet in the batch (``options`` plus its ``subject_options``); returns how
    many were added. A finished job stays finished (re-running a batch resumes it). Safe when several
    workers queue the same batch at once: a subject another one queued first is left as it is."""
    subjects = list(dict.fromkeys(subjects))
    with db.session() as session:
        known = set(session.scalars(select(EnhanceJob.source_path).where(EnhanceJob.batch_key == batch_key)))
        rows = [
            {
                "batch_key": batch_key,
                "kind": kind.value,
                "source_path": s,
                "status": JobStatus.QUEUED.value,
                "options": {**(options or {}), **(subject_options or {}).get(s, {})},
                "attempts": 0,
                "created_at": utcnow(),
            }
            for s in subjects
            if s not in known
        ]
        if not rows:
            return 0
        insert = postgres_insert if _is_postgres(session) else sqlite_insert
        added = session.scalars(
            insert(EnhanceJob)
            .on_conflict_do_nothing(index_elements=["batch_key", "source_path"])
            .returning(EnhanceJob.id),
            rows,
        ).all()
    return len(added)


def requeue(db, batch_key: str, subjects: Iterable[str]) -> int:
    """Put finished jobs back in the queue (e.g. their output was deleted since)."""
    return _update_jobs(db, batch_key, subjects, status=JobStatus.QUEUED.value, worker=None, lease_expires_at=None)


def withdraw(db, batch_key: str, subjects: Iterable[str], reason: str) -> int:
    """Take queued jobs out of the batch (skipped, with ``reason``): e.g. a photo deleted from the album."""
    queued = EnhanceJob.status == JobStatus.QUEUED.value
    return _update_jobs(db, batch_key, subjects, queued, status=JobStatus.SKIPPED.value, error=reason)


def _update_jobs(db, batch_key: str, subjects: Iterable[str], *conditions: ColumnElement, **values) -> int:
    """Set ``values`` on the batch's jobs for ``subjects`` (that also meet ``conditions``); how many changed."""
    subjects = list(subjects)
    if not subjects:
        return 0
    with db.session() as session:
        result = session.execute(
            update(EnhanceJob)
            .where(EnhanceJob.batch_key == batch_key, EnhanceJob.source_path.in_(subjects), *conditions)
            .values(**values)
        )
        return result.rowcount


def _claimable(session: Session, batch_key: str) -> ColumnElement:
    return and_(
        EnhanceJob.batch_key == batch_key,
        or_(
            EnhanceJob.status == JobStatus.QUEUED.value,
            # A lease that ran out (its worker died), or none at all: left by a single-process run that crashed.
            and_(
                EnhanceJob.status == JobStatus.RUNNING.value,
                or_(EnhanceJob.lease_expires_at.is_(None), EnhanceJob.lease_expires_at < _now(session)),
            ),
        ),
    )


def claim(db, batch_key: str, worker: str, lease_s: float = DEFAULT_LEASE_S) -> ClaimedJob | None:
    """Atomically take the next job of ``batch_key`` for ``worker``; None when nothing is claimable now
    (all done, or the rest held by live workers)."""
    for _ in range(50):  # on SQLite another worker may win the row between SELECT and UPDATE: try the next
        with db.session() as session:
            query = select(EnhanceJob.id).where(_claimable(session, batch_key)).order_by(EnhanceJob.id).limit(1)
            if _is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            job_id = session.scalar(query)
            if job_id is None:
                return None
            now = _now(session)
            taken = session.execute(
                update(EnhanceJob)
                .where(EnhanceJob.id == job_id, _claimable(session, batch_key))
                .values(
                    status=JobStatus.RUNNING.value,
                    worker=worker,
                    attempts=EnhanceJob.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                    lease_expires_at=_lease_end(session, lease_s),
                    error=None,
                )
                .returning(EnhanceJob.kind, EnhanceJob.source_path, EnhanceJob.options, EnhanceJob.attempts)
            ).one_or_none()
            if taken is not None:
                kind, subject, options, attempts = taken
                return ClaimedJob(job_id, kind, batch_key, subject, options or {}, attempts, worker)
    return None


def _held_by(job_id: int, worker: str) -> ColumnElement:
    return and_(EnhanceJob.id == job_id, EnhanceJob.worker == worker, EnhanceJob.status == JobStatus.RUNNING.value)


def heartbeat(db, job_id: int, worker: str, lease_s: float = DEFAULT_LEASE_S) -> bool:
    """Renew ``worker``'s lease on the job; False if it no longer holds it."""
    with db.session() as session:
        result = session.execute(
            update(EnhanceJob)
            .where(_held_by(job_id, worker))
            .values(heartbeat_at=_now(session), lease_expires_at=_lease_end(session, lease_s))
        )
        return result.rowcount == 1


def finish(
    db,
    job_id: int,
    worker: str,
    status: JobStatus,
    *,
    output: str | None = None,
    error: str | None = None,
    report: dict | None = None,
) -> bool:
    """Record the job's outcome if ``worker`` still holds it; False (nothing written) if it does not."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"{status} is not a final status")
    with db.session() as session:
        result = session.execute(
            update(EnhanceJob)
            .where(_held_by(job_id, worker))
            .values(
                status=status.value,
                output_path=output,
                error=error,
                report=report,
                finished_at=_now(session),
                lease_expires_at=None,
            )
        )
        return result.rowcount == 1


def record_progress(db, job_id: int, worker: str, progress: dict) -> bool:
    """Note how far the holder is in its job (``{"stage", "done", "total"}``), for whoever watches the batch;
    kept in the job's report until the job finishes."""
    with db.session() as session:
        result = session.execute(
            update(EnhanceJob).where(_held_by(job_id, worker)).values(report={"progress": progress})
        )
        return result.rowcount == 1


def running_progress(db, batch_key: str) -> dict[str, dict]:
    """subject -> the progress its holder last recorded, for the batch's running jobs."""
    with db.session(write=False) as session:
        rows = session.execute(
            select(EnhanceJob.source_path, EnhanceJob.report).where(
                EnhanceJob.batch_key == batch_key, EnhanceJob.status == JobStatus.RUNNING.value
            )
        )
        return {subject: report["progress"] for subject, report in rows if report and "progress" in report}


def release(db, worker: str, job_id: int | None = None) -> int:
    """Give ``worker``'s running job (or all of them) back to the queue, e.g. after Ctrl-C."""
    with db.session() as session:
        where = [EnhanceJob.worker == worker, EnhanceJob.status == JobStatus.RUNNING.value]
        if job_id is not None:
            where.append(EnhanceJob.id == job_id)
        result = session.execute(update(EnhanceJob).where(*where).values(status="queued", lease_expires_at=None))
        return result.rowcount


def status_counts(db, batch_key: str) -> dict[str, int]:
    """Jobs of the batch per status."""
    with db.session() as session:
        rows = session.execute(
            select(EnhanceJob.status, func.count()).where(EnhanceJob.batch_key == batch_key).group_by(EnhanceJob.status)
        )
        return {status: n for status, n in rows}


def unfinished(db, batch_key: str) -> int:
    """Jobs of the batch still queued or running (held by a live worker, or by a dead one until its lease ends)."""
    counts = status_counts(db, batch_key)
    return counts.get(JobStatus.QUEUED.value, 0) + counts.get(JobStatus.RUNNING.value, 0)


def held_by_others(db, batch_key: str) -> int:
    """Jobs of the batch running under a lease that has not run out: another worker is on the batch now."""
    with db.session(write=False) as session:
        return session.scalar(
            select(func.count()).where(
                EnhanceJob.batch_key == batch_key,
                EnhanceJob.status == JobStatus.RUNNING.value,
                EnhanceJob.lease_expires_at >= _now(session),
            )
        )


class Heartbeat:
    """Renews a job's lease every ``lease_s / 3`` seconds in a background thread while the job runs.

    ``lost`` becomes True when the lease was taken over (the worker stalled past it)."""

    def __init__(self, db, job: ClaimedJob, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.db, self.job, self.lease_s = db, job, lease_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job.id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if not heartbeat(self.db, self.job.id, self.job.worker, self.lease_s):
                    self.lost = True
                    return
            except Exception:  # a database hiccup: the next beat (or the lease) decides
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def claim_next(
    db, batch_key: str, worker: str, lease_s: float, on_wait: Callable[[int], None] | None = None
) -> ClaimedJob | None:
    """The batch's next job for ``worker``, waiting while other workers hold the rest (a dead one's job comes
    back when its lease runs out); None when the batch is finished. ``on_wait(held)`` is called once, when
    it starts waiting."""
    waited = False
    while (job := claim(db, batch_key, worker, lease_s)) is None:
        left = unfinished(db, batch_key)
        if not left:
            return None
        if not waited and on_wait is not None:
            on_wait(left)
        waited = True
        time.sleep(min(1.0, lease_s / 4))
    return job


def run_job(db, job: ClaimedJob, lease_s: float, work: Callable[[], JobOutcome]) -> tuple[JobOutcome, bool]:
    """Do a claimed job under a heartbeat and record its outcome: (outcome, accepted). Not accepted: the
    lease was lost and another worker redid the job (its result stands). An interrupt (Ctrl-C, a
    cancelled task) gives the job back to the queue at once and propagates."""
    try:
        with Heartbeat(db, job, lease_s):
            outcome = work()
    except BaseException:
        release(db, job.worker, job.id)
        raise
    accepted = finish(
        db, job.id, job.worker, outcome.status, output=outcome.output, error=outcome.error, report=outcome.report
    )
    return outcome, accepted
