"""Alembic migrations: one head, old databases upgrade without losing rows, schema == ORM metadata."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from photokit.db import migrate, open_database
from photokit.db.models import Base, Photo, PhotoLocation, ScanRun, SkippedFile
from photokit.db.session import create_db_engine
from tests.conftest import testing_on_postgres as on_postgres


@pytest.fixture
def engine(settings):
    eng = create_db_engine(settings.db_url)
    yield eng
    eng.dispose()


def test_there_is_exactly_one_head(engine):
    script = ScriptDirectory.from_config(migrate.alembic_config(engine))
    assert len(script.get_heads()) == 1
    assert migrate.head_revision(engine) == script.get_heads()[0]


def test_open_database_migrates_a_new_file_to_head(settings):
    db = open_database(settings)
    try:
        assert db.current_revision() == migrate.head_revision(db.engine)
        tables = set(sa.inspect(db.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    finally:
        db.dispose()


def test_database_at_first_revision_upgrades_to_head_keeping_rows(engine):
    migrate.upgrade(engine, "0001")
    assert migrate.current_revision(engine) == "0001"
    now = datetime(2020, 5, 17, 10, 0, 0)
    with engine.begin() as conn:  # rows written with the 0001 schema only (no ORM: it knows the newest one)
        conn.execute(
            sa.text(
                "INSERT INTO photos (id, sha256, size, format, width, height, orientation, taken_at, camera_make, "
                "camera_model, created_at, faces_status) VALUES (7, :sha, 1234, 'jpeg', 640, 480, 6, :now, 'Canon', "
                "'EOS', :now, 'pending')"
            ),
            {"sha": "ab" * 32, "now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO photo_locations (photo_id, path, size, mtime_ns, status, first_seen, last_seen, "
                "missing_since, moved_from) VALUES (7, '/photos/a.jpg', 1234, 99, 'present', :now, :now, NULL, NULL), "
                "(7, '/photos/old/a.jpg', 1234, 98, 'missing', :now, :now, :now, NULL)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO skipped_files (path, size, mtime_ns, reason, detail, last_seen) "
                "VALUES ('/photos/x.png', 3, 5, 'not_image', NULL, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO scan_runs (started_at, finished_at, roots, summary) "
                "VALUES (:now, :now, '[\"/photos\"]', '{\"new\": 1}')"
            ),
            {"now": now},
        )

    migrate.upgrade(engine)

    assert migrate.current_revision(engine) == migrate.head_revision(engine) != "0001"
    with sa.orm.Session(engine) as s:
        photo = s.get(Photo, 7)
        assert (photo.sha256, photo.width, photo.height, photo.orientation, photo.taken_at) == (
            "ab" * 32,
            640,
            480,
            6,
            now,
        )
        assert sorted((loc.path, loc.status) for loc in photo.locations) == [
            ("/photos/a.jpg", "present"),
            ("/photos/old/a.jpg", "missing"),
        ]
        assert s.scalars(sa.select(SkippedFile.reason)).all() == ["not_image"]
        run = s.scalars(sa.select(ScanRun)).one()
        assert run.roots == ["/photos"] and run.summary == {"new": 1}
        assert s.scalar(sa.select(sa.func.count()).select_from(PhotoLocation)) == 2


def test_schema_from_migrations_matches_orm_metadata(engine):
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back(engine):
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert not set(Base.metadata.tables) & set(sa.inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)


def test_schema_comparison_notices_a_drift(engine):
    """The comparison above is live: an ORM column the migrations never created is reported."""
    migrate.upgrade(engine)
    drifted = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    sa.Table("photos", drifted, sa.Column("rating", sa.Integer(), nullable=True), extend_existing=True)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), drifted)
    assert [d[0] for d in diff] == ["add_column"] and diff[0][3].name == "rating"


def test_schema_changes_are_transactional_on_sqlite(engine):
    """An interrupted migration must not leave half a schema (sqlite3 alone would autocommit the DDL)."""
    with pytest.raises(KeyboardInterrupt), engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        raise KeyboardInterrupt
    assert "half_done" not in sa.inspect(engine).get_table_names()


def test_every_library_gets_its_own_id(settings, tmp_path, request):
    from photokit.settings import Settings

    first = open_database(settings)
    other_url = request.getfixturevalue("pg_url") if on_postgres() else None
    other = open_database(Settings.load(home=tmp_path / "other", db_url=other_url))
    try:
        assert len(first.library_id()) == 32 and first.library_id() != other.library_id()
        assert first.library_id() == first.library_id()  # stable
    finally:
        first.dispose()
        other.dispose()


def test_descriptor_kind_migration_up_and_down(engine):
    """0010: existing descriptors are dlib's; going back forgets facenet ones (the old schema has no kind)."""
    migrate.upgrade(engine, "0009")
    now = datetime(2021, 1, 2, 3, 4, 5)
    dlib = bytes(4 * 128)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO photos (id, sha256, size, format, width, height, created_at, faces_status) "
                "VALUES (1, :sha, 10, 'jpeg', 64, 64, :now, 'done')"
            ),
            {"sha": "cd" * 32, "now": now},
        )
        conn.execute(
            sa.text("INSERT INTO people (id, name, ignored, created_at) VALUES (5, NULL, :f, :now)"),
            {"f": False, "now": now},
        )
        for face_id, embedding in ((1, dlib), (2, None), (3, dlib)):
            conn.execute(
                sa.text(
                    "INSERT INTO faces (id, photo_id, detector, box, score, embedding, size_px, is_gray, "
                    "person_id, assigned_by, user_rejected, created_at) VALUES (:id, 1, 'mtcnn', '[0, 0, 9, 9]', "
                    "0.99, :emb, 80, :f, 5, 'auto', :f, :now)"
                ),
                {"id": face_id, "emb": embedding, "f": False, "now": now},
            )
    migrate.upgrade(engine, "0010")
    with engine.begin() as conn:
        kinds = dict(conn.execute(sa.text("SELECT id, descriptor_kind FROM faces")).all())
        assert kinds == {1: "dlib128", 2: "dlib128", 3: "dlib128"}  # every face so far was described by dlib
        conn.execute(
            sa.text("UPDATE faces SET descriptor_kind = 'facenet512', embedding = :emb WHERE id = 3"),
            {"emb": bytes(4 * 512)},
        )
    migrate.downgrade(engine, "0009")
    with engine.begin() as conn:
        rows = {
            r[0]: r[1:] for r in conn.execute(sa.text("SELECT id, embedding, person_id, cluster_exclusion FROM faces"))
        }
    assert "descriptor_kind" not in {c["name"] for c in sa.inspect(engine).get_columns("faces")}
    assert bytes(rows[1][0]) == dlib and rows[1][1] == 5  # dlib faces untouched
    assert rows[3] == (None, None, "no_embedding")  # a 512-D descriptor the old schema cannot read: forgotten
    migrate.upgrade(engine, "head")
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
