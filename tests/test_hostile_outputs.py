"""Outputs and paths: enhance never replaces an existing file without --force; ``--out`` may be the album
itself; an empty path is refused rather than read as "this folder" (issue 16, items 5 and 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.restore.batch import collect_sources, run_batch
from photokit.restore.options import EnhanceOptions
from tests.test_restore_album_outputs import _WritingEnhancer

runner = CliRunner()


def _jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(path)
    return path


def test_enhance_never_replaces_an_existing_output_without_force(settings, tmp_path):
    from photokit.db import open_database

    album = tmp_path / "album"
    _jpeg(album / "a.jpg")
    mine = album / "a_restored.jpg"
    mine.write_text("the user's own file")
    db = open_database(settings)
    try:
        summary = run_batch(db, [album], _WritingEnhancer(EnhanceOptions()))
        assert mine.read_text() == "the user's own file"
        assert summary.done[0]["output"] == str(album / "a_restored_1.jpg")
        assert any("a_restored.jpg already exists" in w for w in summary.done[0]["warnings"])

        again = run_batch(db, [album], _WritingEnhancer(EnhanceOptions()))  # same batch: its own output is done
        assert [item["output"] for item in again.already_done] == [str(album / "a_restored_1.jpg")]

        other = run_batch(db, [album], _WritingEnhancer(EnhanceOptions(steps=7)))  # an earlier result stays too
        assert other.done[0]["output"] == str(album / "a_restored_2.jpg")
        assert (album / "a_restored_1.jpg").read_text() == str((album / "a.jpg").resolve())

        forced = run_batch(db, [album], _WritingEnhancer(EnhanceOptions(steps=8)), force=True)
        assert forced.done[0]["output"] == str(mine)  # --force: the preferred name, replaced
    finally:
        db.dispose()


def test_out_may_be_the_album_itself_but_an_output_folder_inside_it_is_not_read(tmp_path):
    album = tmp_path / "album"
    a = _jpeg(album / "a.jpg")
    _jpeg(album / "results" / "old.jpg")
    assert set(collect_sources([album], out_dir=album)) == {a.resolve(), (album / "results" / "old.jpg").resolve()}
    assert set(collect_sources([album], out_dir=album / "results")) == {a.resolve()}
    assert set(collect_sources([album], out_dir=tmp_path)) == {a.resolve(), (album / "results" / "old.jpg").resolve()}


def test_outputs_under_a_free_name_are_not_inputs_of_the_next_run(tmp_path):
    album = tmp_path / "album"
    a = _jpeg(album / "a.jpg")
    for name in ("a_restored.jpg", "a_restored_1.jpg", "a_restored_12.png", "b_restored_3.jpg"):
        _jpeg(album / name)
    keep = [_jpeg(album / name) for name in ("a_restored_x.jpg", "restored_1.jpg", "a_1.jpg")]  # not photokit's
    assert set(collect_sources([album], out_dir=album)) == {a.resolve(), *(k.resolve() for k in keep)}
    assert set(collect_sources([album], suffix="")) == {p.resolve() for p in album.iterdir()}


def test_empty_paths_are_refused_not_read_as_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _jpeg(tmp_path / "a.jpg")
    for command in (["scan", "", "--no-faces"], ["enhance", ""], ["scan", str(tmp_path), " "]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert result.stderr.startswith("error: an empty path"), result.stderr
