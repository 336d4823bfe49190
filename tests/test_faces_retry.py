"""Face detection failures that may go away (a drive unplugged mid-scan) are retried, real ones are not."""

from __future__ import annotations

import numpy as np
from PIL import Image

from photokit.db import open_database
from photokit.db.models import Photo
from photokit.faces.pipeline import process_pending_photos
from photokit.library.scan import scan_library


def test_missing_file_stays_pending_and_corrupt_file_fails(settings, tmp_path):
    album = tmp_path / "album"
    album.mkdir()
    rng = np.random.default_rng(0)
    for name in ("kept.png", "unplugged.png", "rotten.png"):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(album / name)
    db = open_database(settings)
    try:
        scan_library(db, [album])
        (album / "unplugged.png").unlink()  # its drive went away after indexing
        data = (album / "rotten.png").read_bytes()
        (album / "rotten.png").write_bytes(data[: len(data) // 2])  # damaged after indexing
        summary = process_pending_photos(db, device="cpu")
        assert summary.done == 1 and summary.retry_later == 1 and summary.failed == 1
        with db.session() as session:
            status = {
                p.locations[0].path.rsplit("/", 1)[-1]: (p.faces_status, p.faces_error) for p in session.query(Photo)
            }
        assert status["kept.png"] == ("done", None)
        assert status["unplugged.png"][0] == "pending" and "unplugged.png" in status["unplugged.png"][1]
        assert status["rotten.png"][0] == "failed" and status["rotten.png"][1]
        again = process_pending_photos(db, device="cpu")
        assert again.photos == 1 and again.retry_later == 1  # only the unplugged one is tried again
    finally:
        db.dispose()
