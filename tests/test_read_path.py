"""``status`` and ``people list`` read their numbers as SQL text (``photokit.db.reader``): stdlib sqlite3 on a
current SQLite library, SQLAlchemy otherwise. Whatever runs the SQL, the numbers must be those the ORM reads
from the same rows, on SQLite and on PostgreSQL, also while another process writes (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from photokit.db import migrate, open_database
from photokit.db.models import (
    DismissedSuggestion,
    Face,
    LibraryInfo,
    Person,
    Photo,
    PhotoLocation,
    ScanRun,
    SkippedFile,
)
from photokit.db.reader import OpenLibrary, SessionReader, SqliteReader, read_library
from photokit.db.session import display_url
from photokit.faces import listing
from photokit.faces import people as people_module
from photokit.settings import Settings
from photokit.status import collect_status

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def library(request, tmp_path) -> Settings:
    """An empty, migrated library: a SQLite file in a folder whose name needs quoting in a URL, or a fresh
    PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'my lib ä' / 'library.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    settings = Settings.load(home=tmp_path / "home", models=tmp_path / "models", db_url=url)
    open_database(settings).dispose()
    return settings


def _fill(settings: Settings) -> None:
    """A bit of everything status and people list count: every status, reason and kind of person."""
    db = open_database(settings)
    with db.session() as session:
        photos = [
            Photo(sha256=f"{i:064x}", size=1, format="JPEG", width=8, height=8, faces_status=status)
            for i, status in enumerate(["done", "done", "done", "pending", "failed", "done"])
        ]
        session.add_all(photos)
        session.flush()
        statuses = ["present", "present", "missing", "moved", "present", "missing", "present"]
        for i, status in enumerate(statuses):  # photo 0 has two files
            session.add(PhotoLocation(photo_id=photos[i % 6].id, path=f"/p/{i}.jpg", size=1, mtime_ns=1, status=status))
        for i, reason in enumerate(["corrupt", "corrupt", "empty"]):
            session.add(SkippedFile(path=f"/s/{i}", size=0, mtime_ns=1, reason=reason))
        session.add(ScanRun(started_at=datetime(2026, 1, 2, 3, 4, 5, 600000), roots=["/old"], summary={"new": 1}))
        session.add(
            ScanRun(started_at=datetime(2026, 2, 3, 4, 5, 6, 700000), finished_at=datetime(2026, 2, 3, 4, 6, 0),
                    roots=["/p", "/q ä"], summary={"new": 6, "interrupted": False, "nested": {"a": [1, 2]}})
        )  # fmt: skip
        people = [
            Person(name="Ann"),
            Person(name="Bob", ignored=True),
            Person(),  # unnamed, 3 faces: listed
            Person(),  # unnamed, 1 face: hidden unless --all
            Person(ignored=True),
        ]
        session.add_all(people)
        session.flush()
        owners = [0, 0, 0, 0, 1, 2, 2, 2, 3, 4, None, None]
        faces = []
        for i, owner in enumerate(owners):
            person_id = None if owner is None else people[owner].id
            faces.append(
                Face(
                    photo_id=photos[i % 4].id,
                    detector="mtcnn",
                    box=[0, 0, 4, 4],
                    score=0.9,
                    person_id=person_id,
                    descriptor_kind="facenet512" if i == 11 else "dlib128",  # a switch of kinds under way
                )
            )
        session.add_all(faces)
        session.flush()
        people[0].cover_face_id = faces[1].id
        session.add(DismissedSuggestion(kind="merge", person_id=people[2].id, other_person_id=people[3].id))
        session.add(DismissedSuggestion(kind="move", person_id=people[0].id, face_id=faces[5].id))
    db.dispose()


def _orm_counts(session: Session) -> dict:
    """What status counts, from ORM objects counted in Python (the independent answer)."""
    photos = session.scalars(select(Photo)).all()
    locations = session.scalars(select(PhotoLocation)).all()
    faces = session.scalars(select(Face)).all()
    people = session.scalars(select(Person)).all()
    runs = session.scalars(select(ScanRun)).all()
    last = max(runs, key=lambda run: run.id) if runs else None
    kind_row = session.get(LibraryInfo, "descriptor_kind")
    kind = kind_row.value if kind_row is not None else "dlib128"
    return {
        "library": {
            "photos": len(photos),
            "photos_present": len({loc.photo_id for loc in locations if loc.status == "present"}),
            "locations": {"present": 0, "missing": 0, "moved": 0} | Counter(loc.status for loc in locations),
            "skipped": dict(Counter(s.reason for s in session.scalars(select(SkippedFile)))),
            "last_scan": None
            if last is None
            else {
                "started_at": last.started_at.isoformat(timespec="seconds"),
                "finished_at": last.finished_at.isoformat(timespec="seconds") if last.finished_at else None,
                "roots": last.roots,
                "summary": last.summary,
            },
        },
        "faces": {
            "faces": len(faces),
            "assigned": sum(f.person_id is not None for f in faces),
            "unassigned": sum(f.person_id is None for f in faces),
            "photos": {"pending": 0, "done": 0, "failed": 0} | Counter(p.faces_status for p in photos),
            "descriptor": kind,
            "described": sum(f.descriptor_kind == kind for f in faces),
        },
        "people": {
            "named": sum(not p.ignored and p.name is not None for p in people),
            "unnamed": sum(not p.ignored and p.name is None for p in people),
            "ignored": sum(bool(p.ignored) for p in people),
        },
    }


def _orm_people(session: Session, include_all: bool) -> list[dict]:
    rows = [
        {
            "id": p.id,
            "name": p.name,
            "faces": len(p.faces),
            "photos": len({f.photo_id for f in p.faces}),
            "cover_face": p.cover_face_id,
            "ignored": bool(p.ignored),
        }
        for p in session.scalars(select(Person))
    ]
    shown = [r for r in rows if include_all or (not r["ignored"] and (r["name"] is not None or r["faces"] >= 3))]
    return sorted(shown, key=lambda r: (-r["faces"], r["id"]))


def _read(settings: Settings) -> tuple[type, dict, dict[bool, list[dict]], str | None, str]:
    with read_library(settings) as opened:
        status = collect_status(opened, settings)
        people = {flag: listing.list_people(opened.reader, include_all=flag) for flag in (False, True)}
        return type(opened.reader), status, people, opened.revision, opened.shown_url


def test_status_and_people_list_read_what_the_orm_reads(library):
    _fill(library)
    kind, status, people, revision, shown_url = _read(library)
    assert kind is (SqliteReader if library.db_url.startswith("sqlite") else SessionReader)
    assert shown_url == display_url(library.db_url)
    assert revision == migrate.script_head()
    db = open_database(library)
    with db.session(write=False) as session:
        expected = _orm_counts(session)
        for flag in (False, True):
            assert people[flag] == _orm_people(session, flag) == people_module.list_people(session, flag)
    db.dispose()
    assert {part: status[part] for part in expected} == expected
    assert status["people"] == {"named": 1, "unnamed": 2, "ignored": 2}  # the fill really has every kind
    assert [(p["name"], p["faces"]) for p in people[False]] == [("Ann", 4), (None, 3)]  # not the 1-face group


def test_suggestion_cache_token_is_the_same_through_sqlite3_and_the_orm(library, tmp_path):
    from photokit.faces.suggest import cached_suggestions

    _fill(library)
    cache = tmp_path / "suggestions.json"
    db = open_database(library)
    with db.session(write=False) as session:
        found = cached_suggestions(session, cache)  # computes and keeps them, keyed on the ORM's token
    with read_library(library) as opened:
        assert listing.cached_pending(opened.reader, cache) == found.pending
    with db.session() as session:
        session.scalars(select(Person).where(Person.name == "Ann")).one().name = "Anna"
    with read_library(library) as opened:
        assert listing.cached_pending(opened.reader, cache) is None  # a writer changed the state: stale
    db.dispose()


def test_an_old_schema_is_migrated_first_then_read_with_sqlite3(tmp_path):
    settings = Settings.load(home=tmp_path, models=tmp_path / "models", db_url=f"sqlite:///{tmp_path / 'lib.db'}")
    db = open_database(settings)
    migrate.downgrade(db.engine, "-1")
    db.dispose()
    assert _read(settings)[0] is SessionReader  # through open_database, which migrates
    kind, _status, _people, revision, _url = _read(settings)
    assert kind is SqliteReader and revision == migrate.script_head()


WRITER = """
import sys
import time
from photokit.db import open_database
from photokit.db.models import Face, Person, Photo, PhotoLocation
from photokit.settings import Settings

db = open_database(Settings.load(db_url=sys.argv[1]))
for i in range(int(sys.argv[2])):
    with db.session() as session:  # one transaction: a photo, its file, a person and three faces
        photo = Photo(sha256=f"w{i:063x}", size=1, format="JPEG", width=8, height=8, faces_status="done")
        person = Person(name=f"w{i}" if i % 2 else None, ignored=i % 5 == 0)
        session.add_all([photo, person])
        session.flush()
        session.add(PhotoLocation(photo_id=photo.id, path=f"/w/{i}.jpg", size=1, mtime_ns=1))
        for j in range(3):
            owner = person.id if j < 2 else None
            session.add(Face(photo_id=photo.id, detector="hog", box=[0, 0, 1, 1], score=1.0, person_id=owner))
    time.sleep(0.005)
db.dispose()
"""


def _consistent(status: dict, everyone: list[dict]) -> None:
    """Relations between numbers from different queries: they hold in every committed state, so a reader
    that mixed two states (no single snapshot) would break them while the writer runs."""
    assert sum(p["faces"] for p in everyone) == status["faces"]["assigned"]
    assert len(everyone) == sum(status["people"].values())
    assert sum(status["faces"]["photos"].values()) == status["library"]["photos"]


def test_reads_one_snapshot_while_another_process_writes(library):
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, library.db_url, "150"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = set()
    db = open_database(library)
    snapshot = (
        {"photokit_read_only": True} if db.engine.dialect.name == "sqlite" else {"isolation_level": "REPEATABLE READ"}
    )
    try:
        while writer.poll() is None:
            _kind, status, people, _rev, _url = _read(library)
            _consistent(status, people[True])
            seen.add(status["library"]["photos"])
            # The same SQL and the ORM's own answer, in one snapshot taken by SQLAlchemy:
            with db.engine.connect().execution_options(**snapshot) as conn, conn.begin(), Session(bind=conn) as session:
                same = collect_status(OpenLibrary(SessionReader(conn), "", None), library)
                assert {part: same[part] for part in ("library", "faces", "people")} == _orm_counts(session)
                assert listing.list_people(SessionReader(conn), True) == _orm_people(session, True)
    finally:
        _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert len(seen) >= 3, seen  # the reads really happened while the writer wrote
    _kind, status, people, _rev, _url = _read(library)
    with db.session(write=False) as session:
        assert {part: status[part] for part in ("library", "faces", "people")} == _orm_counts(session)
        assert people[True] == _orm_people(session, True)
    db.dispose()
