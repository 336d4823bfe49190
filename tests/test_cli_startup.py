"""Quick commands must not pay for torch (~2 s), Alembic (~0.3 s), SQLAlchemy (~0.2 s) or numpy (~0.07 s)
at start-up (issue 14).

Behaviour, not timing: ``python -X importtime`` lists every module a command imported; the figures in
seconds are measured by ``benchmarks/bench_startup.py``. On a current SQLite library ``status`` and
``people list`` read with stdlib sqlite3 (``photokit.db.reader``); tests/test_read_path.py checks that they
read the same numbers as the ORM.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import sqlite_only

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "alembic")
DATABASE_LIBRARIES = ("sqlalchemy", "numpy")


def imported_modules(*args: str) -> set[str]:
    """Top-level names of every module ``photokit ARGS`` imported (from ``-X importtime``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "photokit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return {name.split(".")[0] for name in names}


def test_help_imports_neither_torch_nor_alembic_nor_sqlalchemy():
    modules = imported_modules("--help")
    assert "typer" in modules  # the parse worked: the command really ran
    assert not modules & {*HEAVY, "sqlalchemy"}


@sqlite_only("the stdlib read path is for SQLite libraries")
def test_first_status_migrates_then_later_ones_read_with_stdlib_sqlite():
    first = imported_modules("status", "--json")
    assert "alembic" in first and "sqlalchemy" in first  # a new library is created by running the migrations
    assert "torch" not in first
    again = imported_modules("status", "--json")
    assert "sqlite3" in again  # it did read the database
    assert not again & {*HEAVY, *DATABASE_LIBRARIES}


@sqlite_only("the stdlib read path is for SQLite libraries")
@pytest.mark.parametrize("args", [("people", "list"), ("models", "list"), ("prior", "list")])
def test_listing_commands_skip_torch_alembic_sqlalchemy_and_numpy(args):
    imported_modules("db", "upgrade")
    modules = imported_modules(*args)
    assert "photokit" in modules
    assert not modules & {*HEAVY, *DATABASE_LIBRARIES}


def _add_person(name: str) -> None:
    from photokit.db import open_database
    from photokit.db.models import Person
    from photokit.settings import Settings

    db = open_database(Settings.load())
    with db.session() as session:
        session.add(Person(name=name))
    db.dispose()


@sqlite_only("the stdlib read path is for SQLite libraries")
def test_people_list_recomputes_suggestions_only_when_the_library_changed():
    """The pending-suggestions note comes from the cache while its token is current (no numpy, no ORM)."""
    _add_person("Ann")
    assert "numpy" in imported_modules("people", "list")  # no cache yet: suggestions are computed and kept
    assert not imported_modules("people", "list") & {*HEAVY, *DATABASE_LIBRARIES}  # answered from the cache
    imported_modules("people", "name", "Ann", "Anna")  # a writer changes the library's state...
    assert "numpy" in imported_modules("people", "list")  # ...so the cached answer no longer counts
    assert "numpy" not in imported_modules("people", "list")


def test_database_on_another_server_is_read_through_sqlalchemy(tmp_path, monkeypatch):
    """Only a plain sqlite:/// URL is read with sqlite3; any other goes through SQLAlchemy (and migrates)."""
    monkeypatch.setenv("PHOTOKIT_DB_URL", f"sqlite+pysqlite:///{tmp_path / 'lib.db'}")
    imported_modules("db", "upgrade")
    assert "sqlalchemy" in imported_modules("status", "--json")


def test_script_head_matches_alembic(tmp_path):
    """The text-only head (what lets start-up skip Alembic) agrees with Alembic's own answer."""
    from sqlalchemy import create_engine

    from photokit.db import migrate

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert migrate.script_head() == migrate.head_revision(engine) is not None
    assert not migrate.is_current(engine)
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    migrate.downgrade(engine, "-1")
    assert not migrate.is_current(engine)
    engine.dispose()
