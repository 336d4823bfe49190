"""Two `photokit enhance` processes on one album share it through job leases: every photo is restored
exactly once between them, and a killed one's photo is redone after its lease (SQLite here; PostgreSQL on
the `db` pass of `make test`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from photokit.db import open_database
from photokit.db.models import EnhanceJob
from tests.conftest import ROOT, shared_path

PHOTOS = ["obama_small.jpg", "obama-240p.jpg", "biden.jpg", "obama.jpg"]


def _album(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        shutil.copy(shared_path("data", "faces", "face_recognition", PHOTOS[i % 4]), folder / f"photo{i + 1:02d}.jpg")
    return folder


def _start(db_url: str, album: Path, out: Path, signals: Path, *flags: str, lease_s: float = 60) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PHOTOKIT_JOB_LEASE_S=str(lease_s), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.batch_worker", db_url, str(album), str(out), str(signals), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip


def _summary(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def open_database_url(db_url: str):
    from photokit.settings import Settings

    return open_database(Settings.load(db_url=db_url))


def _jobs(db_url: str) -> dict[str, EnhanceJob]:
    db = open_database_url(db_url)
    with db.session() as session:
        rows = {Path(r.source_path).name: r for r in session.scalars(select(EnhanceJob))}
    db.dispose()
    return rows


def test_two_processes_started_together_restore_each_photo_once(settings, tmp_path):
    album, out, signals = _album(tmp_path / "Album", 8), tmp_path / "out", tmp_path / "signals"
    signals.mkdir()
    open_database_url(settings.db_url).dispose()  # the library exists before both start
    procs = [_start(settings.db_url, album, out, signals, "--meet") for _ in range(2)]
    first, second = (_summary(p) for p in procs)

    assert first["restored"] >= 1 and second["restored"] >= 1  # both took part
    assert first["restored"] + second["restored"] == 8 and not first["failed"] and not second["failed"]
    for summary in (first, second):  # each one accounts for the whole album
        assert summary["restored"] + summary["already_done"] == summary["total"] == 8
    restored = [Path(r["source"]).name for s in (first, second) for r in s["reports"]]
    assert sorted(restored) == [f"photo{i:02d}.jpg" for i in range(1, 9)]  # each photo once, by one of them
    assert sorted(p.name for p in out.iterdir()) == [f"photo{i:02d}_restored.jpg" for i in range(1, 9)]
    started = sorted(p.name.rsplit(".", 1)[0] for p in signals.iterdir())
    assert started == [f"photo{i:02d}.jpg" for i in range(1, 9)]  # none even started twice
    rows = _jobs(settings.db_url)
    assert (
        len(rows) == 8 and {r.status for r in rows.values()} == {"done"} and {r.attempts for r in rows.values()} == {1}
    )
    assert len({r.worker for r in rows.values()}) == 2


def test_a_killed_process_photo_is_redone_after_its_lease_by_the_next(settings, tmp_path):
    album, out, signals = _album(tmp_path / "Album", 6), tmp_path / "out", tmp_path / "signals"
    signals.mkdir()
    (signals / "hold").touch()
    held = "photo03.jpg"
    victim = _start(settings.db_url, album, out, signals, "--hold", held, lease_s=2)
    deadline = time.monotonic() + 300
    while not list(signals.glob(f"{held}.*")) and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.05)
    assert list(signals.glob(f"{held}.*")), victim.communicate()[1][-3000:]
    os.kill(victim.pid, signal.SIGKILL)  # mid-photo: photo03 is claimed, leased, not written
    victim.wait()
    (signals / "hold").unlink()
    assert sorted(p.name for p in out.iterdir()) == ["photo01_restored.jpg", "photo02_restored.jpg"]

    summary = _summary(_start(settings.db_url, album, out, signals, lease_s=2))
    assert summary["already_done"] == 2 and summary["restored"] == 4 and not summary["failed"]
    assert sorted(Path(r["source"]).name for r in summary["reports"]) == [f"photo{i:02d}.jpg" for i in range(3, 7)]
    assert sorted(p.name for p in out.iterdir()) == [f"photo{i:02d}_restored.jpg" for i in range(1, 7)]  # no _1
    rows = _jobs(settings.db_url)
    assert {r.status for r in rows.values()} == {"done"}
    assert rows[held].attempts == 2 and str(victim.pid) not in rows[held].worker  # redone by the second one
    assert all(r.attempts == 1 for name, r in rows.items() if name != held)
