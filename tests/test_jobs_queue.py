"""The job queue: atomic claims, leases and heartbeats, finishing only by the holder (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter

import pytest
from sqlalchemy import select

from photokit.db import open_database
from photokit.db.models import EnhanceJob
from photokit.jobs import Heartbeat, JobKind, JobStatus, claim, enqueue, finish, heartbeat, release, status_counts
from photokit.settings import Settings


def test_claims_go_in_order_and_each_job_once(settings):
    db = open_database(settings)
    assert enqueue(db, JobKind.ENHANCE, "b1", ["a", "b", "c"]) == 3
    assert enqueue(db, JobKind.ENHANCE, "b1", ["a", "d"]) == 1  # a is already queued
    claimed = [claim(db, "b1", f"w{i}") for i in range(5)]
    assert [job.subject for job in claimed[:4]] == ["a", "b", "c", "d"]
    assert claimed[4] is None
    assert all(job.attempts == 1 and job.kind == "enhance" for job in claimed[:4])
    assert status_counts(db, "b1") == {"running": 4}
    assert claim(db, "other-batch", "w9") is None
    db.dispose()


def test_only_the_holder_finishes_and_a_dead_workers_job_is_redone_after_its_lease(settings):
    db = open_database(settings)
    enqueue(db, JobKind.PRIOR_BUILD, "b2", ["person:1"])
    first = claim(db, "b2", "dead-worker", lease_s=0.3)
    assert claim(db, "b2", "live-worker", lease_s=30) is None  # leased
    time.sleep(0.5)
    second = claim(db, "b2", "live-worker", lease_s=30)
    assert second is not None and second.id == first.id and second.attempts == 2
    assert not heartbeat(db, first.id, "dead-worker")  # it lost the lease
    assert finish(db, second.id, "live-worker", JobStatus.DONE, output="/out/x")
    assert not finish(db, first.id, "dead-worker", JobStatus.FAILED, error="late")  # refused: never twice
    with db.session() as session:
        row = session.get(EnhanceJob, first.id)
        assert (row.status, row.output_path, row.worker, row.error) == ("done", "/out/x", "live-worker", None)
    assert claim(db, "b2", "third") is None  # done jobs are never claimed again
    db.dispose()


def test_heartbeats_keep_a_slow_job_leased(settings):
    db = open_database(settings)
    enqueue(db, JobKind.FACE_DETECT, "b3", ["photo:7"])
    job = claim(db, "b3", "slow", lease_s=0.6)
    with Heartbeat(db, job, lease_s=0.6) as beat:
        time.sleep(1.5)  # 2.5 leases
        assert claim(db, "b3", "thief", lease_s=0.6) is None
    assert not beat.lost
    assert finish(db, job.id, "slow", JobStatus.DONE)
    db.dispose()


def test_a_running_job_without_a_lease_is_claimable(settings):
    """Left 'running' by a single-process run that crashed (it holds no lease): another run takes it."""
    db = open_database(settings)
    enqueue(db, JobKind.ENHANCE, "b5", ["a"])
    with db.session() as session:
        session.scalars(select(EnhanceJob)).one().status = "running"
    job = claim(db, "b5", "w1")
    assert job is not None and job.subject == "a"
    db.dispose()


def test_release_gives_a_job_back_at_once(settings):
    db = open_database(settings)
    enqueue(db, JobKind.ENHANCE, "b4", ["a", "b"])
    job = claim(db, "b4", "w1")
    assert release(db, "w1") == 1
    again = claim(db, "b4", "w2")
    assert again.id == job.id and again.attempts == 2
    db.dispose()


def _claim_all(url: str, worker: str, results) -> None:
    db = open_database(Settings.load(db_url=url), upgrade=False)
    mine = []
    while (job := claim(db, "many", worker, lease_s=600)) is not None:
        mine.append(job.id)
        assert finish(db, job.id, worker, JobStatus.DONE)
    results.put((worker, mine))
    db.dispose()


def test_four_processes_claim_two_hundred_jobs_each_exactly_once_on_postgres(pg_url):
    db = open_database(Settings.load(db_url=pg_url))
    enqueue(db, JobKind.ENHANCE, "many", [f"photo{i:03d}.jpg" for i in range(200)])
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(pg_url, f"proc{i}", results)) for i in range(4)]
    for proc in procs:
        proc.start()
    claimed = dict(results.get(timeout=240) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    counts = Counter(job_id for ids in claimed.values() for job_id in ids)
    assert len(counts) == 200 and set(counts.values()) == {1}  # every job claimed, none twice
    assert sum(1 for ids in claimed.values() if ids) >= 2  # they really ran side by side
    with db.session() as session:
        rows = session.scalars(select(EnhanceJob).where(EnhanceJob.batch_key == "many")).all()
    assert len(rows) == 200 and {r.status for r in rows} == {"done"} and {r.attempts for r in rows} == {1}
    assert {r.worker for r in rows} == {w for w, ids in claimed.items() if ids}
    db.dispose()


class _Broken:
    """A handler with a bug on one subject and a Ctrl-C on another."""

    def __call__(self, job):
        from photokit.jobs import JobOutcome

        if job.subject == "bug":
            raise ValueError("no\nsuch thing")
        if job.subject == "ctrl-c":
            raise KeyboardInterrupt
        return JobOutcome(JobStatus.DONE, output=f"/out/{job.subject}")


def test_a_worker_fails_a_buggy_job_with_its_reason_and_gives_an_interrupted_one_back(settings):
    from photokit.distributed.workers import JobWorker

    db = open_database(settings)
    enqueue(db, JobKind.ENHANCE, "b6", ["ok", "bug", "ctrl-c"])
    worker = JobWorker(settings.db_url, _Broken, lease_s=30)  # the body of a Ray actor, run in-process
    assert worker.work_one("b6")["status"] == "done"
    failed = worker.work_one("b6")
    assert failed["status"] == "failed" and failed["accepted"]
    assert failed["error"] == "bug: unexpected ValueError: no such thing"  # one line
    with pytest.raises(KeyboardInterrupt):
        worker.work_one("b6")
    assert status_counts(db, "b6") == {"done": 1, "failed": 1, "queued": 1}
    worker.db.dispose()
    db.dispose()


def test_a_workers_progress_is_on_its_job_row_until_the_job_finishes(settings):
    from photokit.distributed.priors import builds_status
    from photokit.distributed.workers import ProgressToDatabase
    from photokit.jobs.queue import record_progress, running_progress
    from photokit.prior.build_all import AllPriorsPlan, PersonBuild

    db = open_database(settings)
    enqueue(db, JobKind.PRIOR_BUILD, "b9", ["person:1", "person:2"])
    ann, bob = claim(db, "b9", "w1"), claim(db, "b9", "w2")
    progress = ProgressToDatabase(db, ann, every_s=0)
    progress.task_started("tuning", "tuning", 300)
    progress.task_advanced("tuning", 120, "loss 0.1")
    assert not record_progress(db, ann.id, "w2", {"stage": "stolen"})  # only the holder writes it
    slow = ProgressToDatabase(db, bob, every_s=3600)  # at most once an hour: the first write only
    slow.task_started("anchors", "anchors", 8)
    slow.task_advanced("anchors", 2)
    assert running_progress(db, "b9") == {
        "person:1": {"stage": "tuning", "done": 120, "total": 300},
        "person:2": {"stage": "anchors", "done": 0, "total": 8},
    }
    plan = AllPriorsPlan("b9", [PersonBuild(1, "Ann"), PersonBuild(2, None)], unnamed=0, measured_on="cpu")
    assert builds_status(db, plan) == "Ann: tuning 120/300; person 2: anchors 0/8"
    assert finish(db, ann.id, "w1", JobStatus.DONE, report={"anchors": 5})
    assert running_progress(db, "b9") == {"person:2": {"stage": "anchors", "done": 0, "total": 8}}
    with db.session() as session:
        assert session.get(EnhanceJob, ann.id).report == {"anchors": 5}  # the result replaced the progress
    db.dispose()
