"""Scanning the real photos in ../shared (camera JPEGs, an RGBA PNG, a CSV) — read-only."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image, ImageOps
from sqlalchemy import select

from photokit.db import open_database
from photokit.db.models import Photo, PhotoLocation, SkippedFile
from photokit.library.scan import scan_library
from tests.conftest import shared_path


def test_real_photos_are_indexed_with_upright_dimensions(settings, monkeypatch):
    root = shared_path("data", "faces")
    # photokit stores canonical paths (../shared may itself be a symlink)
    files = sorted(p.resolve() for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    db = open_database(settings)
    try:
        summary = scan_library(db, [root])
        with db.session() as s:
            photo_of = {loc.path: loc.photo for loc in s.scalars(select(PhotoLocation))}
            skipped = {row.path: row.reason for row in s.scalars(select(SkippedFile))}
            photo_count = len(s.scalars(select(Photo)).all())

        expected_photos, expected_skipped = {}, {}
        for path in files:
            try:
                with Image.open(path) as im:
                    im.load()
                    expected_photos[str(path)] = ImageOps.exif_transpose(im).size
            except Exception:
                expected_skipped[str(path)] = path
        assert set(photo_of) == set(expected_photos)
        assert set(skipped) == set(expected_skipped)
        for path, size in expected_photos.items():
            photo = photo_of[path]
            assert (photo.width, photo.height) == size, path
        distinct = {hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in expected_photos}
        assert photo_count == len(distinct) == summary.new

        opened = []
        original_open = Image.open
        monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a) or original_open(*a, **k))
        again = scan_library(db, [root])
        assert opened == [] and again.unchanged == len(expected_photos)
    finally:
        db.dispose()
