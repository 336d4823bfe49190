"""Albums keep their folder structure under an output folder; no two photos share an output."""

from __future__ import annotations

import numpy as np
from PIL import Image

from photokit.restore.batch import collect_sources, plan_outputs, run_batch
from photokit.restore.options import EnhanceOptions
from photokit.restore.output import output_path_for
from photokit.restore.pipeline import PhotoReport


def _jpeg(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)
    return path


def test_same_file_name_in_two_album_folders_gets_two_outputs(tmp_path):
    album = tmp_path / "Album"
    a, b = _jpeg(album / "2019" / "IMG_1.jpg"), _jpeg(album / "2020" / "IMG_1.jpg")
    single = _jpeg(tmp_path / "loose" / "scan.jpg")
    out = tmp_path / "out"
    targets = plan_outputs(collect_sources([album, single], out_dir=out), out, "_restored")
    assert targets[a.resolve()] == out / "2019" / "IMG_1_restored.jpg"
    assert targets[b.resolve()] == out / "2020" / "IMG_1_restored.jpg"
    assert targets[single.resolve()] == out / "scan_restored.jpg"  # a file given directly keeps the flat name


def test_no_two_photos_of_a_batch_share_an_output_and_no_original_is_a_target(tmp_path):
    first, second = tmp_path / "A", tmp_path / "B"
    paths = [_jpeg(first / "IMG_1.jpg"), _jpeg(second / "IMG_1.jpg")]
    # Both become x.png (formats photokit cannot write go to PNG), and with no suffix x.png is an original.
    for name in ("x.bmp", "x.gif"):
        Image.new("RGB", (8, 8)).save(first / name)
    paths.append(_jpeg(first / "x.png"))
    out = tmp_path / "out"
    for out_dir, suffix in ((out, "_restored"), (None, "")):
        sources = collect_sources([first, second], suffix=suffix, out_dir=out_dir)
        assert len(sources) == 5
        targets = list(plan_outputs(sources, out_dir, suffix).values())
        assert len(set(targets)) == len(targets) == 5
        assert not {t.resolve() for t in targets} & set(sources)
    again = plan_outputs(collect_sources([first, second], out_dir=out), out, "_restored")
    assert again == plan_outputs(collect_sources([first, second], out_dir=out), out, "_restored")  # resumable


class _WritingEnhancer:
    """Just enough of Enhancer for run_batch: writes a marker where it is told to."""

    def __init__(self, options):
        self.options = options

    def enhance(self, path, target=None):
        target = target or output_path_for(path, self.options.out_dir, self.options.suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(str(path))
        return PhotoReport(source=str(path), output=str(target))


def test_album_batch_writes_one_output_per_photo_under_its_folder(settings, tmp_path):
    from photokit.db import open_database

    album = tmp_path / "Album"
    a, b = _jpeg(album / "2019" / "IMG_1.jpg"), _jpeg(album / "2020" / "IMG_1.jpg")
    out = tmp_path / "out"
    db = open_database(settings)
    summary = run_batch(db, [album], _WritingEnhancer(EnhanceOptions(out_dir=out)))
    db.dispose()
    assert len(summary.done) == 2
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["2019/IMG_1_restored.jpg", "2020/IMG_1_restored.jpg"]
    assert (out / "2019" / "IMG_1_restored.jpg").read_text() == str(a.resolve())
    assert (out / "2020" / "IMG_1_restored.jpg").read_text() == str(b.resolve())


def test_a_photo_deleted_from_the_album_between_runs_is_withdrawn_not_failed(settings, tmp_path):
    import pytest
    from sqlalchemy import select

    from photokit.db import open_database
    from photokit.db.models import EnhanceJob

    album = tmp_path / "Album"
    photos = [_jpeg(album / f"p{i}.jpg", 40 * i) for i in range(1, 4)]
    out = tmp_path / "out"
    db = open_database(settings)

    def stop_after_the_first(photo, status):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(db, [album], _WritingEnhancer(EnhanceOptions(out_dir=out)), on_photo_done=stop_after_the_first)
    photos[2].unlink()  # p3.jpg was queued, then deleted before the album is resumed
    summary = run_batch(db, [album], _WritingEnhancer(EnhanceOptions(out_dir=out)))
    assert summary.total == 2 and len(summary.already_done) == 1 and len(summary.done) == 1 and not summary.failed
    with db.session() as session:
        rows = {r.source_path.rsplit("/", 1)[-1]: r for r in session.scalars(select(EnhanceJob))}
    assert (rows["p3.jpg"].status, rows["p3.jpg"].error) == ("skipped", "no longer in the album")
    assert sorted(p.name for p in out.iterdir()) == ["p1_restored.jpg", "p2_restored.jpg"]
    db.dispose()
