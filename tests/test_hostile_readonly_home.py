"""A PHOTOKIT_HOME this user may read but not write (issue 16, item 13): a library on read-only media, a
colleague's library, an archived copy. Reading commands work; changing commands fail in one line, changing
nothing. The CLI runs in a subprocess that really cannot write: as root (where CI runs, and where chmod blocks
nothing) ``setpriv`` drops the capabilities that override file permissions; as anyone else chmod is enough.
An unprivileged user would not do: the interpreter may live under /root (pyenv), which nobody else can reach."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, scan_faces_library, shared_path, sqlite_only

pytestmark = sqlite_only("a read-only home is about the SQLite file in it")

DROP_WRITE_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]
WRITER_NAME = "Name only in the WAL"


def bound_by_permissions(*command: str) -> list[str]:
    """``command`` as a process that file permissions bind (root's override dropped)."""
    if os.geteuid() != 0:
        return list(command)
    if shutil.which("setpriv") is None:
        pytest.skip("running as root, and setpriv (util-linux) is missing to make file permissions bind")
    return [*DROP_WRITE_OVERRIDE, *command]


def as_reader(home: Path, *args: object) -> subprocess.CompletedProcess:
    """``photokit ARGS`` run by a process that may read ``home`` but, once it is read-only, not write it."""
    env = os.environ | {"PHOTOKIT_HOME": str(home), "PHOTOKIT_MODELS": str(home / "models"), "PYTHONPATH": str(ROOT)}
    env.pop("PHOTOKIT_DB_URL", None)
    command = bound_by_permissions(sys.executable, "-m", "photokit", *(str(a) for a in args))
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def set_writable(tree: Path, writable: bool) -> None:
    for path in [tree, *tree.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _add_prior(settings, person_id: int, face_ids: list[int]) -> None:
    """A random-weight 'ffhq-256' copied into the store (no install record) and a stored prior for the person."""
    from photokit.prior.adapters import FullDelta
    from photokit.prior.meta import FORMAT, prior_dir
    from photokit.prior.storage import save_prior
    from photokit.store.catalog import catalog_entry
    from photokit.store.models import ModelStore
    from photokit.stylegan2 import generator_fingerprint, save_generator
    from photokit.stylegan2.network import build_tiny_generator

    G = build_tiny_generator(resolution=16, channels=8, seed=3)
    path = ModelStore(settings).target_path(catalog_entry("ffhq-256"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_generator(G, path)  # as if copied in by hand: `models list` hashes it and would record the hash
    with torch.no_grad():
        anchors = G.mapping(torch.randn(len(face_ids), G.z_dim, generator=torch.Generator().manual_seed(1)))[:, 0]
    meta = {
        "format": FORMAT,
        "person_id": person_id,
        "person_name": None,
        "base": {"name": "ffhq-256", "fingerprint": generator_fingerprint(G)},
        "loss": {"kind": "mse"},
        "references": [{"index": i, "face_id": f} for i, f in enumerate(face_ids)],
        "tuning": {"kind": "full"},
    }
    save_prior(prior_dir(settings, person_id), anchors, FullDelta(G.synthesis).stored_tensors(torch.float16), meta)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A scanned library (one person, named, with a prior), its home made read-only: (home, album, person id)."""
    from sqlalchemy import func, select

    from photokit.db.models import Face, Person

    album = tmp_path_factory.mktemp("album")
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg"):
        shutil.copy(shared_path("data", "faces", "face_recognition", name), album / name)
    home = tmp_path_factory.mktemp("readonly_home")
    scanned = scan_faces_library(home, [album])
    with scanned.db.session() as session:
        person_id = session.scalars(
            select(Face.person_id)
            .where(Face.person_id.is_not(None))
            .group_by(Face.person_id)
            .order_by(func.count().desc())
        ).first()
        assert person_id is not None, "the three photos of one man make no person"
        session.get(Person, person_id).name = "Barack"
        face_ids = list(session.scalars(select(Face.id).where(Face.person_id == person_id)))
    scanned.db.dispose()
    _add_prior(scanned.settings, person_id, face_ids)
    set_writable(home, False)
    try:
        probe = bound_by_permissions(sys.executable, "-c", f"open({str(home / 'library.db')!r}, 'r+b')")
        assert subprocess.run(probe, capture_output=True).returncode != 0, "the reader could write the library"
        yield home, album, person_id
    finally:
        set_writable(home, True)


@pytest.fixture
def writer_running(library):
    """Another photokit (its owner's) is writing: the -wal and -shm files exist, with a change not yet
    checkpointed into library.db. A read-only reader must see it (``immutable=1`` would not)."""
    home, _, person_id = library
    set_writable(home, True)
    conn = sqlite3.connect(home / "library.db", isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("UPDATE people SET name = ? WHERE id = ?", (WRITER_NAME, person_id))
    set_writable(home, False)
    assert (home / "library.db-wal").stat().st_size > 0
    yield
    set_writable(home, True)
    conn.execute("UPDATE people SET name = 'Barack' WHERE id = ?", (person_id,))
    conn.close()
    set_writable(home, False)


def _json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def test_reading_commands_work_on_a_read_only_home(library):
    home, _, person_id = library
    before = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
    status = _json(as_reader(home, "status", "--json"))
    assert status["library"]["photos"] == 3 and status["people"]["named"] == 1
    people = _json(as_reader(home, "people", "list", "--json"))
    assert [(p["id"], p["name"]) for p in people] == [(person_id, "Barack")]
    shown = _json(as_reader(home, "people", "show", "Barack", "--json"))
    assert shown["id"] == person_id and shown["faces"] == len(shown["face_list"]) >= 3
    assert shown["edit_directions"]["prior"] is True
    assert set(_json(as_reader(home, "people", "suggest", "--json"))) >= {"merges", "moves"}
    assert [p["person_id"] for p in _json(as_reader(home, "prior", "list", "--json"))] == [person_id]
    assert _json(as_reader(home, "prior", "show", person_id, "--json"))["person_id"] == person_id
    models = {m["name"]: m for m in _json(as_reader(home, "models", "list", "--json"))["models"]}
    assert models["ffhq-256"]["installed"] and len(models["ffhq-256"]["sha256"]) == 64  # hashed, not recorded
    current = _json(as_reader(home, "db", "current", "--json"))
    assert current["current"] == current["head"] is not None
    table = as_reader(home, "people", "list")
    assert table.returncode == 0 and "Barack" in table.stdout, table.stderr
    assert {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()} == before


def test_a_read_only_reader_sees_what_a_running_writer_has_not_checkpointed(library, writer_running):
    home, _, person_id = library
    assert [p["name"] for p in _json(as_reader(home, "people", "list", "--json"))] == [WRITER_NAME]
    assert _json(as_reader(home, "people", "show", person_id, "--json"))["name"] == WRITER_NAME
    assert _json(as_reader(home, "status", "--json"))["people"]["named"] == 1


def test_changing_commands_fail_in_one_line_and_change_nothing(library, tmp_path):
    home, album, person_id = library
    before = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
    out = tmp_path / "restored"
    for args in (
        ["people", "name", person_id, "Obama"],
        ["people", "ignore", person_id],
        ["scan", album],
        ["faces", "detect"],
        ["enhance", album / "obama.jpg", "--out", out],
        ["prior", "remove", person_id, "--yes"],
        ["serve", "--no-open", "--port", "0"],
    ):
        result = as_reader(home, *args)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
        assert len(errors) == 1 and "nothing was" in errors[0], (args, result.stderr)
    assert not out.exists()
    assert {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()} == before
    assert (home / "priors" / f"person_{person_id}").is_dir()


def test_a_home_that_cannot_be_created_is_a_one_line_error(tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    set_writable(parent, False)
    try:
        result = as_reader(parent / "home", "status")
    finally:
        set_writable(parent, True)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"cannot create {parent / 'home'}" in errors[0], errors[0]


def test_a_read_only_library_that_needs_an_upgrade_says_so(library, tmp_path):
    home, _, _ = library
    older = tmp_path / "older"
    older.mkdir()
    shutil.copy(home / "library.db", older / "library.db")
    conn = sqlite3.connect(older / "library.db")
    conn.execute("UPDATE alembic_version SET version_num = '0007'")
    conn.commit()
    conn.close()
    set_writable(older, False)
    try:
        result = as_reader(older, "status")
    finally:
        set_writable(older, True)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "schema upgrade" in errors[0] and "read-only" in errors[0], errors[0]
