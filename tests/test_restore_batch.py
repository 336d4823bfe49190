"""Album restoration: jobs in the database, per-photo failures, interrupt and resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from photokit.db import open_database
from photokit.db.models import EnhanceJob
from photokit.restore.batch import collect_sources, run_batch
from photokit.restore.options import EnhanceOptions
from photokit.restore.pipeline import Enhancer
from photokit.restore.priors import NoPeople, StaticPriors
from photokit.stylegan2.base import BaseGenerator
from photokit.stylegan2.network import build_tiny_generator
from tests.conftest import shared_path


class CountingEnhancer(Enhancer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def enhance(self, path, target=None):
        self.calls.append(Path(path).name)
        return super().enhance(path, target)


@pytest.fixture(scope="module")
def generator():
    return build_tiny_generator(resolution=128, seed=5)


@pytest.fixture(scope="module")
def analyzer():
    from photokit.faces.analyze import FaceAnalyzer

    return FaceAnalyzer(device="cpu")


@pytest.fixture
def album(tmp_path):
    """Six photos: five real ones (two pictures, under several names) and one corrupt JPEG."""
    folder = tmp_path / "Album"
    folder.mkdir()
    small = shared_path("data", "faces", "face_recognition", "obama_small.jpg")
    low = shared_path("data", "faces", "face_recognition", "obama-240p.jpg")
    for i, src in enumerate([small, low, small, low, small]):
        shutil.copy(src, folder / f"photo{i + 1}.jpg")
    (folder / "photo6.jpg").write_bytes(small.read_bytes()[:3000])  # truncated mid-scan
    return folder


def make(generator, out_dir, analyzer):
    options = EnhanceOptions(scale=2, steps=2, loss="mse", out_dir=out_dir, force=True)  # random generator
    return CountingEnhancer(
        options,
        StaticPriors(BaseGenerator(generator, "tiny", pretrained=False)),
        NoPeople(),
        analyzer=analyzer,
        device="cpu",
    )


def test_album_with_a_corrupt_photo_gives_five_outputs_and_one_failure(settings, album, generator, analyzer, tmp_path):
    db = open_database(settings)
    out = tmp_path / "restored"
    summary = run_batch(db, [album], make(generator, out, analyzer))
    assert summary.total == 6
    assert len(summary.done) == 5 and len(summary.failed) == 1
    assert sorted(p.name for p in out.iterdir()) == [f"photo{i}_restored.jpg" for i in range(1, 6)]
    [failure] = summary.failed
    assert "photo6.jpg" in failure["error"] and "\n" not in failure["error"]
    with db.session() as session:
        jobs = {Path(j.source_path).name: j for j in session.scalars(select(EnhanceJob))}
    assert jobs["photo6.jpg"].status == "failed" and jobs["photo6.jpg"].error == failure["error"]
    assert all(jobs[f"photo{i}.jpg"].status == "done" for i in range(1, 6))
    assert jobs["photo2.jpg"].report["faces"][0]["status"] == "restored"
    db.dispose()


def test_interrupted_album_resumes_without_redoing_finished_photos(settings, album, generator, analyzer, tmp_path):
    db = open_database(settings)
    out = tmp_path / "restored"
    first = make(generator, out, analyzer)
    finished = []

    def interrupt_after_two(photo, status):
        finished.append(photo.name)
        if len(finished) == 2:
            raise KeyboardInterrupt  # what Ctrl-C does between photos

    with pytest.raises(KeyboardInterrupt):
        run_batch(db, [album], first, on_photo_done=interrupt_after_two)
    assert first.calls == ["photo1.jpg", "photo2.jpg"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert sorted(stamps) == ["photo1_restored.jpg", "photo2_restored.jpg"]

    second = make(generator, out, analyzer)
    summary = run_batch(db, [album], second)
    assert second.calls == ["photo3.jpg", "photo4.jpg", "photo5.jpg", "photo6.jpg"]
    assert len(summary.already_done) == 2 and len(summary.done) == 3 and len(summary.failed) == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in stamps} == stamps
    assert len(list(out.iterdir())) == 5
    db.dispose()


def test_interrupt_inside_a_photo_leaves_it_queued(settings, album, generator, analyzer, tmp_path):
    db = open_database(settings)
    enhancer = make(generator, tmp_path / "restored", analyzer)

    def explode(path, target=None):
        raise KeyboardInterrupt

    enhancer.enhance = explode
    with pytest.raises(KeyboardInterrupt):
        run_batch(db, [album], enhancer)
    with db.session() as session:
        statuses = sorted(j.status for j in session.scalars(select(EnhanceJob)))
    assert statuses == ["queued"] * 6
    db.dispose()


def test_outputs_next_to_the_inputs_are_not_picked_up_again(album):
    (album / "photo1_restored.jpg").write_bytes(b"x")
    (album / ".hidden").mkdir()
    (album / ".hidden" / "a.jpg").write_bytes(b"x")
    (album / "notes.txt").write_text("x")
    names = [p.name for p in collect_sources([album])]
    assert names == [f"photo{i}.jpg" for i in range(1, 7)]


def test_albums_find_photos_by_content_too(tmp_path):
    from PIL import Image

    from photokit.restore.batch import collect_sources

    album = tmp_path / "album"
    (album / "2019").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(album / "2019" / "scan_0001", format="PNG")  # no extension
    Image.new("RGB", (8, 8)).save(album / "photo.jpg")
    (album / "notes.txt").write_text("not a photo")
    (album / "broken.jpg").write_bytes(b"\xff\xd8\xff")  # photo-named: kept, so its failure is reported
    (album / "photo_restored.jpg").write_bytes((album / "photo.jpg").read_bytes())  # our own output
    found = collect_sources([album])
    assert sorted(p.name for p in found) == ["broken.jpg", "photo.jpg", "scan_0001"]
    assert found[(album / "2019" / "scan_0001").resolve()] == Path("2019")
