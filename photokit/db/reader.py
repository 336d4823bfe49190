"""Read-only queries written once as SQL text, run by stdlib ``sqlite3`` or by SQLAlchemy.

``photokit status`` and ``people list`` must start in <= 0.4 s; importing SQLAlchemy and the ORM models
costs ~0.15-0.3 s of that on its own. So their queries are plain, portable SQL (``:name`` parameters, which
both ``sqlite3`` and SQLAlchemy's ``text()`` accept) run through a :class:`SqlReader`:

* :class:`SqliteReader`: stdlib ``sqlite3`` on the default SQLite library, used when its schema is already
  current (read from ``alembic_version`` and compared with :func:`migrate.script_head`, as ``open_database``
  does);
* :class:`SessionReader`: an SQLAlchemy session, for PostgreSQL, for a library that must be created or
  migrated first (:func:`read_library` then falls back to ``open_database``), and for ORM code that wants
  the same numbers inside its own transaction.

Both read one snapshot (a single read transaction), so numbers that belong together agree even while
another process writes. This module imports no SQLAlchemy (checked by ``tests/test_cli_startup.py``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from photokit.db.migrate import REVISION_SQL, script_head
from photokit.settings import Settings

BUSY_TIMEOUT_S = 10.0
LIBRARY_ID_SQL = "SELECT value FROM library_info WHERE key = 'library_id'"
_SQLITE_PREFIX = "sqlite:///"


class SqlReader(Protocol):
    """Runs read-only SQL text; ``dialect`` is 'sqlite' or 'postgresql' (for the few dialect-only questions)."""

    dialect: str

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]: ...


def scalar(reader: SqlReader, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    """The first column of the first row (None when there is no row)."""
    found = reader.rows(sql, params)
    return found[0][0] if found else None


def library_id(reader: SqlReader) -> str | None:
    """This library's UUID (made by migration 0004); None in a database without one."""
    return scalar(reader, LIBRARY_ID_SQL)


@dataclass
class SqliteReader:
    """Stdlib ``sqlite3`` inside one read transaction (no SQLAlchemy import)."""

    conn: sqlite3.Connection
    dialect: str = "sqlite"

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        return self.conn.execute(sql, dict(params or {})).fetchall()


@dataclass
class SessionReader:
    """An SQLAlchemy ``Session`` or ``Connection``: the same SQL, in the caller's transaction."""

    session: Any

    @property
    def dialect(self) -> str:
        bind = self.session.get_bind() if hasattr(self.session, "get_bind") else self.session
        return str(bind.dialect.name)

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        from sqlalchemy import text

        return [tuple(row) for row in self.session.execute(text(sql), dict(params or {}))]


@dataclass
class OpenLibrary:
    """A library opened for reading: its reader, its URL as shown to the user, its schema revision."""

    reader: SqlReader
    shown_url: str
    revision: str | None


def sqlite_read_only_reason(path: Path) -> str | None:
    """Why this process cannot write the SQLite library at ``path``; None when it can (or it is not there yet:
    creating it says clearly when that fails). A WAL database also needs its folder, for the -wal/-shm files."""
    if not path.is_file():
        return None
    if not os.access(path, os.W_OK):
        return "the file is not writable"
    sidecars = [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]
    if not os.access(path.parent, os.W_OK | os.X_OK) and not all(os.access(f, os.W_OK) for f in sidecars):
        return f"its folder {path.parent} is not writable"
    return None


def read_only_uri(path: Path) -> str:
    """A URI that opens ``path`` read-only, following SQLite's documented rules for WAL databases (wal.html,
    "Read-Only Databases"; uri.html): ``mode=ro`` works when the -shm and -wal files exist or the folder lets
    SQLite create them, and then honours what another process wrote in the WAL. Otherwise (a read-only folder,
    no writer running) only ``immutable=1`` can open it: no locks, no WAL, the file as it is on disk."""
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    sidecars_readable = all(os.access(f"{path}{suffix}", os.R_OK) for suffix in ("-wal", "-shm"))
    if sidecars_readable or os.access(path.parent, os.W_OK | os.X_OK):
        return uri
    return uri + "&immutable=1"


def plain_sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL whose path SQLAlchemy takes literally (no ``%``-escapes, no query):
    only those are read without SQLAlchemy, so both ways always open the same file. None for any other URL."""
    if not url.startswith(_SQLITE_PREFIX) or any(c in url for c in "%?#"):
        return None
    path = url[len(_SQLITE_PREFIX) :]
    return Path(path) if path and path != ":memory:" else None


def _shown_sqlite_url(path: Path) -> str | None:
    """What ``make_url(url).render_as_string()`` shows for such a URL (SQLAlchemy quotes the path this way)."""
    try:
        return _SQLITE_PREFIX + urllib.parse.quote(str(path), safe=" +/")
    except UnicodeEncodeError:  # a non-UTF-8 file name: leave it to SQLAlchemy
        return None


def _open_current_sqlite(settings: Settings) -> tuple[sqlite3.Connection, str, str] | None:
    """A connection inside a read transaction on a library whose schema is current, its shown URL and its
    revision; None when anything is unusual (no file yet, an old schema, not a library, an unreadable file):
    ``open_database`` then creates, migrates or explains it, exactly as for every other command."""
    path = plain_sqlite_path(settings.db_url)
    shown = _shown_sqlite_url(path) if path is not None else None
    head = script_head()
    if path is None or shown is None or head is None or not path.is_file() or path.stat().st_size == 0:
        return None
    writable = sqlite_read_only_reason(path) is None
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=rw" if writable else read_only_uri(path)
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error:  # e.g. unreadable: open_database says so in one line
        return None
    try:
        conn.execute("BEGIN")  # deferred: the first SELECT fixes the snapshot every later query reads
        has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
        revisions = [row[0] for row in conn.execute(REVISION_SQL)] if has_table.fetchall() else []
    except sqlite3.Error:
        revisions = []
    if revisions != [head]:
        conn.close()
        return None
    return conn, shown, head


@contextlib.contextmanager
def read_library(settings: Settings) -> Iterator[OpenLibrary]:
    """The library named by ``settings``, for reading only, in one snapshot.

    A current SQLite library is read with stdlib ``sqlite3``; anything else goes through ``open_database``
    (which creates or migrates the schema first) and an SQLAlchemy transaction running the same SQL.
    """
    opened = _open_current_sqlite(settings)
    if opened is None:
        yield from _read_through_sqlalchemy(settings)
        return
    conn, shown, revision = opened
    try:
        yield OpenLibrary(SqliteReader(conn), shown, revision)
    except sqlite3.Error as exc:
        from photokit.db.session import explain_db_error

        raise explain_db_error(exc, settings.db_url) from exc
    finally:
        conn.close()  # ends the read transaction: nothing was written


def _read_through_sqlalchemy(settings: Settings) -> Iterator[OpenLibrary]:
    """Open (creating or migrating) with ``open_database``, then read in one snapshot: SQLite's read
    transaction, PostgreSQL's REPEATABLE READ (its default, READ COMMITTED, snapshots each statement)."""
    from sqlalchemy.exc import DatabaseError as SADatabaseError
    from sqlalchemy.exc import OperationalError

    from photokit.db.session import display_url, explain_db_error, open_database

    db = open_database(settings)
    sqlite = db.engine.dialect.name == "sqlite"
    options = {"photokit_read_only": True} if sqlite else {"isolation_level": "REPEATABLE READ"}
    try:
        with db.engine.connect().execution_options(**options) as conn, conn.begin():
            reader = SessionReader(conn)
            yield OpenLibrary(reader, display_url(db.url), scalar(reader, REVISION_SQL))
    except (OperationalError, SADatabaseError) as exc:
        raise explain_db_error(exc, db.url) from exc
    finally:
        db.dispose()
