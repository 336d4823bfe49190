"""``photokit scan`` / ``photokit status`` through Typer's runner: JSON on stdout, exit codes, errors."""

from __future__ import annotations

import json
import sqlite3
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.errors import PhotokitError
from tests.conftest import sqlite_only

runner = CliRunner()


def write_jpeg(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")
    return path


@pytest.fixture
def album(tmp_path) -> Path:
    root = tmp_path / "album"
    for i in range(4):
        write_jpeg(root / f"p{i}.jpg", seed=i)
    (root / "notes.png").write_text("not a picture")
    return root


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr  # progress bars may precede it
    err = errors[0]
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in err, err


def test_scan_json_is_the_only_thing_on_stdout(album):
    result = invoke("scan", str(album), "--no-faces", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["new"], doc["skipped"], doc["files"]) == (4, {"not_image": 1}, 5)
    assert "faces" not in doc

    again = json.loads(invoke("scan", str(album), "--no-faces", "--json").stdout)
    assert (again["new"], again["unchanged"]) == (0, 4)


def test_scan_human_output_summarises_counts(album):
    result = invoke("scan", str(album), "--no-faces")
    assert result.exit_code == 0, result.output
    assert "4 new" in result.stdout and "1 skipped (1 not_image)" in result.stdout


def test_status_json_counts_what_scan_indexed(album, settings):
    assert invoke("scan", str(album), "--no-faces", "--json").exit_code == 0
    (album / "p0.jpg").unlink()
    assert invoke("scan", str(album), "--no-faces", "--json").exit_code == 0
    (settings.priors_dir / "person_1" / "work").mkdir(parents=True)  # an unfinished prior build

    result = invoke("status", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    library = status["library"]
    assert library["photos"] == 4 and library["photos_present"] == 3
    assert library["locations"] == {"present": 3, "missing": 1, "moved": 0}
    assert library["skipped"] == {"not_image": 1}
    assert library["last_scan"]["summary"]["missing"] == 1 and library["last_scan"]["finished_at"]
    assert status["faces"]["photos"]["pending"] == 4 and status["faces"]["faces"] == 0
    assert status["people"] == {"named": 0, "unnamed": 0, "ignored": 0}
    assert status["priors"] == 0  # unfinished builds are not priors
    from photokit.store.models import ModelStore

    known = len(ModelStore(settings).list())  # the isolated test model store is empty
    assert known >= 4
    assert status["models"] == {"known": known, "installed": 0, "installed_names": [], "dir": str(settings.models_dir)}

    human = invoke("status")
    assert human.exit_code == 0 and "4 photos" in human.stdout and "1 missing" in human.stdout


def test_status_of_an_empty_library(settings):
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert "never" in result.stdout and "0 photos" in result.stdout


def test_scan_calls_the_faces_pipeline_and_reports_it(album, monkeypatch):
    calls = []

    def process_pending_photos(db, device="auto", detector="mtcnn", reporter=None, descriptor=None):
        calls.append({"device": device, "detector": detector, "reporter": reporter, "descriptor": descriptor})
        return types.SimpleNamespace(to_json=lambda: {"photos": 4, "faces": 0})

    fake = types.ModuleType("photokit.faces.pipeline")
    fake.process_pending_photos = process_pending_photos
    monkeypatch.setitem(sys.modules, "photokit.faces.pipeline", fake)

    result = invoke("scan", str(album), "--json", "--device", "cpu", "--detector", "hog")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["faces"] == {"photos": 4, "faces": 0}
    assert calls and calls[0]["device"] == "cpu" and calls[0]["detector"] == "hog"
    assert calls[0]["reporter"].enabled is False  # --json keeps the terminal quiet
    assert calls[0]["descriptor"] is None  # no --descriptor: the library keeps its kind
    assert invoke("scan", str(album), "--json", "--descriptor", "facenet512").exit_code == 0
    assert calls[1]["descriptor"] == "facenet512"
    unknown = invoke("scan", str(album), "--descriptor", "arcface")  # a usage error, like any unknown choice
    assert unknown.exit_code == 2 and "arcface" in unknown.output and len(calls) == 2


def test_faces_failure_keeps_the_index_prints_summary_and_exits_2(album, monkeypatch):
    def process_pending_photos(db, **kwargs):
        raise PhotokitError("face models are not installed")

    fake = types.ModuleType("photokit.faces.pipeline")
    fake.process_pending_photos = process_pending_photos
    monkeypatch.setitem(sys.modules, "photokit.faces.pipeline", fake)

    result = invoke("scan", str(album), "--json")
    assert_one_line_error(result, "face models are not installed")
    doc = json.loads(result.stdout)
    assert doc["new"] == 4 and doc["faces"] == {"error": "face models are not installed"}


def test_scan_without_a_faces_module_says_so(album, monkeypatch):
    monkeypatch.setitem(sys.modules, "photokit.faces.pipeline", None)  # as if it were not installed
    assert_one_line_error(invoke("scan", str(album)), "--no-faces")


def test_missing_path_is_a_one_line_error_and_touches_no_database(tmp_path, settings):
    result = invoke("scan", str(tmp_path / "nowhere"), "--no-faces")
    assert_one_line_error(result, "path not found", "nowhere")
    assert not (settings.home / "library.db").exists()


@sqlite_only("a damaged library.db file")
@pytest.mark.parametrize("command", [["status"], ["scan", "--no-faces"], ["db", "current"], ["db", "upgrade"]])
def test_unreadable_database_is_a_one_line_error(album, settings, command):
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "library.db").write_bytes(b"this is not an SQLite database" * 100)
    args = command + ([str(album)] if command[0] == "scan" else [])
    assert_one_line_error(invoke(*args), "library.db")


@sqlite_only("SQLite file locking (PostgreSQL has row locks: tests/test_jobs_queue.py)")
def test_locked_database_is_a_one_line_error(album, settings, monkeypatch):
    assert invoke("status").exit_code == 0  # creates and migrates the database
    monkeypatch.setattr("photokit.db.session.BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(settings.home / "library.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = invoke("scan", str(album), "--no-faces")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_one_line_error(result, "locked")
    assert invoke("scan", str(album), "--no-faces").exit_code == 0  # fine once the other process is done


def test_bad_device_choice_is_rejected(album):
    result = invoke("scan", str(album), "--device", "tpu")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_ctrl_c_keeps_committed_work_and_exits_130(album, monkeypatch):
    from photokit.library import images

    probe = images.probe_image
    seen = []

    def interrupting(path):
        seen.append(path)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return probe(path)

    monkeypatch.setattr(images, "probe_image", interrupting)
    result = invoke("scan", str(album), "--no-faces", "--json")
    assert result.exit_code == 130
    assert "run the same command again" in result.stderr and "Traceback" not in result.output
    monkeypatch.setattr(images, "probe_image", probe)
    status = json.loads(invoke("status", "--json").stdout)
    assert status["library"]["last_scan"]["summary"]["interrupted"] is True
    resumed = json.loads(invoke("scan", str(album), "--no-faces", "--json").stdout)
    assert resumed["new"] + resumed["unchanged"] == 4 and resumed["interrupted"] is False
