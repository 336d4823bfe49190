"""Opening the library database: engine, SQLite pragmas, automatic migration, error mapping."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError as SADatabaseError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from photokit.db import migrate
from photokit.db.reader import BUSY_TIMEOUT_S, read_only_uri, sqlite_read_only_reason
from photokit.errors import DatabaseError, Remedy
from photokit.settings import Settings


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cur.close()


def _where(url: str) -> str:
    """The database as the user knows it: a SQLite file's path, or the URL without its password."""
    return url.split("///", 1)[-1] if url.startswith("sqlite") else display_url(url)


def explain_db_error(exc: Exception, url: str) -> DatabaseError:
    """Turn a driver error into a one-line message the user can act on."""
    text = str(getattr(exc, "orig", exc)) or type(exc).__name__
    where = _where(url)
    if "locked" in text or "busy" in text:
        return DatabaseError(
            f"database {where} is locked: another photokit command (or another program) kept writing to it "
            f"for more than {BUSY_TIMEOUT_S:g} s; try again when it has finished"
        )
    if "not a database" in text or "malformed" in text or "file is encrypted" in text:
        return DatabaseError(f"{where} is not a readable photokit database ({text})")
    if "readonly" in text or "read-only" in text:
        return DatabaseError(
            f"{where} is read-only for this user: this command changes the library (nothing was changed)"
        )
    if "unable to open" in text:
        return DatabaseError(f"cannot open database {where}: {text}")
    return DatabaseError(f"database error on {where}: {text}")


@dataclass
class Database:
    engine: Engine
    url: str
    read_only: str | None = None  # why this process cannot write the library (None: it can)

    def __post_init__(self) -> None:
        self._sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self, write: bool = True) -> Iterator[Session]:
        """A session that commits on success and rolls back on error (including Ctrl-C).

        On SQLite a session takes the write lock when it begins (``BEGIN IMMEDIATE``), waiting up to
        BUSY_TIMEOUT_S for another writer: a plain BEGIN that reads and then writes fails at once with
        SQLITE_BUSY when another command wrote meanwhile, whatever the busy timeout. ``write=False`` is for
        sessions that only read (they never wait in WAL mode), so a long read does not hold writers back.
        """
        if write:
            self.check_writable()
        session = self._sessionmaker()
        if not write:
            session.connection(execution_options={"photokit_read_only": True})
        try:
            yield session
            session.commit()
        except (OperationalError, SADatabaseError) as exc:
            session.rollback()
            raise explain_db_error(exc, self.url) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def check_writable(self) -> None:
        """Refuse, in one line, to change a library this process may only read (before any work is done)."""
        if self.read_only:
            raise DatabaseError(
                f"{_where(self.url)} is read-only ({self.read_only}): this command changes the library; "
                "run it as a user who may write there (nothing was changed)"
            )

    def library_id(self) -> str:
        """This library's UUID (made by migration 0004)."""
        from photokit.db.reader import SessionReader, library_id

        with self.session(write=False) as session:
            found = library_id(SessionReader(session))
        if found is None:
            raise DatabaseError(f"{self.url} has no library id", Remedy.UPGRADE_DATABASE)
        return found

    def current_revision(self) -> str | None:
        return migrate.current_revision(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_begin(conn) -> None:
    read_only = conn.get_execution_options().get("photokit_read_only", False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def check_url(url: str) -> None:
    """One-line errors for URLs that cannot work: not a URL, an in-memory database, a missing driver."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.get_dialect()  # imports the dialect (not the driver)
    except ArgumentError:
        raise DatabaseError(f"{url!r} is not a database URL (e.g. sqlite:////path/library.db)") from None
    except NoSuchModuleError:
        raise DatabaseError(f"unknown database kind in {display_url(url)}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise DatabaseError(
            f"{url} is an in-memory database, which forgets everything when the command ends: give a file"
        )


def _foreign_sqlite_tables(path: str) -> list[str]:
    """Tables of an existing SQLite file that is not a photokit library (read-only look: nothing is changed)."""
    import sqlite3

    if not Path(path).is_file() or Path(path).stat().st_size == 0:
        return []
    conn = sqlite3.connect(read_only_uri(Path(path)), uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    finally:
        conn.close()
    if not tables or {"alembic_version", "photo_locations"} <= set(tables):
        return []
    return sorted(tables)


POSTGRES_DRIVER_HINT = "PostgreSQL needs its driver: pip install 'photokit[postgres]'"


def engine_url(url: str):
    """``postgresql://`` means psycopg 3 (the ``postgres`` extra), not SQLAlchemy's default psycopg2."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _read_only_sqlite_engine(path: Path) -> Engine:
    """An engine that only reads ``path`` (no WAL switch, no write lock): for a library this user cannot write."""
    uri = read_only_uri(path)
    engine = create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None),
    )
    event.listen(engine, "connect", lambda conn, _record: conn.execute("PRAGMA foreign_keys=ON"))
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(f"cannot create {Path(path).parent} for the library: {exc.strerror}") from None
        # Python's sqlite3 does not open a transaction before DDL, so an interrupted migration could leave
        # half a schema. SQLAlchemy's documented recipe: driver autocommit off, and an explicit BEGIN.
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        return create_engine(engine_url(url), pool_pre_ping=True)
    except ImportError as exc:  # the driver the URL names is not installed
        driver = f"the database driver {exc.name!r} is not installed; " if exc.name else ""
        raise DatabaseError(f"{display_url(url)}: {driver}{POSTGRES_DRIVER_HINT}") from None


def display_url(url: str) -> str:
    """The database URL without its password (for output and error messages)."""
    return make_url(url).render_as_string(hide_password=True)


def open_database(settings: Settings, upgrade: bool = True) -> Database:
    """Open (and by default migrate to head) the library database named by ``settings``."""
    check_url(settings.db_url)
    try:
        path = make_url(settings.db_url).database or ""
        foreign = _foreign_sqlite_tables(path) if settings.db_url.startswith("sqlite") else []
        if foreign:  # refuse before the WAL switch and before a single table is added
            raise DatabaseError(
                f"{path} is not a photokit library (it holds other tables: {', '.join(foreign[:5])}"
                f"{', ...' if len(foreign) > 5 else ''})",
                Remedy.OTHER_LIBRARY,
            )
        read_only = sqlite_read_only_reason(Path(path)) if settings.db_url.startswith("sqlite") else None
        engine = _read_only_sqlite_engine(Path(path)) if read_only else create_db_engine(settings.db_url)
        if not upgrade:
            inspect(engine).get_table_names()  # fail early on unreadable files
        elif not migrate.is_current(engine):  # decided without importing Alembic (~0.3 s)
            if read_only:
                raise DatabaseError(
                    f"{path} needs a schema upgrade, but it is read-only ({read_only})",
                    Remedy.UPGRADE_DATABASE_AS_WRITER,
                )
            _migrate_to_head(engine, settings.db_url)
    except (OperationalError, SADatabaseError, sqlite3.Error) as exc:
        raise explain_db_error(exc, settings.db_url) from exc
    except ModuleNotFoundError as exc:  # the URL names a driver that is not installed
        raise DatabaseError(
            f"the database driver {exc.name!r} for {display_url(settings.db_url)} is not installed "
            "(for PostgreSQL: pip install 'photokit[postgres]')"
        ) from None
    return Database(engine=engine, url=settings.db_url, read_only=read_only)


def _migrate_to_head(engine: Engine, url: str) -> None:
    from alembic.util.exc import CommandError

    try:
        migrate.upgrade(engine)
    except CommandError as exc:  # e.g. a database written by a newer photokit
        raise DatabaseError(
            f"cannot migrate {display_url(url)}: {exc} (was it written by a newer photokit? upgrade photokit)"
        ) from None
