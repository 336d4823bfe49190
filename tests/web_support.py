"""Helpers for the web gallery tests: a private copy of a scanned library, an app, a logged-in client."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from photokit.settings import Settings

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"


def copy_library(library, home: Path) -> Settings:
    """A writable copy of a session-scoped scanned library (its photos stay where they are, read-only)."""
    home.mkdir(parents=True, exist_ok=True)
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

    app = create_app(settings, token=TOKEN, **kwargs)
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    if login:
        client.cookies.set("photokit_token", TOKEN)
    return client


def csrf(client) -> str:
    from photokit.web.security import csrf_token

    return csrf_token(TOKEN)
