"""Ray actors that claim jobs from the shared library database, and the driver loop that feeds them.

A ``JobWorker`` is built once per Ray worker process: its handler (made by a picklable factory inside
the worker) keeps its models loaded across jobs. The driver keeps one ``work_one`` call in flight per
worker, so each finished job streams back to the submitting terminal as it completes. A worker that
dies (its node lost, its process killed) simply stops answering: its job's lease runs out and a live
worker takes the job over. Ctrl-C cancels the calls in flight, stops the workers and gives their jobs
back to the queue.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Protocol

from photokit.db.session import Database, create_db_engine
from photokit.db.vocab import JobStatus
from photokit.errors import PhotokitError
from photokit.jobs.queue import (
    DEFAULT_LEASE_S,
    ClaimedJob,
    JobOutcome,
    claim,
    lease_seconds,
    record_progress,
    release,
    run_job,
    unfinished,
    worker_name,
)
from photokit.reporting import NULL_REPORTER, RecordingReporter, Reporter, reported_task


class JobHandler(Protocol):
    def __call__(self, job: ClaimedJob) -> JobOutcome:
        """Do the job; raise KeyboardInterrupt when interrupted (the job goes back to the queue)."""


HandlerFactory = Callable[[], JobHandler]  # picklable; called once inside each worker process


class ProgressToDatabase(RecordingReporter):
    """A worker's Reporter for its current job: the stage it is in is written on the job row (at most every
    ``every_s`` seconds), where the submitting terminal reads it (``photokit.jobs.queue.running_progress``)."""

    def __init__(self, db, job: ClaimedJob, every_s: float = 1.0) -> None:
        super().__init__()
        self.db, self.job, self.every_s = db, job, every_s
        self._written_at = float("-inf")

    def task_started(self, key: str, description: str, total: float | None, completed: float = 0) -> None:
        super().task_started(key, description, total, completed)
        self._write(key)

    def task_advanced(self, key: str, advance: float = 1, status: str | None = None) -> None:
        super().task_advanced(key, advance, status)
        self._write(key)

    def _write(self, key: str) -> None:
        if time.monotonic() - self._written_at < self.every_s:
            return
        self._written_at = time.monotonic()
        done, total = self.progress[key]
        progress = {"stage": self.descriptions.get(key, key), "done": done, "total": total}
        with contextlib.suppress(Exception):  # progress is for show: a database hiccup must not fail the job
            record_progress(self.db, self.job.id, self.job.worker, progress)


class JobWorker:
    """The body of a Ray actor (wrapped with ``ray.remote`` by ``start_workers``)."""

    def __init__(self, db_url: str, factory: HandlerFactory, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.db = Database(engine=create_db_engine(db_url), url=db_url)
        self.worker_id = worker_name()
        self.lease_s = lease_s
        self.handler = factory()

    def identity(self) -> tuple[str, int]:
        return self.worker_id, os.getpid()

    def work_one(self, batch_key: str, wait_s: float = 0.0) -> dict | None:
        """Claim one job of the batch, do it, record it; None when nothing was claimable (after ``wait_s``)."""
        job = claim(self.db, batch_key, self.worker_id, self.lease_s)
        if job is None and wait_s > 0:
            time.sleep(wait_s)
            job = claim(self.db, batch_key, self.worker_id, self.lease_s)
        if job is None:
            return None

        def work() -> JobOutcome:
            try:
                return self.handler(job)
            except Exception as exc:  # one broken job must not stop the batch: it fails with the reason
                detail = " ".join(str(exc).split()) or type(exc).__name__
                return JobOutcome(JobStatus.FAILED, error=f"{job.subject}: unexpected {type(exc).__name__}: {detail}")

        outcome, accepted = run_job(self.db, job, self.lease_s, work)  # Ctrl-C / ray.cancel: the job is released
        return {
            "job": job.id, "subject": job.subject, "status": outcome.status.value, "output": outcome.output,
            "error": outcome.error, "report": outcome.report, "attempts": job.attempts, "worker": self.worker_id,
            "accepted": accepted, "extra": outcome.extra,
        }  # fmt: skip


def last_line(exc: BaseException) -> str:
    """The last non-empty line of a remote error (Ray wraps the worker's traceback; its end says why)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def start_workers(db_url: str, factory: HandlerFactory, count: int, num_gpus: float = 0, lease_s: float | None = None):
    """``count`` Ray actors, each one CPU (and ``num_gpus``), models loaded once per actor."""
    from photokit.distributed import require_ray

    ray = require_ray()
    remote = ray.remote(num_cpus=1, num_gpus=num_gpus, max_restarts=0, max_task_retries=0)(JobWorker)
    return [remote.remote(db_url, factory, lease_s or lease_seconds()) for _ in range(count)]


def run_batch_on_workers(
    db,
    batch_key: str,
    workers: list,
    reporter: Reporter = NULL_REPORTER,
    description: str = "jobs",
    total: int | None = None,
    completed: int = 0,
    poll_s: float = 1.0,
    watch: Callable[[], str | None] | None = None,
) -> list[dict]:
    """Feed the batch's jobs to ``workers`` until none is queued or running; the outcomes, in finishing
    order (only those the database accepted: a job redone after a lease ran out counts once). ``watch``
    says how the running jobs are getting on (shown as the bar's status while nothing finishes)."""
    import ray

    outcomes: list[dict] = []
    try:  # waits for every worker to load its models
        worker_ids = [worker_id for worker_id, _pid in ray.get([worker.identity.remote() for worker in workers])]
    except ray.exceptions.RayActorError as exc:  # e.g. a model missing on a node: say why, in one line
        raise PhotokitError(f"the Ray workers could not start: {last_line(exc)}") from None
    pending = {worker.work_one.remote(batch_key): worker for worker in workers}
    with reported_task(reporter, "ray-batch", description, total, completed):
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=poll_s)
                if not ready:
                    if watch is not None and (status := watch()):
                        reporter.task_advanced("ray-batch", 0, status=status)
                    continue
                worker = pending.pop(ready[0])
                try:
                    outcome = ray.get(ready[0])
                except ray.exceptions.RayActorError:
                    reporter.note("a Ray worker died; its job is redone by another one after its lease")
                    continue
                if outcome is None:
                    if not unfinished(db, batch_key):
                        continue  # the batch is finished: this worker retires
                elif outcome["accepted"]:
                    outcomes.append(outcome)
                    reporter.task_advanced("ray-batch", 1, status=os.path.basename(outcome["subject"]))
                # Nothing claimable yet jobs left: others hold them (maybe dead ones), so wait for their leases.
                pending[worker.work_one.remote(batch_key, poll_s if outcome is None else 0.0)] = worker
        except KeyboardInterrupt:
            stop_workers(db, list(pending), workers, worker_ids)
            raise
    if unfinished(db, batch_key):
        raise PhotokitError("every Ray worker died before the batch was finished; run the command again to resume")
    return outcomes


def stop_workers(db, in_flight: list, workers: list, worker_ids: list[str], grace_s: float = 10.0) -> None:
    """Cancel the calls in flight (their jobs go back to the queue), then end the workers."""
    import ray

    for ref in in_flight:
        ray.cancel(ref)
    if in_flight:
        ray.wait(in_flight, num_returns=len(in_flight), timeout=grace_s)
    for worker in workers:
        ray.kill(worker)
    for worker_id in worker_ids:  # a worker ended before it could give its job back
        release(db, worker_id)
