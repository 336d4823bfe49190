"""photokit.library.scan: incremental indexing of generated libraries (formats, broken files, moves...)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from photokit.db import open_database
from photokit.db.models import Photo, PhotoLocation, ScanRun, SkippedFile
from photokit.errors import PhotokitError
from photokit.library import images
from photokit.library.scan import scan_library

SAVE = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "tiff": "TIFF", "bmp": "BMP"}


def write_image(path: Path, fmt: str, seed: int, size=(48, 32), exif: Image.Exif | None = None) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"exif": exif} if exif is not None else {}
    Image.fromarray(pixels).save(path, format=SAVE[fmt], **kwargs)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db(settings):
    database = open_database(settings)
    yield database
    database.dispose()


@pytest.fixture
def library(tmp_path) -> dict:
    """A small messy library and what a correct scan must find in it."""
    root = tmp_path / "Pictures"
    good: dict[Path, dict] = {}
    for i, fmt in enumerate(["jpeg", "png", "gif", "webp", "tiff", "bmp"]):
        path = write_image(root / "2001" / f"img{i}.{'jpg' if fmt == 'jpeg' else fmt}", fmt, seed=i)
        good[path] = {"format": fmt, "size": (48, 32)}
    rotated = Image.Exif()
    rotated[274] = 6  # camera held sideways: stored 48x32, shown 32x48
    good[write_image(root / "2001" / "sideways.jpg", "jpeg", seed=10, exif=rotated)] = {
        "format": "jpeg",
        "size": (32, 48),
    }
    good[write_image(root / "misc" / "png_named.jpg", "png", seed=11)] = {"format": "png", "size": (48, 32)}
    good[write_image(root / "misc" / "no_extension", "jpeg", seed=12)] = {"format": "jpeg", "size": (48, 32)}
    original = write_image(root / "trip" / "beach.jpg", "jpeg", seed=13)
    good[original] = {"format": "jpeg", "size": (48, 32)}
    copy = root / "backup" / "beach copy.jpg"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(original, copy)
    good[copy] = {"format": "jpeg", "size": (48, 32)}

    bad = {}
    (root / "misc" / "empty.jpg").write_bytes(b"")
    bad[root / "misc" / "empty.jpg"] = "empty"
    whole = write_image(root / "misc" / "whole.tmp", "jpeg", seed=14, size=(160, 120)).read_bytes()
    (root / "misc" / "whole.tmp").unlink()
    (root / "misc" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    bad[root / "misc" / "truncated.jpg"] = "truncated"
    (root / "misc" / "readme.png").write_text("this is a text file with a .png name\n")
    bad[root / "misc" / "readme.png"] = "not_image"

    hidden = [
        root / ".thumbnails" / "t.jpg",
        root / "@eaDir" / "img0.jpg" / "SYNO.jpg",
        root / "$RECYCLE.BIN" / "old.jpg",
        root / "__MACOSX" / "m.jpg",
        root / ".Trash-1000" / "x.jpg",
        root / "System Volume Information" / "s.jpg",
        root / "#recycle" / "r.jpg",
        root / "2001" / "._img0.jpg",
    ]
    for n, path in enumerate(hidden):
        write_image(path, "jpeg", seed=100 + n)
    os.symlink("..", root / "2001" / "loop")  # a cycle back to the root
    os.symlink(root, root / "misc" / "root again")
    return {"root": root, "good": good, "bad": bad, "hidden": hidden}


def count_calls(monkeypatch, module, name: str) -> Counter:
    calls: Counter = Counter()
    original = getattr(module, name)

    def counting(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def locations(db) -> dict[str, PhotoLocation]:
    with db.session() as s:
        return {loc.path: loc for loc in s.scalars(select(PhotoLocation))}


def photos_by_id(db) -> dict[int, Photo]:
    with db.session() as s:
        return {p.id: p for p in s.scalars(select(Photo))}


def assert_index_matches_disk(db, root: Path) -> None:
    """Every image file under root has one present location pointing at a photo with its hash."""
    locs, photos = locations(db), photos_by_id(db)
    on_disk = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(
            part.startswith((".", "@", "$", "#", "_")) or part == "System Volume Information"
            for part in p.relative_to(root).parts
        )
    ]
    with db.session() as s:
        skipped = set(s.scalars(select(SkippedFile.path)))
    for path in on_disk:
        if str(path) in skipped:
            assert str(path) not in locs or locs[str(path)].status != "present"
            continue
        loc = locs[str(path)]
        assert loc.status == "present", path
        assert photos[loc.photo_id].sha256 == sha(path)
        assert (loc.size, loc.mtime_ns) == (path.stat().st_size, path.stat().st_mtime_ns)
    present = {p for p, loc in locs.items() if loc.status == "present"}
    assert present <= {str(p) for p in on_disk}


def test_first_scan_indexes_formats_duplicates_and_skips_broken_files(db, library):
    root = library["root"]
    summary = scan_library(db, [root])

    good, bad = library["good"], library["bad"]
    distinct = {sha(p) for p in good}
    assert summary.new == len(distinct)
    assert summary.duplicates == len(good) - len(distinct) == 1
    assert summary.skipped == dict(Counter(bad.values()))
    assert summary.files == len(good) + len(bad)  # hidden files and the symlink loop add nothing
    assert (summary.unchanged, summary.moved, summary.missing, summary.interrupted) == (0, 0, 0, False)

    locs, photos = locations(db), photos_by_id(db)
    assert set(locs) == {str(p) for p in good}
    for path, expected in good.items():
        photo = photos[locs[str(path)].photo_id]
        assert photo.sha256 == sha(path)
        assert photo.format == expected["format"]
        assert (photo.width, photo.height) == expected["size"]
        assert photo.faces_status == "pending"
    sideways = photos[locs[str(root / "2001" / "sideways.jpg")].photo_id]
    assert sideways.orientation == 6
    assert locs[str(root / "trip" / "beach.jpg")].photo_id == locs[str(root / "backup" / "beach copy.jpg")].photo_id
    assert len(photos) == len(distinct)

    with db.session() as s:
        skipped = {row.path: row.reason for row in s.scalars(select(SkippedFile))}
        run = s.scalars(select(ScanRun)).one()
    assert skipped == {str(p): reason for p, reason in bad.items()}
    assert run.finished_at is not None and run.summary["new"] == summary.new and run.roots == [str(root)]
    assert_index_matches_disk(db, root)


def test_rescan_of_unchanged_library_opens_and_hashes_nothing(db, library, monkeypatch):
    root = library["root"]
    first = scan_library(db, [root])
    opened = count_calls(monkeypatch, Image, "open")
    hashed = count_calls(monkeypatch, hashlib, "file_digest")
    sniffed = count_calls(monkeypatch, images, "sniff_bytes")

    again = scan_library(db, [root])

    assert opened["open"] == 0 and hashed["file_digest"] == 0 and sniffed["sniff_bytes"] == 0
    assert again.unchanged == first.new + first.duplicates
    assert again.skipped == first.skipped
    assert (again.new, again.moved, again.missing, again.duplicates) == (0, 0, 0, 0)
    # the counters really count: touching one file makes exactly that file be read again
    target = root / "2001" / "img1.png"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    touched = scan_library(db, [root])
    assert hashed["file_digest"] == 1 and opened["open"] == 0  # known content: hashed, never decoded
    assert touched.unchanged == again.unchanged
    assert_index_matches_disk(db, root)


def test_moved_file_is_recognised_by_hash(db, library, monkeypatch):
    root = library["root"]
    scan_library(db, [root])
    before = photos_by_id(db)
    old, new = root / "2001" / "img0.jpg", root / "2002" / "renamed.jpg"
    new.parent.mkdir()
    old.rename(new)
    opened = count_calls(monkeypatch, Image, "open")

    summary = scan_library(db, [root])

    assert (summary.moved, summary.new, summary.missing) == (1, 0, 0)
    assert opened["open"] == 0
    locs = locations(db)
    assert locs[str(new)].moved_from == str(old)
    assert locs[str(old)].status == "moved" and locs[str(old)].missing_since is not None
    assert locs[str(new)].photo_id == locs[str(old)].photo_id
    assert photos_by_id(db).keys() == before.keys()
    assert_index_matches_disk(db, root)


def test_deleted_file_is_marked_missing_kept_and_comes_back(db, library):
    root = library["root"]
    scan_library(db, [root])
    gone = root / "2001" / "img2.gif"
    data, photo_count = gone.read_bytes(), len(photos_by_id(db))
    gone.unlink()

    summary = scan_library(db, [root])
    loc = locations(db)[str(gone)]
    assert summary.missing == 1 and loc.status == "missing" and loc.missing_since is not None
    assert len(photos_by_id(db)) == photo_count  # the photo (and anything attached to it) is kept

    assert scan_library(db, [root]).missing == 0  # not counted twice
    gone.write_bytes(data)  # restored from a backup: same content, new mtime
    back = scan_library(db, [root])
    loc = locations(db)[str(gone)]
    assert back.returned == 1 and loc.status == "present" and loc.missing_since is None
    assert_index_matches_disk(db, root)


def test_duplicate_removal_is_missing_not_a_move(db, library):
    root = library["root"]
    scan_library(db, [root])
    (root / "backup" / "beach copy.jpg").unlink()
    summary = scan_library(db, [root])
    assert (summary.missing, summary.moved) == (1, 0)
    locs = locations(db)
    assert locs[str(root / "backup" / "beach copy.jpg")].status == "missing"
    assert locs[str(root / "trip" / "beach.jpg")].status == "present"


def test_content_changed_in_place_and_broken_file_repaired(db, library):
    root = library["root"]
    scan_library(db, [root])
    edited = root / "2001" / "img5.bmp"
    old_photo = locations(db)[str(edited)].photo_id
    write_image(edited, "bmp", seed=999)
    repaired = root / "misc" / "truncated.jpg"
    write_image(repaired, "jpeg", seed=998)

    summary = scan_library(db, [root])

    assert summary.changed == 1 and summary.new == 1  # the edit is "changed", the repaired file "new"
    assert "truncated" not in summary.skipped
    locs = locations(db)
    assert locs[str(edited)].photo_id != old_photo and old_photo in photos_by_id(db)  # old content kept
    assert locs[str(repaired)].status == "present"
    with db.session() as s:
        assert s.scalar(select(SkippedFile).where(SkippedFile.path == str(repaired))) is None
    assert_index_matches_disk(db, root)


def test_interrupted_scan_loses_at_most_one_batch_and_next_scan_finishes(db, tmp_path, monkeypatch):
    root = tmp_path / "album"
    files = [write_image(root / f"{i:03d}.png", "png", seed=i) for i in range(23)]
    scan_library(db, [root], batch_size=5)
    files[0].unlink()  # deleted before the interrupted scan: only a complete scan may call it missing
    for i in range(23, 46):
        files.append(write_image(root / f"{i:03d}.png", "png", seed=i))

    probe = images.probe_image
    calls = Counter()

    def interrupting(path):
        calls["probe"] += 1
        if calls["probe"] == 13:
            raise KeyboardInterrupt
        return probe(path)

    monkeypatch.setattr(images, "probe_image", interrupting)
    with pytest.raises(KeyboardInterrupt):
        scan_library(db, [root], batch_size=5)

    with db.session() as s:
        committed = s.scalar(select(func.count()).select_from(Photo))
        run = s.scalars(select(ScanRun).order_by(ScanRun.id.desc())).first()
    # The walk lists 22 known files, then the 23 new ones (name order). Probe 13 is new file #13,
    # at walk position 22 + 12; its whole batch of 5 is rolled back, every batch before it stays.
    batch_start = (22 + 12) // 5 * 5
    committed_new = batch_start - 22
    assert committed == 23 + committed_new
    assert run.finished_at is None and run.summary["interrupted"] is True
    assert locations(db)[str(files[0])].status == "present"

    monkeypatch.setattr(images, "probe_image", probe)
    decoded = count_calls(monkeypatch, images, "probe_image")
    resumed = scan_library(db, [root], batch_size=5)
    assert decoded["probe_image"] == 23 - committed_new  # only what the interrupted scan had not committed
    assert (resumed.new, resumed.unchanged, resumed.missing) == (23 - committed_new, 22 + committed_new, 1)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Photo)) == 46
    assert_index_matches_disk(db, root)


def test_symlinked_folders_are_followed_once_and_stored_by_real_path(db, tmp_path):
    outside = tmp_path / "elsewhere"
    real = write_image(outside / "x.webp", "webp", seed=1)
    root = tmp_path / "root"
    write_image(root / "a.jpg", "jpeg", seed=2)
    os.symlink(outside, root / "link1")
    os.symlink(outside, root / "link2")
    os.symlink(root, outside / "back")  # cycle through both trees

    summary = scan_library(db, [root])

    assert (summary.files, summary.new) == (2, 2)
    assert set(locations(db)) == {str(real), str(root / "a.jpg")}
    real.unlink()  # the followed folder is covered: a file gone there is missing
    assert scan_library(db, [root]).missing == 1


def test_hidden_folder_scanned_directly_is_not_called_missing_from_its_parent(db, tmp_path):
    root = tmp_path / "root"
    inside = write_image(root / ".private" / "p.jpg", "jpeg", seed=3)
    write_image(root / "v.jpg", "jpeg", seed=4)
    assert scan_library(db, [root / ".private"]).new == 1
    summary = scan_library(db, [root])
    assert (summary.new, summary.missing) == (1, 0)
    assert locations(db)[str(inside)].status == "present"


def test_unreadable_folder_is_reported_and_its_photos_not_called_missing(db, tmp_path, monkeypatch):
    root = tmp_path / "root"
    locked = write_image(root / "locked" / "l.jpg", "jpeg", seed=5)
    scan_library(db, [root])
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path) == str(locked.parent):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    summary = scan_library(db, [root])
    assert summary.unreadable_dirs == [str(locked.parent)]
    assert summary.missing == 0 and locations(db)[str(locked)].status == "present"


def test_single_file_root_and_missing_root(db, tmp_path):
    photo = write_image(tmp_path / "one.tiff", "tiff", seed=6)
    assert scan_library(db, [photo]).new == 1
    with pytest.raises(PhotokitError, match="path not found"):
        scan_library(db, [tmp_path / "does-not-exist"])


def test_progress_bar_goes_to_stderr(db, library, capsys):
    from photokit.cli.reporters import RichReporter

    with RichReporter() as reporter:
        scan_library(db, [library["root"]], reporter=reporter)
    out, _err = capsys.readouterr()
    assert out == ""


def test_summary_json_round_trip(db, library):
    import json

    doc = json.loads(json.dumps(scan_library(db, [library["root"]]).to_json()))
    assert doc["new"] + doc["duplicates"] + doc["skipped_total"] == doc["files"]
    assert set(doc["skipped"]) == set(library["bad"].values())


def test_unreadable_file_is_skipped_with_its_reason(db, tmp_path, monkeypatch):
    root = tmp_path / "root"
    secret = write_image(root / "secret.jpg", "jpeg", seed=7)
    write_image(root / "fine.jpg", "jpeg", seed=8)
    real_open = open

    def guarded_open(file, *args, **kwargs):
        if str(file) == str(secret):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    summary = scan_library(db, [root])
    assert (summary.new, summary.skipped) == (1, {"unreadable": 1})
    with db.session() as s:
        row = s.scalars(select(SkippedFile)).one()
    assert row.path == str(secret) and "Permission denied" in row.detail
    monkeypatch.setattr("builtins.open", real_open)
    again = scan_library(db, [root])  # access fixed (mtime unchanged): retried and indexed
    assert (again.new, again.skipped) == (1, {})


def test_batches_are_also_cut_by_time(settings, tmp_path, monkeypatch):
    """A slow disk must not hold the write lock for a whole batch: batches end after MAX_BATCH_SECONDS."""
    import photokit.library.scan as scan_module
    from photokit.db import open_database

    album = tmp_path / "album"
    album.mkdir()
    for k in range(5):
        Image.new("RGB", (8, 8), (k * 40, 0, 0)).save(album / f"{k}.png")
    commits = []
    db = open_database(settings)
    real_session = db.session

    def counting_session():
        commits.append(1)
        return real_session()

    monkeypatch.setattr(db, "session", counting_session)
    monkeypatch.setattr(scan_module, "MAX_BATCH_SECONDS", 0.0)  # every file is its own batch
    try:
        summary = scan_module.scan_library(db, [album], batch_size=200)
        assert summary.new == 5
        per_file_sessions = len(commits)
        commits.clear()
        monkeypatch.setattr(scan_module, "MAX_BATCH_SECONDS", 60.0)
        (album / "5.png").write_bytes((album / "0.png").read_bytes())
        scan_module.scan_library(db, [album], batch_size=200)
        assert per_file_sessions - len(commits) == 4  # 5 one-file batches before, one 6-file batch now
    finally:
        db.dispose()
