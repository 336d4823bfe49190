"""Hostile file and person names: non-UTF-8 file names are indexed losslessly; rich markup in user data is
printed as text, never interpreted (issue 16, items 1 and 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.pathtext import from_db, shown, to_db

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def write_jpeg(path: Path | bytes, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    with open(path, "wb") as fh:
        Image.fromarray(pixels).save(fh, format="JPEG")


def photokit(*args: str, env_home: Path, check: bool = True) -> subprocess.CompletedProcess:
    """The real CLI in a child process: a real UTF-8 stdout, no test runner's forgiving capture."""
    env = dict(os.environ, PHOTOKIT_HOME=str(env_home), PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "photokit", *args], capture_output=True, text=True, env=env, timeout=300
    )
    if check:
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.parametrize(
    "path",
    ["/a/plain.jpg", "/a/b\\c.jpg", "/a/\udcff\udcfe.jpg", "/a/x\\xff.jpg", "/a/\\\\\udc80", "/é/ü.jpg", ""],
)
def test_path_text_round_trips(path):
    stored = to_db(path)
    stored.encode("utf-8")  # storable in SQLite and PostgreSQL text
    assert "\x00" not in stored
    assert from_db(stored) == path


def test_shown_escapes_undecodable_bytes_only():
    assert shown("/a/\udcff.jpg") == "/a/\\xff.jpg"
    assert shown("/é/a.jpg") == "/é/a.jpg"


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse non-UTF-8 names")
def test_a_non_utf8_file_name_is_indexed_and_enhanced(tmp_path):
    album = tmp_path / "album"
    album.mkdir()
    bad = os.fsencode(album) + b"/caf\xe9-\xff.jpg"  # Latin-1 bytes: not UTF-8
    write_jpeg(bad, 1)
    for i in range(3):
        write_jpeg(album / f"ok{i}.jpg", 10 + i)
    home = tmp_path / "home"

    summary = json.loads(photokit("scan", str(album), "--no-faces", "--json", env_home=home).stdout)
    assert summary["new"] == 4 and summary["skipped_total"] == 0, summary
    again = json.loads(photokit("scan", str(album), "--no-faces", "--json", env_home=home).stdout)
    assert again["unchanged"] == 4 and again["new"] == 0, again

    from photokit.db import open_database
    from photokit.db.models import PhotoLocation
    from photokit.settings import Settings

    db = open_database(Settings.load(home=home))
    with db.session() as session:
        paths = set(session.scalars(select(PhotoLocation.path)))
    db.dispose()
    assert os.fsdecode(bad) in paths  # the very bytes, back
    assert Path(os.fsdecode(bad)).is_file()

    out = tmp_path / "out"
    # Random-pixel photos have no faces: every photo is "skipped: no faces" (exit 1), none failed or crashed.
    result = photokit("enhance", str(album), "--out", str(out), "--json", env_home=home, check=False)
    doc = json.loads(result.stdout)
    assert (doc["failed"], doc["skipped"]) == (0, 4), doc
    assert {os.fsencode(item["source"]) for item in doc["skipped_photos"]} >= {bad}  # lossless in JSON too
    human = photokit("enhance", str(album), "--out", str(out), env_home=home, check=False)
    assert "caf\\xe9-\\xff.jpg: skipped" in human.stdout, human.stdout


def _tiny_library_with_person(home: Path, tmp_path: Path, folder_name: str, person_name: str | None) -> int:
    """A library whose one person has one face in a photo under ``folder_name`` (rows written directly:
    this test is about printing, not detection)."""
    from photokit.db import open_database
    from photokit.db.models import Face, Person, Photo, PhotoLocation
    from photokit.settings import Settings

    folder = tmp_path / folder_name
    folder.mkdir(parents=True)
    photo_path = folder / "[red]a.jpg"
    write_jpeg(photo_path, 3)
    db = open_database(Settings.load(home=home))
    with db.session() as session:
        photo = Photo(sha256="0" * 64, size=1, format="JPEG", width=32, height=24, faces_status="done")
        session.add(photo)
        session.flush()
        session.add(PhotoLocation(photo_id=photo.id, path=str(photo_path), size=1, mtime_ns=1))
        person = Person(name=person_name)
        session.add(person)
        session.flush()
        session.add(
            Face(
                photo_id=photo.id,
                detector="hog",
                box=[1, 1, 20, 20],
                score=1.0,
                person_id=person.id,
                assigned_by="user",
                size_px=19.0,
            )
        )
        person_id = person.id
    db.dispose()
    return person_id


def test_markup_in_paths_and_names_is_printed_as_text(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PHOTOKIT_HOME", str(home))
    person_id = _tiny_library_with_person(home, tmp_path, "x[/x]", "[bold]Ann[/bold]")
    from photokit.cli.common import console

    monkeypatch.setattr(console, "_width", 400)  # one table row per line, whatever the terminal
    result = runner.invoke(app, ["people", "show", str(person_id)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "x[/x]/[red]a.jpg" in result.stdout
    assert "[bold]Ann[/bold]" in result.stdout

    result = runner.invoke(app, ["people", "name", str(person_id), "[/]"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "'[/]'" in result.stderr
    listed = runner.invoke(app, ["people", "list", "--all"])
    assert listed.exit_code == 0 and "[/]" in listed.stdout, listed.output


def test_notes_and_json_print_user_data_as_it_is(capsys):
    from photokit.cli.common import note, print_json

    note("warning: could not read folder /a/[/x] locked/\udcff")  # rich would raise MarkupError on [/x]
    assert "/a/[/x] locked/\\xff" in capsys.readouterr().err
    print_json({"path": "/a/\udcff.jpg", "loss": float("nan")})
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"path": "/a/\udcff.jpg", "loss": None}  # lossless path, strict JSON
