"""Concurrent photokit commands on one real SQLite file, in real processes: they wait for each other and
succeed, never die mid-way (issue 16, item 4)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from photokit.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _album(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)).save(folder / f"p{i:04d}.png")
    return folder


def _start(*args: str, home: Path) -> subprocess.Popen:
    env = dict(os.environ, PHOTOKIT_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "photokit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, (proc.args, proc.returncode, err)
    return out, err


def test_two_scans_of_the_same_new_folder_both_succeed(tmp_path):
    album = _album(tmp_path / "album", 600)
    home = tmp_path / "home"
    assert runner.invoke(app, ["--home", str(home), "status"]).exit_code == 0  # the library exists first
    scans = [_start("scan", str(album), "--no-faces", "--json", home=home) for _ in range(2)]
    summaries = [json.loads(_finish(proc)[0]) for proc in scans]
    assert sum(s["new"] for s in summaries) == 600  # every file indexed once, by whichever scan got it first
    assert all(s["new"] + s["unchanged"] == 600 for s in summaries), summaries
    conn = sqlite3.connect(home / "library.db")
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM photo_locations").fetchone() == (600, 600)
    conn.close()


def test_a_read_then_write_command_waits_for_another_writer(tmp_path, monkeypatch):
    """``people name`` reads (resolves the person) then writes. A plain BEGIN would fail at once with
    SQLITE_BUSY once another process has written meanwhile; BEGIN IMMEDIATE waits for the lock instead."""
    home = tmp_path / "home"
    monkeypatch.setenv("PHOTOKIT_HOME", str(home))
    assert runner.invoke(app, ["status"]).exit_code == 0
    conn = sqlite3.connect(home / "library.db")
    conn.execute("INSERT INTO people (name, ignored, created_at) VALUES (NULL, 0, '2026-01-01')")
    conn.commit()
    conn.close()
    blocker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(home / 'library.db')!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute(\"INSERT INTO people (name, ignored, created_at) VALUES ('other', 0, '2026-01-01')\")\n"
            "print('locked', flush=True)\n"
            "time.sleep(3)\n"
            "c.execute('COMMIT')\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert blocker.stdout.readline().strip() == "locked"
    result = runner.invoke(app, ["people", "name", "1", "Ann"])
    blocker.wait(timeout=60)
    assert result.exit_code == 0, (result.output, result.exception)
    conn = sqlite3.connect(home / "library.db")
    assert conn.execute("SELECT name FROM people ORDER BY id").fetchall() == [("Ann",), ("other",)]
    conn.close()


def test_people_commands_during_a_scan_all_succeed(tmp_path):
    album = _album(tmp_path / "album", 800)
    home = tmp_path / "home"
    assert runner.invoke(app, ["--home", str(home), "status"]).exit_code == 0
    conn = sqlite3.connect(home / "library.db")
    conn.execute("INSERT INTO people (name, ignored, created_at) VALUES (NULL, 0, '2026-01-01')")
    conn.commit()
    conn.close()
    scan = _start("scan", str(album), "--no-faces", home=home)
    namers = [_start("people", "name", "1", f"Name {i}", home=home) for i in range(6)]
    for proc in namers:
        _finish(proc)
    _finish(scan)
    conn = sqlite3.connect(home / "library.db")
    assert conn.execute("SELECT name FROM people").fetchone()[0].startswith("Name ")
    assert conn.execute("SELECT COUNT(*) FROM photo_locations").fetchone()[0] == 800
    conn.close()
