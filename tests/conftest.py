"""Shared fixtures. Tests that need ../shared skip (with the reason) only when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ("tests.web_support",)  # the web gallery tests' shared fixtures

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PHOTOKIT_SHARED", ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path inside ../shared, skipping the calling test when ../shared is not there."""
    path = SHARED.joinpath(*parts)
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}); this test needs its real photos/fixtures")
    if not path.exists():
        pytest.fail(f"{path} is missing from ../shared")  # shared is there but incomplete: a real failure
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch, request):
    """Never touch the user's ~/.photokit or the checkout's model store from a test. On the PostgreSQL
    pass (PHOTOKIT_TEST_DB=postgres) every test gets a fresh database on the session's server."""
    home = tmp_path_factory.mktemp("photokit_home")
    monkeypatch.setenv("PHOTOKIT_HOME", str(home))
    monkeypatch.setenv("PHOTOKIT_MODELS", str(home / "models"))
    if testing_on_postgres():
        monkeypatch.setenv("PHOTOKIT_DB_URL", request.getfixturevalue("postgres_server").create_database())
    else:
        monkeypatch.delenv("PHOTOKIT_DB_URL", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    yield home


# -- PostgreSQL: one throwaway server per test session (tests/pg_server.py) ---------------------------
DB_FIXTURES = {"settings", "deepface_library", "face_recognition_library"}
# Modules that reach the database through the CLI (PHOTOKIT_DB_URL) rather than the fixtures above.
DB_MODULES = {
    "test_cli_general", "test_cli_scan", "test_db_migrations", "test_enhance_cli", "test_faces_incremental",
    "test_people_cli", "test_prior_cli", "test_prior_build_all",
}  # fmt: skip


def testing_on_postgres() -> bool:
    """The second pass of `make test` runs the database tests on PostgreSQL (PHOTOKIT_TEST_DB=postgres)."""
    return os.environ.get("PHOTOKIT_TEST_DB", "sqlite").lower() in ("postgres", "postgresql")


def _session_postgres():
    """Start the session's server on first use (stopped by ``pytest_sessionfinish``)."""
    from tests.pg_server import find_bindir, shared_server

    if find_bindir() is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI must run the PostgreSQL tests, but no PostgreSQL server (initdb) is installed")
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine: apt-get install postgresql")
    return shared_server()


def pytest_sessionfinish(session, exitstatus):
    from tests.pg_server import stop_shared_server

    stop_shared_server()


def pytest_collection_modifyitems(config, items):
    """Mark every database-touching test ``db``, so `make test` can run them again on PostgreSQL (not those
    that take ``pg_url``: they run on PostgreSQL already)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "pg_url" in fixtures:
            continue
        if DB_FIXTURES & fixtures or item.module.__name__.split(".")[-1] in DB_MODULES:
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for this test session (``PostgresServer``: ``create_database()``, ``url()``)."""
    return _session_postgres()


@pytest.fixture
def pg_url(postgres_server) -> str:
    """The URL of a fresh, empty PostgreSQL database."""
    return postgres_server.create_database()


def sqlite_only(reason: str):
    """Skip on the PostgreSQL pass a test of something only SQLite has (a database file, its locking)."""
    return pytest.mark.skipif(testing_on_postgres(), reason=f"SQLite-specific: {reason}")


@pytest.fixture
def settings(_isolated_home):
    from photokit.settings import Settings

    return Settings.load()


# -- real-photo libraries scanned with faces, once per session ------------------------
class FaceLibrary:
    """A library of ../shared/data/faces/<name> scanned with faces: ``.settings``, ``.db``, ``.root``,
    ``.summary`` (the ``FaceRunSummary`` of ``process_pending_photos``). Its home is private to the session
    (not the per-test PHOTOKIT_HOME); treat it as read-only or copy it."""

    def __init__(self, settings, db, root: Path, summary) -> None:
        self.settings, self.db, self.root, self.summary = settings, db, root, summary


def scan_faces_library(home: Path, roots: list[Path]) -> FaceLibrary:
    """Scan ``roots`` into a fresh library under ``home`` (library pass, then faces). Tests may call it too."""
    from photokit.db import open_database
    from photokit.faces.pipeline import process_pending_photos
    from photokit.library.scan import scan_library
    from photokit.settings import Settings

    url = _session_postgres().create_database() if testing_on_postgres() else f"sqlite:///{home / 'library.db'}"
    settings = Settings.load(home=home, models=home / "models", db_url=url)
    db = open_database(settings)
    scan_library(db, [str(r) for r in roots])
    summary = process_pending_photos(db, device="cpu")
    return FaceLibrary(settings, db, Path(roots[0]), summary)


def _face_library(tmp_path_factory, name: str):
    root = shared_path("data", "faces", name)
    library = scan_faces_library(tmp_path_factory.mktemp(f"faces_{name}"), [root])
    yield library
    library.db.dispose()


@pytest.fixture(scope="session")
def deepface_library(tmp_path_factory):
    """../shared/data/faces/deepface (62 labelled photos + 2 group photos) scanned with faces."""
    yield from _face_library(tmp_path_factory, "deepface")


@pytest.fixture(scope="session")
def face_recognition_library(tmp_path_factory):
    """../shared/data/faces/face_recognition (Obama, Biden, two-person photos) scanned with faces."""
    yield from _face_library(tmp_path_factory, "face_recognition")
