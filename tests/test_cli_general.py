"""General CLI behaviour: --version, help, `db` commands, options that choose where data lives."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from photokit import __version__
from photokit.cli.app import app
from photokit.db import migrate, open_database
from tests.conftest import sqlite_only

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"photokit {__version__}"


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("scan", "status", "db"):
        assert command in result.stdout


def test_unknown_command_exits_2():
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_db_current_and_upgrade(settings):
    fresh = json.loads(runner.invoke(app, ["db", "current", "--json"]).stdout)
    assert fresh["current"] is None and fresh["head"]

    result = runner.invoke(app, ["db", "upgrade", "--json"])
    assert result.exit_code == 0, result.output
    upgraded = json.loads(result.stdout)
    assert upgraded["before"] is None and upgraded["current"] == fresh["head"]

    again = runner.invoke(app, ["db", "current"])
    assert again.exit_code == 0 and "up to date" in again.stdout


def test_db_upgrade_to_an_older_revision_then_head(settings):
    assert runner.invoke(app, ["db", "upgrade", "0001"]).exit_code == 0
    behind = runner.invoke(app, ["db", "current"])
    assert "behind" in behind.stdout and behind.stdout.startswith("0001")
    db = open_database(settings)  # commands migrate automatically
    try:
        assert db.current_revision() == migrate.head_revision(db.engine)
    finally:
        db.dispose()


def test_db_upgrade_unknown_revision_is_a_one_line_error(settings):
    result = runner.invoke(app, ["db", "upgrade", "nonsense"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


@sqlite_only("--home picks the SQLite file; PHOTOKIT_DB_URL overrides it")
def test_home_option_chooses_the_database(tmp_path):
    home = tmp_path / "elsewhere"
    result = runner.invoke(app, ["--home", str(home), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (home / "library.db").is_file()


def test_database_from_a_newer_photokit_is_a_one_line_error(settings):
    db = open_database(settings)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    db.dispose()
    result = runner.invoke(app, ["people", "list"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and "newer photokit" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@sqlite_only("the error comes from creating the SQLite file under --home")
def test_filesystem_errors_are_one_line(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = runner.invoke(app, ["--home", str(not_a_folder / "home"), "people", "list"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) == 1


def test_database_password_is_never_printed():
    from photokit.db.session import display_url

    shown = display_url("postgresql://alice:s3cret@db.example/photos")
    assert "s3cret" not in shown and "alice" in shown and "db.example/photos" in shown
