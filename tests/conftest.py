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

    settings = Settings.load(home=home, models=home / "models", db_url=f"sqlite:///{home / 'library.db'}")
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
