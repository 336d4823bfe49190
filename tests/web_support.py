"""What the web gallery tests share: a private copy of a scanned library, an app, a logged-in client,
database look-ups and job polling.

The fixtures (``library``, ``client``, ``anonymous``, ``db``) are registered for the whole suite by
``tests/conftest.py`` (``pytest_plugins``); the functions are imported by the modules that need them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from photokit.settings import Settings

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"


def copy_library(library, home: Path) -> Settings:
    """A writable copy of a session-scoped scanned library (its photos stay where they are, read-only)."""
    home.mkdir(parents=True, exist_ok=True)
    if library.settings.db_url.startswith("postgresql"):  # the PostgreSQL pass of `make test`
        from sqlalchemy.engine import make_url

        from tests.pg_server import shared_server

        library.db.dispose()  # a template database must have no open connections
        url = shared_server().create_database(template=make_url(library.settings.db_url).database)
        return Settings.load(home=home, models=home / "models", db_url=url)
    source = sqlite3.connect(library.settings.db_url.split("///", 1)[1])
    target = sqlite3.connect(home / "library.db")
    with target:
        source.backup(target)
    source.close()
    target.close()
    return Settings.load(home=home, models=home / "models", db_url=f"sqlite:///{home / 'library.db'}")


def make_client(settings: Settings, login: bool = True, **kwargs):
    from fastapi.testclient import TestClient

    from photokit.web.app import create_app
    from photokit.web.security import LOOPBACK_HOSTS

    kwargs.setdefault("hosts", LOOPBACK_HOSTS | {"testserver"})  # the test client's Host
    app = create_app(settings, token=TOKEN, **kwargs)
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    if login:
        client.cookies.set("photokit_token", TOKEN)
    return client


def csrf(client) -> str:
    from photokit.web.security import csrf_token

    return csrf_token(TOKEN)


class LiveServer:
    """The app served by uvicorn on a free loopback port in a thread (for a real browser)."""

    def __init__(self, app) -> None:
        import socket

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gallery server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def chromium_driver(width: int = 1280, height: int = 900):
    """Headless Debian Chromium through chromedriver. Skips only outside CI when the browser is absent."""
    import os
    import shutil

    import pytest

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
    )
    if not (binary and driver_path):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver must be installed in CI (.ci/run installs them)")
        pytest.skip("chromium/chromedriver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=options)


# -- fixtures: a writable copy of the scanned face_recognition library and clients of its gallery ----------
@pytest.fixture
def library(face_recognition_library, tmp_path) -> Settings:
    """Settings of a private, writable copy of the session's scanned face_recognition library."""
    return copy_library(face_recognition_library, tmp_path / "home")


@pytest.fixture
def client(library):
    """A test client of the gallery over ``library``, logged in (token cookie set); jobs run."""
    with make_client(library) as c:
        yield c


@pytest.fixture
def anonymous(library):
    """A test client of the gallery over ``library`` without the token."""
    with make_client(library, login=False) as c:
        yield c


@pytest.fixture
def db(library):
    """The database of ``library``, to check what the gallery changed."""
    from photokit.db import open_database

    database = open_database(library)
    yield database
    database.dispose()


# -- look-ups ---------------------------------------------------------------------------------------------
def faces_of(db, person_id: int) -> list[int]:
    """Face ids of a person, in id order."""
    from sqlalchemy import select

    from photokit.db.models import Face

    with db.session() as session:
        return list(session.scalars(select(Face.id).where(Face.person_id == person_id).order_by(Face.id)).all())


def people_by_id(db) -> dict[int, dict]:
    """Everyone (ignored people too) as ``list_people`` rows, by id."""
    from photokit.faces.people import list_people

    with db.session() as session:
        return {p["id"]: p for p in list_people(session, include_all=True)}


def _page_changing_errors() -> tuple[type[Exception], ...]:
    """What a browser raises while a page or a node is being replaced (gone, not there yet, detached)."""
    try:
        from selenium.common.exceptions import WebDriverException
    except ImportError:
        return ()
    return (WebDriverException,)


def wait_until(predicate, timeout: float = 20.0):
    """``predicate()``'s first truthy value, polled every 0.1 s (AssertionError after ``timeout`` seconds).

    A predicate that looks an element up may run while the browser is between two pages, or while the
    page's script replaces the element: that counts as "not yet"; the last such error is reported if the
    condition is never met."""
    transient = _page_changing_errors()
    last_error: Exception | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except transient as exc:
            value, last_error = None, exc
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met in time (last browser error: {last_error})")


def wait_for_job(client, job_id: int, statuses: set[str], timeout: float = 240.0) -> dict:
    """Poll ``/api/jobs`` (as the Jobs page does) until the job reaches one of ``statuses``; its JSON."""
    deadline = time.monotonic() + timeout
    jobs: dict = {}
    while time.monotonic() < deadline:
        jobs = {j["id"]: j for j in client.get("/api/jobs").json()["jobs"]}
        if jobs.get(job_id, {}).get("status") in statuses:
            return jobs[job_id]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not reach {statuses}: {jobs.get(job_id)}")


# -- `photokit serve` in a subprocess ------------------------------------------------------------------------
@dataclass
class Served:
    """A running `photokit serve`: its address, token and (once stopped) what it wrote on stderr."""

    proc: subprocess.Popen
    base: str
    token: str
    stderr: str = ""


@contextlib.contextmanager
def serving(env: dict[str, str], *options: str):
    """`photokit serve --port 0 --no-open OPTIONS` with ``env`` added to the environment; stopped with Ctrl-C
    (SIGINT) on the way out, which must end it cleanly (exit 0, no traceback)."""
    from tests.conftest import ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "photokit", "serve", "--port", "0", "--no-open", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    served = None
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"(http://127\.0\.0\.1:\d+)/people\?token=([\w-]{40,})", line)
        assert match, line
        served = Served(proc, *match.groups())
        yield served
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        if served is not None:
            served.stderr = stderr
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "gallery stopped" in stderr
