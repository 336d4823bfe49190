"""Shared fixtures. Tests that need ../shared skip (with the reason) only when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's ~/.photokit or the checkout's model store from a test."""
    home = tmp_path_factory.mktemp("photokit_home")
    monkeypatch.setenv("PHOTOKIT_HOME", str(home))
    monkeypatch.setenv("PHOTOKIT_MODELS", str(home / "models"))
    monkeypatch.delenv("PHOTOKIT_DB_URL", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    yield home


@pytest.fixture
def settings(_isolated_home):
    from photokit.settings import Settings

    return Settings.load()
