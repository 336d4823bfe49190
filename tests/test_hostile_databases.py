"""Hostile database settings: another program's SQLite file, impossible URLs, a newer database
(issue 16, items 8, 11 and 13)."""

from __future__ import annotations

import sqlite3

import pytest
from typer.testing import CliRunner

from photokit.cli.app import app

runner = CliRunner()


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_another_programs_sqlite_file_is_refused_untouched(tmp_path):
    other = tmp_path / "notes.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    for command in (["status"], ["scan", str(tmp_path), "--no-faces"], ["db", "current"], ["db", "upgrade"]):
        result = runner.invoke(app, ["--db-url", f"sqlite:///{other}", *command])
        assert_one_line_error(result, "not a photokit library", "notes")
    assert other.read_bytes() == before  # no WAL switch, no tables added
    assert not (tmp_path / "notes.db-wal").exists()
    conn = sqlite3.connect(other)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["notes"]
    conn.close()


def test_an_empty_file_and_a_photokit_library_still_open(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    assert runner.invoke(app, ["--db-url", f"sqlite:///{empty}", "status"]).exit_code == 0
    assert runner.invoke(app, ["--db-url", f"sqlite:///{empty}", "status"]).exit_code == 0  # now photokit's


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite://", "in-memory"),
        ("not a url at all", "not a database URL"),
        ("postgresql+pg8000://user@localhost/photos", "driver 'pg8000'"),
        ("nosuchdb://x/y", "nosuchdb://x/y"),
    ],
)
def test_impossible_database_urls_are_one_line_errors(url, needle):
    assert_one_line_error(runner.invoke(app, ["--db-url", url, "status"]), needle)


def test_db_current_on_a_newer_database_says_to_upgrade_photokit(tmp_path):
    url = f"sqlite:///{tmp_path / 'lib.db'}"
    assert runner.invoke(app, ["--db-url", url, "status"]).exit_code == 0
    conn = sqlite3.connect(tmp_path / "lib.db")
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    result = runner.invoke(app, ["--db-url", url, "db", "current"])
    assert result.exit_code == 0, result.output
    assert "newer than this photokit" in result.stdout and "run `photokit db upgrade`" not in result.stdout
    assert_one_line_error(runner.invoke(app, ["--db-url", url, "db", "upgrade"]), "upgrade photokit")
