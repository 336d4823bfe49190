"""Helpers for the web gallery tests: a private copy of a scanned library, an app, a logged-in client."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
