"""Album restoration on a real local Ray cluster (2 CPUs, real worker processes) over a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from photokit.db import open_database
from photokit.db.models import EnhanceJob
from photokit.distributed.album import restore_album_on_ray
from photokit.reporting import RecordingReporter
from photokit.restore.batch import queue_album, run_batch
from photokit.settings import Settings
from tests.conftest import ROOT, shared_path
from tests.ray_helpers import TinyAlbumFactory, tiny_enhancer
from tests.test_prior_build_all import named_library, tiny_file  # noqa: F401 - fixtures

try:
    import ray
except ImportError:  # in CI (the `test` extra has Ray) this must fail, not skip
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise
    pytest.skip("Ray is not installed: pip install 'photokit[ray]'", allow_module_level=True)

PHOTOS = ["obama_small.jpg", "obama-240p.jpg", "biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg"]


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for the module: 2 CPUs, no dashboard, no usage statistics, the checkout importable."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def album(tmp_path_factory):
    """12 photos (6 real pictures, each twice) in an album folder."""
    folder = tmp_path_factory.mktemp("ray_album") / "Album"
    folder.mkdir()
    for i in range(12):
        shutil.copy(shared_path("data", "faces", "face_recognition", PHOTOS[i % 6]), folder / f"photo{i + 1:02d}.jpg")
    return folder


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p).convert("RGB"), dtype=np.int16) for p in sorted(folder.iterdir())}


def _restore_on_ray(pg_url, album, out, signals, hold_name=None, lease_s=30.0):
    db = open_database(Settings.load(db_url=pg_url))
    enhancer_options = tiny_enhancer(out).options
    plan = queue_album(db, [album], enhancer_options)
    factory = TinyAlbumFactory(out, plan.targets, signals, hold_name)
    reporter = RecordingReporter()
    summary = restore_album_on_ray(db, plan, enhancer_options, factory, workers=2, reporter=reporter, lease_s=lease_s)
    return db, plan, summary, reporter


def test_two_ray_workers_restore_an_album_exactly_as_one_process_does(ray_cluster, pg_url, album, tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in each Ray worker (one CPU each), so the float sums run in the same order
    try:
        local_db = open_database(Settings.load(db_url=f"sqlite:///{tmp_path / 'local.db'}"))
        local = run_batch(local_db, [album], tiny_enhancer(tmp_path / "local"))
    finally:
        torch.set_num_threads(threads)
    signals = tmp_path / "signals"
    signals.mkdir()
    db, plan, summary, reporter = _restore_on_ray(pg_url, album, tmp_path / "ray", signals)

    assert len(local.done) == len(summary.done) == 12 and not summary.failed
    expected, got = _outputs(tmp_path / "local"), _outputs(tmp_path / "ray")
    assert sorted(got) == sorted(expected) == [f"photo{i:02d}_restored.jpg" for i in range(1, 13)]
    for name in expected:
        assert expected[name].shape == got[name].shape
        assert np.abs(expected[name] - got[name]).max() <= 1, name  # same restoration, photo for photo
    with db.session() as session:
        rows = session.scalars(select(EnhanceJob).where(EnhanceJob.batch_key == plan.key)).all()
    assert len(rows) == 12 and {r.status for r in rows} == {"done"} and {r.attempts for r in rows} == {1}
    assert len({r.worker for r in rows}) == 2  # both workers took part
    assert reporter.progress["ray-batch"] == (12, 12) and "ray-batch" in reporter.finished
    db.dispose()


def test_a_worker_killed_mid_job_loses_nothing_and_does_nothing_twice(ray_cluster, pg_url, album, tmp_path):
    signals, out = tmp_path / "signals", tmp_path / "ray"
    signals.mkdir()
    (signals / "hold").touch()
    held = "photo03.jpg"
    killed: list[int] = []

    def kill_the_worker_holding_photo03() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            started = list(signals.glob(f"{held}.*"))
            if started:
                pid = int(started[0].suffix[1:])
                killed.append(pid)
                (signals / "hold").unlink()  # whoever redoes the job must not stall
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_worker_holding_photo03, daemon=True)
    killer.start()
    db, _plan, summary, reporter = _restore_on_ray(pg_url, album, out, signals, hold_name=held, lease_s=3.0)
    killer.join(timeout=5)

    assert killed, "no worker started the held photo"
    assert len(summary.done) == 12 and not summary.failed
    assert sorted(p.name for p in out.iterdir()) == [f"photo{i:02d}_restored.jpg" for i in range(1, 13)]  # no temp
    with db.session() as session:
        rows = {Path(r.source_path).name: r for r in session.scalars(select(EnhanceJob))}
    assert len(rows) == 12 and {r.status for r in rows.values()} == {"done"}
    assert rows[held].attempts == 2 and str(killed[0]) not in rows[held].worker  # finished by the survivor
    assert all(r.attempts == 1 for name, r in rows.items() if name != held)
    assert len(list(signals.glob(f"{held}.*"))) == 2  # started twice, finished once
    assert any("died" in message for _level, message in reporter.notes)
    db.dispose()


def _faces_per_photo(db) -> dict[str, list[list[float]]]:
    from photokit.db.models import Face, PhotoLocation

    with db.session() as session:
        rows = session.execute(select(PhotoLocation.path, Face.box).join(Face, Face.photo_id == PhotoLocation.photo_id))
        found: dict[str, list] = {}
        for path, box in rows:
            found.setdefault(Path(path).name, []).append(box)
    return {name: sorted(boxes) for name, boxes in found.items()}


def test_scan_with_ray_finds_the_faces_one_process_finds(ray_cluster, pg_url, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from photokit.cli.app import app
    from tests.conftest import scan_faces_library

    album = tmp_path / "Album"
    album.mkdir()
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "two_people.jpg"):
        shutil.copy(shared_path("data", "faces", "face_recognition", name), album / name)
    local = scan_faces_library(tmp_path / "local", [album])
    monkeypatch.setenv("PHOTOKIT_DB_URL", pg_url)
    result = CliRunner().invoke(app, ["scan", str(album), "--ray", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    faces = json.loads(result.stdout)["faces"]
    assert faces["done"] == 4 and faces["workers"] == 2 and faces["faces"] == local.summary.faces
    assert set(faces) == set(local.summary.to_json())  # the same summary (FaceRunSummary) as one process gives
    db = open_database(Settings.load(db_url=pg_url))
    expected, got = _faces_per_photo(local.db), _faces_per_photo(db)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert np.allclose(np.array(got[name]), np.array(expected[name]), atol=1.0), name
    with db.session() as session:
        rows = session.scalars(select(EnhanceJob)).all()
    assert len(rows) == 4 and {r.kind for r in rows} == {"face_detect"} and {r.status for r in rows} == {"done"}
    assert faces["clustering"] == local.summary.clustering.to_json()
    db.dispose()
    local.db.dispose()


def test_enhance_command_with_ray_restores_an_album(ray_cluster, pg_url, settings, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from photokit.cli.app import app
    from tests.test_enhance_cli import install_random_generator

    monkeypatch.setenv("PHOTOKIT_DB_URL", pg_url)
    install_random_generator(settings)
    album = tmp_path / "Album"
    album.mkdir()
    for name in ("obama_small.jpg", "biden.jpg"):  # faces under the 128 px generator's size, so they are projected
        with Image.open(shared_path("data", "faces", "face_recognition", name)) as im:
            im.resize((im.width // 4, im.height // 4), Image.LANCZOS).save(album / name, quality=95)
    out = tmp_path / "out"
    args = ["enhance", str(album), "--loss", "mse", "--steps", "2", "--out", str(out), "--device", "cpu", "--json"]
    report = tmp_path / "report.html"
    result = CliRunner().invoke(app, [*args, "--ray", "--workers", "2", "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["restored"] == 2 and data["failed"] == 0
    projected = sum(face["status"] in ("restored", "rejected") for r in data["reports"] for face in r["faces"])
    assert projected == 2 and report.read_text().count("data:image/png") == 2 * projected  # the crops came back
    assert sorted(p.name for p in out.iterdir()) == ["biden_restored.jpg", "obama_small_restored.jpg"]
    assert all(any("random weights" in w for w in report["warnings"]) for report in data["reports"])
    again = CliRunner().invoke(app, [*args, "--ray"])  # the same batch: nothing left to do
    assert again.exit_code == 0 and json.loads(again.stdout)["already_done"] == 2
    # Workers that cannot load a model (LPIPS's backbone is not installed) say so in one line.
    lpips = [a if a != "mse" else "lpips" for a in args]
    failed = CliRunner().invoke(app, [*lpips, "--out", str(tmp_path / "out2"), "--ray"])
    assert failed.exit_code == 2, failed.output
    lines = failed.stderr.strip().splitlines()
    assert lines[-1].startswith("error: the Ray workers could not start") and "lpips" in lines[-1].lower()


class InterruptAfterFirstPhoto(RecordingReporter):
    """Ctrl-C in the submitting terminal right after the first photo is reported."""

    def task_advanced(self, key: str, advance: float = 1, status: str | None = None) -> None:
        super().task_advanced(key, advance, status)
        raise KeyboardInterrupt


def test_ctrl_c_stops_the_workers_gives_their_jobs_back_and_the_same_command_resumes(
    ray_cluster, pg_url, album, tmp_path
):
    signals, out = tmp_path / "signals", tmp_path / "ray"
    signals.mkdir()
    db = open_database(Settings.load(db_url=pg_url))
    options = tiny_enhancer(out).options
    plan = queue_album(db, [album], options)
    factory = TinyAlbumFactory(out, plan.targets, signals)
    with pytest.raises(KeyboardInterrupt):
        restore_album_on_ray(db, plan, options, factory, workers=2, reporter=InterruptAfterFirstPhoto())
    with db.session() as session:
        statuses = [r.status for r in session.scalars(select(EnhanceJob).where(EnhanceJob.batch_key == plan.key))]
    assert "running" not in statuses and 1 <= statuses.count("done") < 12  # nothing left held by a dead worker
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no half-written file
    summary = restore_album_on_ray(db, queue_album(db, [album], options), options, factory, workers=2)
    assert len(summary.already_done) + len(summary.done) == 12 and not summary.failed
    assert sorted(p.name for p in out.iterdir()) == [f"photo{i:02d}_restored.jpg" for i in range(1, 13)]
    db.dispose()


def test_prior_build_all_on_ray_builds_each_prior_once(ray_cluster, named_library, tiny_file, tmp_path):  # noqa: F811
    import json

    from typer.testing import CliRunner

    from photokit.cli.app import app
    from photokit.prior.meta import has_prior
    from tests.test_prior_build_all import build_args, prior_jobs
    from tests.web_support import copy_library

    settings = copy_library(named_library, tmp_path / "home")
    env = {"PHOTOKIT_HOME": str(settings.home)}
    result = CliRunner().invoke(app, [*build_args(settings, tiny_file), "--ray", "--workers", "2"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert sorted(item["name"] for item in summary["built"]) == ["Ann", "Bob"] and not summary["failed"]
    assert [item["name"] for item in summary["skipped"]] == ["Cy"]
    assert all(has_prior(settings, item["person_id"]) for item in summary["built"])
    jobs = prior_jobs(settings).values()
    assert {job.status for job in jobs} == {"done"} and {job.attempts for job in jobs} == {1}
    assert len({job.worker for job in jobs}) == 2  # one build per Ray worker
    assert "2 priors to build" in result.stderr and "Ray cluster" in result.stderr
