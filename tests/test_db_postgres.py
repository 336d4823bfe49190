"""PostgreSQL specifics: the driver, one-line connection errors, migrations both ways on a real server."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.db import migrate, open_database
from photokit.db.session import create_db_engine, engine_url
from photokit.errors import DatabaseError
from photokit.settings import Settings
from tests.pg_server import free_port

runner = CliRunner()


def test_plain_postgresql_urls_use_psycopg_3():
    assert engine_url("postgresql://a:b@host/db").drivername == "postgresql+psycopg"
    assert engine_url("postgresql+psycopg://host/db").drivername == "postgresql+psycopg"
    assert engine_url("sqlite:///x.db").drivername == "sqlite"


def test_missing_driver_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(DatabaseError, match=r"pip install 'photokit\[postgres\]'"):
        create_db_engine("postgresql://u:secret@127.0.0.1/x")


def test_unreachable_server_is_a_one_line_error_without_the_password(monkeypatch):
    monkeypatch.setenv("PHOTOKIT_DB_URL", f"postgresql://alice:s3cret@127.0.0.1:{free_port()}/photos")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "127.0.0.1" in lines[0]
    assert "s3cret" not in result.stderr


def test_every_migration_goes_down_and_up_again_on_postgres(pg_url):
    engine = create_db_engine(pg_url)
    migrate.upgrade(engine)
    head = migrate.head_revision(engine)
    assert migrate.current_revision(engine) == head
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == head
    engine.dispose()
    db = open_database(Settings.load(db_url=pg_url))
    assert len(db.library_id()) == 32
    db.dispose()


def test_status_says_face_search_is_in_process_and_whether_the_server_has_pgvector(pg_url, monkeypatch):
    import json

    from sqlalchemy import text

    db = open_database(Settings.load(db_url=pg_url))
    with db.session() as session:  # what the server itself says (pgvector is not in Debian's mirror here)
        available = session.scalar(text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"))
    monkeypatch.setenv("PHOTOKIT_DB_URL", pg_url)
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    search = json.loads(result.stdout)["database"]["face_search"]
    assert search == {"index": "in-process (faiss)", "pgvector": "available" if available else "not on this server"}
    with db.session() as session:  # read-only: status created no extension
        assert session.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")) == 0
    db.dispose()
    plain = runner.invoke(app, ["status"])
    assert "face search in-process (faiss); pgvector" in plain.stdout


def test_status_on_sqlite_reports_the_in_process_index_only(tmp_path):
    import json

    result = runner.invoke(app, ["--db-url", f"sqlite:///{tmp_path / 'lib.db'}", "status", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["database"]["face_search"] == {
        "index": "in-process (faiss)"
    }
