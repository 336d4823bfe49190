"""`photokit people ...` on a small synthetic library: curation, and that clustering never undoes it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.db import open_database
from photokit.db.models import Face, Person, Photo, PhotoLocation
from photokit.faces.align import FaceAlignment
from photokit.faces.assignment import cluster_faces
from photokit.faces.people import embedding_to_bytes

runner = CliRunner()


def _invoke(*args):
    result = runner.invoke(app, list(args))
    return result


def _identity(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128)
    return 0.6 * v / np.linalg.norm(v)


def _jitter(centre: np.ndarray, seed: int, spread: float = 0.12) -> np.ndarray:
    n = np.random.default_rng(1000 + seed).normal(size=128)
    return (centre + spread * n / np.linalg.norm(n)).astype(np.float32)


@pytest.fixture
def library(settings, tmp_path):
    """6 photos of A, 4 of B, 3 of C, 1 stranger X; clustered. Returns (db, {label: [face ids]})."""
    db = open_database(settings)
    faces: dict[str, list[int]] = {"A": [], "B": [], "C": [], "X": []}
    centres = {"A": _identity(1), "B": _identity(2), "C": _identity(4), "X": _identity(3)}
    with db.session() as session:
        k = 0
        for label, count in (("A", 6), ("B", 4), ("C", 3), ("X", 1)):
            for _ in range(count):
                k += 1
                path = tmp_path / f"p{k}.png"
                Image.fromarray(np.full((200, 200, 3), 40 * (k % 6), np.uint8)).save(path)
                photo = Photo(sha256=f"{k:064d}", size=1, format="png", width=200, height=200, faces_status="done")
                photo.locations.append(PhotoLocation(path=str(path), size=1, mtime_ns=0, status="present"))
                face = Face(
                    detector="mtcnn",
                    box=[50, 50, 150, 150],
                    score=0.99,
                    size_px=100.0,
                    blur=10.0,
                    embedding=embedding_to_bytes(_jitter(centres[label], k)),
                    user_rejected=False,
                    alignment=FaceAlignment((100.0, 100.0), (60.0, 0.0), (0.0, 60.0)).to_json(),
                )
                photo.faces.append(face)
                session.add(photo)
                session.flush()
                faces[label].append(face.id)
        cluster_faces(session)
    yield db, faces
    db.dispose()


def _person_of(db, face_id):
    with db.session() as session:
        return session.get(Face, face_id).person_id


def test_clustering_found_the_two_people(library):
    db, faces = library
    a = {_person_of(db, f) for f in faces["A"]}
    b = {_person_of(db, f) for f in faces["B"]}
    assert len(a) == 1 and len(b) == 1 and a != b and None not in a | b
    assert _person_of(db, faces["X"][0]) is None


def test_list_json_hides_small_unnamed_groups_unless_all(library):
    db, faces = library
    person_b = _person_of(db, faces["B"][0])
    result = _invoke("people", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert sorted(r["faces"] for r in rows) == [3, 4, 6]
    assert all(set(r) >= {"id", "name", "faces", "photos", "cover_face"} for r in rows)
    assert _invoke("people", "move", *map(str, faces["C"][:2]), "--to", str(person_b)).exit_code == 0
    rows = json.loads(_invoke("people", "list", "--json").stdout)
    assert sorted(r["faces"] for r in rows) == [6, 6]  # C (1 face left, unnamed) is hidden
    assert len(json.loads(_invoke("people", "list", "--json", "--all").stdout)) == 3
    _invoke("people", "ignore", str(person_b))
    shown = {r["id"] for r in json.loads(_invoke("people", "list", "--json").stdout)}
    everyone = {r["id"] for r in json.loads(_invoke("people", "list", "--json", "--all").stdout)}
    assert person_b not in shown and person_b in everyone


def test_name_then_resolve_by_name(library):
    db, faces = library
    person_a = _person_of(db, faces["A"][0])
    assert _invoke("people", "name", str(person_a), "Grandma Rose").exit_code == 0
    result = _invoke("people", "show", "grandma rose", "--json")
    assert result.exit_code == 0, result.output
    detail = json.loads(result.stdout)
    assert detail["id"] == person_a and detail["name"] == "Grandma Rose"
    assert sorted(f["id"] for f in detail["face_list"]) == sorted(faces["A"])
    assert all(f["path"].endswith(".png") and len(f["box"]) == 4 for f in detail["face_list"])


@pytest.mark.parametrize(
    "args",
    [
        ("people", "show", "Nobody"),
        ("people", "show", "999"),
        ("people", "name", "999", "X"),
        ("people", "merge", "1", "Nobody"),
        ("people", "move", "99999", "--to", "1"),
        ("people", "remove-face", "99999"),
        ("people", "ignore", "Nobody"),
        ("people", "sheet", "Nobody", "--out", "x.png"),
        ("people", "name", "1", "42"),
    ],
)
def test_unknown_people_and_faces_are_one_line_errors(library, args):
    result = _invoke(*args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output


def test_duplicate_name_is_refused(library):
    db, faces = library
    a, b = _person_of(db, faces["A"][0]), _person_of(db, faces["B"][0])
    assert _invoke("people", "name", str(a), "Ann").exit_code == 0
    result = _invoke("people", "name", str(b), "Ann")
    assert result.exit_code == 2 and "already named" in result.output


def test_manual_decisions_survive_recluster(library):
    db, faces = library
    a, b, c = (_person_of(db, faces[k][0]) for k in "ABC")
    # the user says: B's first face is really A; A's last face is nobody; B is "Bob"; C is left alone
    assert _invoke("people", "move", str(faces["B"][0]), "--to", str(a)).exit_code == 0
    assert _invoke("people", "remove-face", str(faces["A"][-1])).exit_code == 0
    assert _invoke("people", "name", str(b), "Bob").exit_code == 0
    result = _invoke("people", "recluster", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["released"] == len(faces["C"])  # only the untouched person was re-clustered
    assert _person_of(db, faces["B"][0]) == a
    assert _person_of(db, faces["A"][-1]) is None
    with db.session() as session:
        assert session.get(Person, b).name == "Bob"
        assert session.get(Face, faces["A"][-1]).user_rejected
        assert session.get(Face, faces["B"][0]).assigned_by == "user"
    assert {_person_of(db, f) for f in faces["A"][:-1]} == {a}
    assert {_person_of(db, f) for f in faces["B"][1:]} == {b}
    assert {_person_of(db, f) for f in faces["C"]} == {c}  # re-formed, under its old id


def _state(db) -> tuple[dict, set]:
    """(face id -> person id, person ids)."""
    with db.session() as session:
        return dict(session.execute(select(Face.id, Face.person_id)).all()), set(session.scalars(select(Person.id)))


def test_recluster_that_would_drop_most_people_is_refused_unless_forced(library):
    db, faces = library
    a = _person_of(db, faces["A"][0])
    assert _invoke("people", "name", str(a), "Ann").exit_code == 0
    before = _state(db)
    refused = _invoke("people", "recluster", "--max-distance", "0.05", "--json")
    assert refused.exit_code == 2 and refused.stdout == ""
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "remove 2 of the 2 people" in lines[0] and "--force" in lines[0], refused.output
    assert _state(db) == before  # nothing changed
    result = _invoke("people", "recluster", "--max-distance", "0.05", "--force", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed_people"] == 2
    assert {_person_of(db, f) for f in faces["A"]} == {a}  # named: kept whole
    assert {_person_of(db, f) for f in faces["B"] + faces["C"]} == {None}  # too far apart now


def test_recluster_keeps_a_person_with_a_prior_whole(library, settings):
    db, faces = library
    b, c = _person_of(db, faces["B"][0]), _person_of(db, faces["C"][0])
    folder = settings.priors_dir / f"person_{b}"
    folder.mkdir(parents=True)
    (folder / "prior.json").write_text("{}")  # only its presence counts here
    result = _invoke("people", "recluster", "--max-distance", "0.05", "--force", "--json")
    assert result.exit_code == 0, result.output
    assert {_person_of(db, f) for f in faces["B"]} == {b}  # its prior's person: kept, with every face
    assert {_person_of(db, f) for f in faces["C"]} == {None}
    people = _state(db)[1]
    assert b in people and c not in people


def test_recluster_ids_follow_the_old_people_the_new_groups_overlap(library):
    db, faces = library
    a, b = _person_of(db, faces["A"][0]), _person_of(db, faces["B"][0])
    with db.session() as session:  # as a stricter clustering left them: A in two pieces
        piece = Person()
        session.add(piece)
        session.flush()
        for f in faces["A"][4:]:
            session.get(Face, f).person_id = piece.id
        piece_id = piece.id
    result = _invoke("people", "recluster", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert {_person_of(db, f) for f in faces["A"]} == {a}  # the piece rejoined the larger part's id
    assert {_person_of(db, f) for f in faces["B"]} == {b}
    assert piece_id not in _state(db)[1] and stats["removed_people"] == 1 and stats["kept_ids"] == 3


def test_merge_keeps_target_and_marks_faces_as_the_users(library):
    db, faces = library
    a, b = _person_of(db, faces["A"][0]), _person_of(db, faces["B"][0])
    assert _invoke("people", "name", str(b), "Bea").exit_code == 0
    assert _invoke("people", "merge", str(a), "Bea").exit_code == 0
    with db.session() as session:
        assert session.get(Person, b) is None
        person = session.get(Person, a)
        assert person.name == "Bea"  # the unnamed target takes the merged person's name
        assert len(person.faces) == 10 and {f.assigned_by for f in person.faces} == {"user"}
        assert person.cover_face_id in {f.id for f in person.faces}
    assert _invoke("people", "recluster").exit_code == 0
    assert {_person_of(db, f) for f in faces["A"] + faces["B"]} == {a}
    assert _invoke("people", "merge", str(a), str(a)).exit_code == 2


def test_moving_the_last_face_removes_an_unnamed_person(library):
    db, faces = library
    a, b = _person_of(db, faces["A"][0]), _person_of(db, faces["B"][0])
    assert _invoke("people", "move", *map(str, faces["B"]), "--to", str(a)).exit_code == 0
    with db.session() as session:
        assert session.get(Person, b) is None
        assert len(session.get(Person, a).faces) == 10


def test_new_faces_never_join_a_face_the_user_rejected(library):
    db, faces = library
    x = faces["X"][0]
    assert _invoke("people", "remove-face", str(x)).exit_code == 0
    with db.session() as session:
        # a look-alike of the stranger arrives: the stranger's face stays rejected and unassigned
        photo = session.scalars(select(Photo)).first()
        emb = np.frombuffer(session.get(Face, x).embedding, "<f4") + 0.01
        session.add(
            Face(
                photo_id=photo.id,
                detector="mtcnn",
                box=[0, 0, 60, 60],
                score=0.99,
                size_px=60.0,
                embedding=embedding_to_bytes(emb),
                user_rejected=False,
            )
        )
        session.flush()
        cluster_faces(session)
        assert session.get(Face, x).person_id is None


def test_sheet_is_a_png_with_one_tile_per_face(library, tmp_path):
    db, faces = library
    a = _person_of(db, faces["A"][0])
    out = tmp_path / "sheets" / "a.png"
    result = _invoke("people", "sheet", str(a), "--out", str(out), "--tile", "32", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["tiles"] == 6 and info["unreadable"] == 0
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (3 * 32 + 4 * 4, 2 * 32 + 3 * 4)
    assert [p.name for p in out.parent.iterdir()] == ["a.png"]  # no temp file left behind
    before = out.read_bytes()
    again = _invoke("people", "sheet", str(a), "--out", str(out))  # never silently replaces a file
    assert again.exit_code == 2 and "--force" in again.stderr and out.read_bytes() == before
    assert _invoke("people", "sheet", str(a), "--out", str(out), "--tile", "16", "--force").exit_code == 0
    assert out.read_bytes() != before
    assert _invoke("people", "sheet", str(a), "--out", str(out.parent)).exit_code == 2  # a folder


def test_identify_skips_ignored_people(library):
    from photokit.faces.people import embedding_from_bytes, identify, ignore_person

    db, faces = library
    a = _person_of(db, faces["A"][0])
    with db.session() as session:
        probe = embedding_from_bytes(session.get(Face, faces["A"][0]).embedding) + 0.005
        person, distance = identify(session, probe)
        assert person.id == a and distance < 0.1
        ignore_person(session, person)
        person, _ = identify(session, probe)
        assert person is None or person.id != a
        far = np.full(128, 0.5, np.float32)
        assert identify(session, far)[0] is None


def test_human_output_of_list_and_show(library):
    db, faces = library
    result = _invoke("people", "list")
    assert result.exit_code == 0 and "unnamed" in result.stdout
    result = _invoke("people", "show", str(_person_of(db, faces["A"][0])))
    assert result.exit_code == 0 and "6 face(s)" in result.stdout
    assert str(faces["A"][0]) in result.stdout


def test_recluster_keeps_person_ids_of_unchanged_groups(library):
    db, faces = library
    before = {f: _person_of(db, f) for fs in faces.values() for f in fs}
    result = _invoke("people", "recluster", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["released"] == 13 and stats["new_people"] == 0 and stats["removed_people"] == 0
    assert {f: _person_of(db, f) for f in before} == before


def test_split_makes_a_new_person_that_recluster_keeps(library):
    db, faces = library
    a = _person_of(db, faces["A"][0])
    wrong = faces["A"][:2]  # the user says: these two are someone else
    result = _invoke("people", "split", *map(str, wrong), "--name", "Cousin Ann")
    assert result.exit_code == 0, result.output
    new = _person_of(db, wrong[0])
    assert new not in (None, a) and _person_of(db, wrong[1]) == new
    assert {_person_of(db, f) for f in faces["A"][2:]} == {a}
    assert _invoke("people", "recluster").exit_code == 0
    assert {_person_of(db, f) for f in wrong} == {new}
    shown = json.loads(_invoke("people", "show", "Cousin Ann", "--json").stdout)
    assert set(wrong) <= {f["id"] for f in shown["face_list"]}  # recluster may add look-alikes, never remove
    assert _invoke("people", "split", "999999").exit_code == 2  # unknown face: one-line error


def test_unignore_brings_a_person_back(library):
    db, faces = library
    b = _person_of(db, faces["B"][0])
    assert _invoke("people", "ignore", str(b)).exit_code == 0
    assert b not in {r["id"] for r in json.loads(_invoke("people", "list", "--json").stdout)}
    assert _invoke("people", "unignore", str(b)).exit_code == 0
    assert b in {r["id"] for r in json.loads(_invoke("people", "list", "--json").stdout)}
