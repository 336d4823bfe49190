"""Adding photos to a scanned library: new faces are assigned, the user's decisions stay put.

Also: `faces detect --redo` keeps face ids. Real photos from ../shared/data/faces/face_recognition.
"""

from __future__ import annotations

import json
import shutil

from sqlalchemy import select
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.db.models import Face, Person, PhotoLocation
from photokit.faces.assignment import recluster
from photokit.faces.cluster_config import ClusterConfig
from photokit.faces.people import merge_people, name_person
from photokit.faces.pipeline import process_pending_photos
from tests.conftest import scan_faces_library, shared_path


def _faces_by_file(db) -> dict[str, list[Face]]:
    with db.session() as session:
        rows = session.execute(select(PhotoLocation.path, PhotoLocation.photo_id)).all()
        faces = session.scalars(select(Face)).all()
    names = {pid: path.rsplit("/", 1)[-1] for path, pid in rows}
    out: dict[str, list[Face]] = {}
    for face in faces:
        out.setdefault(names[face.photo_id], []).append(face)
    return {k: sorted(v, key=lambda f: -f.size_px) for k, v in out.items()}


def test_adding_photos_keeps_merge_and_names(tmp_path):
    source = shared_path("data", "faces", "face_recognition")
    album = tmp_path / "album"
    album.mkdir()
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        shutil.copy(source / name, album / name)
    library = scan_faces_library(tmp_path / "home", [album])
    db = library.db
    try:
        # Make every face its own person (as a too-strict clustering would), then the user fixes it up.
        with db.session() as session:
            recluster(session, ClusterConfig(max_distance=0.01, min_faces=1))
        faces = _faces_by_file(db)
        first = {name: faces[name][0].id for name in faces}
        with db.session() as session:
            people = {name: session.get(Face, fid).person for name, fid in first.items()}
            assert len({p.id for p in people.values()}) == 4
            barack = merge_people(session, people["obama.jpg"], people["obama2.jpg"])
            name_person(session, barack, "Barack")
            name_person(session, people["biden.jpg"], "Joe")
            barack_id, joe_id = barack.id, people["biden.jpg"].id

        for name in ("obama-480p.jpg", "biden2.jpg", "two_people.jpg"):
            shutil.copy(source / name, album / name)
        from photokit.library.scan import scan_library

        scan_library(db, [str(album)])
        summary = process_pending_photos(db, device="cpu")
        assert summary.done == 3 and summary.failed == 0

        faces = _faces_by_file(db)
        with db.session() as session:
            barack, joe = session.get(Person, barack_id), session.get(Person, joe_id)
            assert barack.name == "Barack" and joe.name == "Joe"
            # the merge stands: both photos' faces are Barack's, by the user's decision
            for name in ("obama.jpg", "obama2.jpg"):
                face = session.get(Face, first[name])
                assert face.person_id == barack_id and face.assigned_by == "user"
            assert session.get(Face, first["biden.jpg"]).person_id == joe_id
            obama_people = {session.get(Face, first[n]).person_id for n in ("obama.jpg", "obama3.jpg")}
        # new faces were assigned: Biden's to Joe, Obama's to an Obama person, one of each in two_people.jpg
        assert faces["biden2.jpg"][0].person_id == joe_id
        assert faces["obama-480p.jpg"][0].person_id in obama_people
        two = sorted(f.person_id for f in faces["two_people.jpg"] if f.person_id is not None)
        assert len(two) == 2 and joe_id in two and (set(two) - {joe_id}) <= obama_people
    finally:
        db.dispose()


def test_redo_detection_keeps_face_ids_and_user_decisions(tmp_path):
    source = shared_path("data", "faces", "face_recognition")
    album = tmp_path / "album"
    album.mkdir()
    for name in ("two_people.jpg", "biden.jpg"):
        shutil.copy(source / name, album / name)
    library = scan_faces_library(tmp_path / "home", [album])
    db = library.db
    try:
        before = _faces_by_file(db)
        ids_before = sorted(f.id for fs in before.values() for f in fs)
        person_before = {f.id: f.person_id for fs in before.values() for f in fs}
        pinned = max(before["two_people.jpg"], key=lambda f: f.box[0])  # Biden, also in biden.jpg
        # The user pins the face; it must survive even if a detector no longer finds it.
        runner = CliRunner()
        env = {"PHOTOKIT_HOME": str(library.settings.home), "PHOTOKIT_MODELS": str(library.settings.models_dir)}
        env["PHOTOKIT_DB_URL"] = library.settings.db_url  # the library's database (also on the PostgreSQL pass)
        result = runner.invoke(app, ["people", "move", str(pinned.id), "--to", str(pinned.person_id)], env=env)
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["faces", "detect", "--redo", "--device", "cpu", "--json"], env=env)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["done"] == 2 and summary["kept"] == len(ids_before) and summary["added"] == 0
        after = _faces_by_file(db)
        assert sorted(f.id for fs in after.values() for f in fs) == ids_before
        assert {f.id: f.person_id for fs in after.values() for f in fs} == person_before

        # Detection at a tiny size finds nothing: automatic faces go, the user's pinned face stays.
        result = runner.invoke(app, ["faces", "detect", "--redo", "--max-side", "30", "--json"], env=env)
        assert result.exit_code == 0, result.output
        left = _faces_by_file(db)
        remaining = [f.id for fs in left.values() for f in fs]
        assert remaining == [pinned.id]
    finally:
        db.dispose()
