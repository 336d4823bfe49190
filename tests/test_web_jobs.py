"""Background jobs: progress rows through the Reporter, cancel between units, resume after a restart."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from tests.conftest import shared_path
from tests.web_support import csrf, make_client, wait_for_job

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'photokit[web]')")


def _runner_with(settings, handler):
    from photokit.db import open_database
    from photokit.web.jobs import JobRunner

    db = open_database(settings)
    return db, JobRunner(db, {"test": handler})


def test_progress_notes_and_result_are_written_to_the_job_row(settings):
    from photokit.reporting import NoteLevel

    def handler(ctx):
        ctx.reporter.note("this will take 3 units")
        ctx.reporter.task_started("units", "counting", total=3)
        for k in range(3):
            ctx.reporter.task_advanced("units", 1, status=f"unit {k}")
            ctx.check()
        ctx.reporter.note("degraded", NoteLevel.WARNING)
        return {"counted": 3}

    db, runner = _runner_with(settings, handler)
    runner.start()
    job_id = runner.submit("test", "count", {})
    with make_client(settings, run_jobs=False) as client:
        job = wait_for_job(client, job_id, {"done"})
    runner.stop()
    assert job["result"] == {"counted": 3}
    assert job["done"] == 3 and job["total"] == 3 and job["percent"] == 100
    assert job["notes"] == [["info", "this will take 3 units"], ["warning", "degraded"]]
    assert job["stage"] == "counting · unit 2"
    db.dispose()


def test_a_failing_job_records_its_one_line_error(settings):
    from photokit.errors import PhotokitError

    def handler(ctx):
        raise PhotokitError("person 7 has no faces")

    db, runner = _runner_with(settings, handler)
    runner.start()
    job_id = runner.submit("test", "fails", {})
    with make_client(settings, run_jobs=False) as client:
        job = wait_for_job(client, job_id, {"failed"})
        assert job["error"] == "person 7 has no faces"
        assert "person 7 has no faces" in client.get("/jobs").text
    runner.stop()
    db.dispose()


def test_cancel_stops_a_running_job_between_units_and_a_queued_one_at_once(settings):
    started, units = threading.Event(), []

    def handler(ctx):
        started.set()
        for k in range(10_000):
            units.append(k)
            time.sleep(0.02)
            ctx.check()
        return {}

    db, runner = _runner_with(settings, handler)
    runner.start()
    running = runner.submit("test", "long", {})
    queued = runner.submit("test", "waits", {})
    assert started.wait(30)
    with make_client(settings, run_jobs=False) as client:  # the page's Cancel button: it sets the row's flag
        token = csrf(client)
        assert client.post(f"/jobs/{queued}/cancel", data={"csrf": token}).status_code == 303
        assert wait_for_job(client, queued, {"cancelled"}, timeout=5)["finished"]
        assert client.post(f"/jobs/{running}/cancel", data={"csrf": token}).status_code == 303
        job = wait_for_job(client, running, {"cancelled"}, timeout=30)
    runner.stop()
    assert job["finished"] and len(units) < 10_000
    db.dispose()


def test_a_server_restart_resumes_unfinished_jobs_on_their_existing_rows(settings):
    done_units: list[int] = []
    first_run = threading.Event()

    def handler(ctx):  # resumable work: units already done are skipped, as EnhanceJob rows are
        for k in range(20):
            if k in done_units:
                continue
            if k == 5:
                first_run.set()
            time.sleep(0.02)
            ctx.check()
            done_units.append(k)
        return {"units": len(done_units)}

    db, runner = _runner_with(settings, handler)
    runner.start()
    job_id = runner.submit("test", "resumable", {})
    assert first_run.wait(30)
    runner.stop()  # the server stops: the job goes back to the queue, not cancelled
    from photokit.db.models import BackgroundJob

    with db.session() as session:
        assert session.get(BackgroundJob, job_id).status == "queued"
    assert 5 <= len(done_units) < 20

    db2, second = _runner_with(settings, handler)
    second.start()
    with make_client(settings, run_jobs=False) as client:
        job = wait_for_job(client, job_id, {"done"})
    second.stop()
    assert job["result"] == {"units": 20} and sorted(done_units) == list(range(20))  # nothing done twice
    with db.session() as session:
        assert session.query(BackgroundJob).count() == 1
    db.dispose()
    db2.dispose()


@pytest.mark.slow
def test_an_album_restoration_runs_as_a_job_and_shows_before_and_after(settings, tmp_path):
    album = tmp_path / "album"
    album.mkdir()
    shutil.copy(shared_path("data", "faces", "face_recognition", "obama_small.jpg"), album / "obama_small.jpg")
    original = (album / "obama_small.jpg").read_bytes()
    out = tmp_path / "restored"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    from photokit.db import open_database
    from photokit.library.scan import scan_library

    scanned = open_database(settings)
    scan_library(scanned, [str(album)])  # the gallery restores only folders of the library
    scanned.dispose()
    with make_client(settings) as client:
        token = csrf(client)
        refused = client.post("/jobs/restore", data={"path": str(outside), "loss": "mse", "csrf": token})
        assert refused.status_code == 400 and "not inside a folder of your library" in refused.text
        r = client.post("/jobs/restore", data={"path": str(album), "out": str(out), "loss": "mse", "csrf": token})
        assert r.status_code == 303
        job_id = max(j["id"] for j in client.get("/api/jobs").json()["jobs"])
        job = wait_for_job(client, job_id, {"done", "failed"})
        assert job["status"] == "done", job
        assert job["result"]["total"] == 1 and job["result"]["restored"] + job["result"]["skipped"] == 1
        assert job["done"] == 1 and job["total"] == 1
        from photokit.db import open_database
        from photokit.db.models import EnhanceJob

        db = open_database(settings)
        with db.session() as session:
            rows = session.query(EnhanceJob).all()
        assert len(rows) == 1 and rows[0].source_path == str((album / "obama_small.jpg").resolve())
        if rows[0].status == "done":
            assert client.get(f"/restorations/{rows[0].id}").status_code == 200
            assert client.get(f"/media/restoration/{rows[0].id}/after").status_code == 200
        # the same album again: the existing EnhanceJob row is reused, nothing is redone
        client.post("/jobs/restore", data={"path": str(album), "out": str(out), "loss": "mse", "csrf": token})
        again = wait_for_job(client, job_id + 1, {"done", "failed"})
        with db.session() as session:
            assert session.query(EnhanceJob).count() == 1
        if rows[0].status == "done":
            assert again["result"]["already_done"] == 1
        batches = client.get("/jobs").text  # the batch shows on the Jobs page with its counts
        assert 'id="batches"' in batches and rows[0].batch_key[:10] in batches
        db.dispose()
    assert (album / "obama_small.jpg").read_bytes() == original


def test_the_job_reporter_stops_the_work_at_the_next_step_once_cancelled(settings):
    from photokit.db import open_database
    from photokit.db.models import BackgroundJob
    from photokit.web.jobs import JobReporter, JobStopped

    db = open_database(settings)
    with db.session() as session:
        job = BackgroundJob(kind="test", title="t", params={}, status="running", notes=[])
        session.add(job)
        session.flush()
        job_id = job.id
    stop = [False]
    reporter = JobReporter(db, job_id, lambda: stop[0])
    reporter.task_started("photos", "restoring photos", total=4)
    reporter.task_advanced("photos", 1)
    stop[0] = True
    with pytest.raises(JobStopped):  # a KeyboardInterrupt: library code saves its state as on Ctrl-C
        reporter.task_advanced("photos", 1)
    assert issubclass(JobStopped, KeyboardInterrupt)
    with db.session() as session:
        assert session.get(BackgroundJob, job_id).progress_done == 2
    db.dispose()


def test_library_remedies_are_worded_for_the_gallery():
    from photokit.errors import PhotokitError, Remedy
    from photokit.web.hints import error_text

    plain = PhotokitError("person 3 has no faces")
    assert error_text(plain) == "person 3 has no faces"
    missing = PhotokitError(
        "the LPIPS backbone is not installed.", remedy=Remedy.INSTALL_OR_MSE_LOSS, model="lpips-alex"
    )
    text = error_text(missing)
    assert text.startswith("the LPIPS backbone is not installed; ")
    assert "lpips-alex" in text and "mse" in text and "--loss" not in text
