"""Identity clustering on the database: incremental joins, bad descriptors, Ctrl-C, suggestions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.db import open_database
from photokit.db.models import Face, Person, Photo
from photokit.faces import assignment as assignment_module
from photokit.faces.assignment import cluster_faces, recluster
from photokit.faces.people import embedding_to_bytes, identify, remove_face
from photokit.faces.suggest import suggest

runner = CliRunner()


def _centre(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128)
    return 0.6 * v / np.linalg.norm(v) + 0.5


def _face(centre: np.ndarray, seed: int, spread: float = 0.25) -> np.ndarray:
    n = np.random.default_rng(1000 + seed).normal(size=128)
    return (centre + spread * n / np.linalg.norm(n)).astype(np.float32)


def _add_photo(session, key: int, embeddings: list, person_ids: list | None = None) -> list[int]:
    photo = Photo(sha256=f"{key:064d}", size=1, format="png", width=200, height=200, faces_status="done")
    for k, emb in enumerate(embeddings):
        face = Face(detector="mtcnn", box=[0, 0, 100, 100], score=0.99, size_px=100.0, user_rejected=False)
        face.embedding = emb if isinstance(emb, (bytes, type(None))) else embedding_to_bytes(emb)
        if person_ids and person_ids[k]:
            face.person_id, face.assigned_by = person_ids[k], "auto"
        photo.faces.append(face)
    session.add(photo)
    session.flush()
    return [f.id for f in photo.faces]


@pytest.fixture
def library(settings):
    """People A (8 photos), B (6), C (5), one face per photo; clustered. Yields (db, {label: face ids})."""
    db = open_database(settings)
    faces: dict[str, list[int]] = {"A": [], "B": [], "C": []}
    with db.session() as session:
        key = 0
        for label, count, seed in (("A", 8, 1), ("B", 6, 2), ("C", 5, 3)):
            for _ in range(count):
                key += 1
                faces[label] += _add_photo(session, key, [_face(_centre(seed), key)])
        cluster_faces(session)
    yield db, faces
    db.dispose()


def _assignment(db) -> dict[int, int | None]:
    with db.session() as session:
        return dict(session.execute(select(Face.id, Face.person_id)).all())


def test_library_is_clustered_into_three_people(library):
    db, faces = library
    people = _assignment(db)
    groups = [{people[f] for f in faces[k]} for k in "ABC"]
    assert all(len(g) == 1 and None not in g for g in groups)
    assert len(set.union(*groups)) == 3


def test_new_faces_join_existing_people_without_reclustering(library):
    db, faces = library
    before = _assignment(db)
    person_a = before[faces["A"][0]]
    with db.session() as session:
        new = _add_photo(session, 100, [_face(_centre(1), 100)]) + _add_photo(session, 101, [_face(_centre(1), 101)])
        stats = cluster_faces(session)
    after = _assignment(db)
    assert stats.clustered_faces == 2 and stats.new_people == 0
    assert {after[f] for f in new} == {person_a}
    assert {f: after[f] for f in before} == before  # nobody else moved


def test_two_faces_of_one_photo_go_to_two_people(library):
    db, _ = library
    with db.session() as session:
        both = _add_photo(session, 200, [_face(_centre(1), 200), _face(_centre(1), 201)])
        cluster_faces(session)
    after = _assignment(db)
    assert after[both[0]] != after[both[1]] or after[both[0]] is None


def test_unusable_descriptors_are_counted_and_left_alone(library):
    db, faces = library
    bad = [np.full(128, np.nan, np.float32), np.zeros(128, np.float32), b"\x00\x00\x80\x7f" * 5, None]
    with db.session() as session:
        ids = [_add_photo(session, 300 + k, [emb])[0] for k, emb in enumerate(bad)]
        good = _add_photo(session, 310, [_face(_centre(2), 310)])
        stats = cluster_faces(session)
        assert identify(session, np.full(128, np.nan, np.float32)) == (None, float("inf"))
        assert identify(session, np.zeros(128, np.float32))[0] is None
    after = _assignment(db)
    assert stats.bad_descriptor == 3  # NaN, zero, wrong size; the face without one is not clusterable
    assert all(after[f] is None for f in ids)
    assert after[good[0]] == after[faces["B"][0]]
    with db.session() as session:
        assert session.get(Face, ids[0]).embedding is not None  # nothing is deleted


def test_a_person_whose_faces_were_all_removed(library):
    db, faces = library
    with db.session() as session:
        person = session.get(Face, faces["C"][0]).person
        person.name = "Cleo"
        cleo = person.id
        for f in faces["C"]:
            remove_face(session, f)
    with db.session() as session:
        assert session.get(Person, cleo).name == "Cleo"  # named: kept, with no faces
        probe = _face(_centre(3), 999)
        assert identify(session, probe)[0] is None
        stats = recluster(session)
        assert stats.clustered_faces == len(faces["A"]) + len(faces["B"])
        assert suggest(session).pending == 0
    listed = json.loads(runner.invoke(app, ["people", "list", "--all", "--json"]).stdout)
    assert {"id": cleo, "faces": 0} == {
        k: v for k, v in next(r for r in listed if r["id"] == cleo).items() if k in ("id", "faces")
    }


def test_interrupted_recluster_leaves_the_previous_assignment(library, monkeypatch):
    db, _ = library
    before = _assignment(db)
    with db.session() as session:
        people_before = set(session.scalars(select(Person.id)))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(assignment_module, "assign_faces", interrupted)
    with pytest.raises(KeyboardInterrupt), db.session() as session:
        recluster(session)  # releases every automatic face first, then is interrupted
    assert _assignment(db) == before
    with db.session() as session:
        assert set(session.scalars(select(Person.id))) == people_before


def _plant_a_split_and_a_misplaced_face(db, faces) -> tuple[int, int, int, int]:
    """A left in two people (A and a piece of 4 faces), C's first face put in B: (a, piece, b, c)."""
    with db.session() as session:
        a = session.get(Face, faces["A"][0]).person_id
        b = session.get(Face, faces["B"][0]).person_id
        c = session.get(Face, faces["C"][1]).person_id
        split = Person()
        session.add(split)
        session.flush()
        for f in faces["A"][:4]:
            session.get(Face, f).person_id = split.id
        session.get(Face, faces["C"][0]).person_id = b
        return a, split.id, b, c


def test_dismissed_suggestions_are_not_made_again(library):
    db, faces = library
    a, piece, b, c = _plant_a_split_and_a_misplaced_face(db, faces)
    merge_id, move_id = f"m{min(a, piece)}-{max(a, piece)}", f"f{faces['C'][0]}-{c}"
    doc = json.loads(runner.invoke(app, ["people", "suggest", "--json"]).stdout)
    assert [m["id"] for m in doc["merges"]] == [merge_id] and [m["id"] for m in doc["moves"]] == [move_id]
    result = runner.invoke(app, ["people", "suggest", "--dismiss", f"{piece}-{a}", "--dismiss", move_id])
    assert result.exit_code == 0 and "will not be suggested again" in result.output, result.output
    assert json.loads(runner.invoke(app, ["people", "suggest", "--json"]).stdout) == {
        "pending": 0,
        "merges": [],
        "moves": [],
    }
    assert "pending" not in runner.invoke(app, ["people", "list"]).output
    listed = json.loads(runner.invoke(app, ["people", "suggest", "--dismissed", "--json"]).stdout)
    assert [d["id"] for d in listed] == [merge_id, move_id]
    # dismissing twice is harmless; undismissing brings the suggestion back
    assert runner.invoke(app, ["people", "suggest", "--dismiss", merge_id]).exit_code == 0
    result = runner.invoke(app, ["people", "suggest", "--undismiss", merge_id, "--json"])
    assert json.loads(result.stdout) == {"dismissed": [], "undismissed": [merge_id]}
    assert "1 suggestion(s) pending" in runner.invoke(app, ["people", "list"]).output
    # a merge of the two removes the person, and with it what was dismissed about it
    assert runner.invoke(app, ["people", "merge", str(b), str(c)]).exit_code == 0
    assert json.loads(runner.invoke(app, ["people", "suggest", "--dismissed", "--json"]).stdout) == []


@pytest.mark.parametrize(
    ("ref", "words"),
    [("x1-2", "not a suggestion id"), ("m3-3", "twice"), ("m1-99999", "unknown person"), ("f99999-1", "unknown")],
)
def test_dismissing_a_bad_suggestion_id_is_a_one_line_error(library, ref, words):
    result = runner.invoke(app, ["people", "suggest", "--dismiss", ref])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and words in lines[0], result.output


def test_people_list_counts_pending_suggestions_from_a_cache(library, monkeypatch):
    import photokit.faces.suggest as suggest_module

    db, faces = library
    a, piece, b, c = _plant_a_split_and_a_misplaced_face(db, faces)
    calls = []
    real = suggest_module.suggest
    monkeypatch.setattr(suggest_module, "suggest", lambda *args, **kw: calls.append(1) or real(*args, **kw))
    for _ in range(3):
        assert "2 suggestion(s) pending" in runner.invoke(app, ["people", "list"]).output
    assert len(calls) == 1  # computed once, then read back
    assert runner.invoke(app, ["people", "name", str(b), "Bea"]).exit_code == 0  # names change suggestions
    assert "2 suggestion(s) pending" in runner.invoke(app, ["people", "list"]).output and len(calls) == 2
    assert runner.invoke(app, ["people", "move", str(faces["C"][0]), "--to", str(c)]).exit_code == 0
    assert "1 suggestion(s) pending" in runner.invoke(app, ["people", "list"]).output and len(calls) == 3
    assert runner.invoke(app, ["people", "suggest", "--dismiss", f"{a}-{piece}"]).exit_code == 0
    assert "pending" not in runner.invoke(app, ["people", "list"]).output and len(calls) == 4


def test_an_unwritable_suggestions_cache_only_costs_a_recompute(library, tmp_path):
    from photokit.faces.suggest import cached_suggestions

    db, faces = library
    _plant_a_split_and_a_misplaced_face(db, faces)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with db.session(write=False) as session:
        assert cached_suggestions(session, blocker / "suggestions.json").pending == suggest(session).pending == 2
    corrupt = tmp_path / "suggestions.json"
    corrupt.write_text("{not json")
    with db.session(write=False) as session:
        assert cached_suggestions(session, corrupt, limit=1).pending == 2
    assert json.loads(corrupt.read_text())["pending"] == 2  # replaced by a good one


def test_suggest_finds_a_planted_split_and_a_misplaced_face(library):
    db, faces = library
    with db.session() as session:
        a = session.get(Face, faces["A"][0]).person_id
        b = session.get(Face, faces["B"][0]).person_id
        split = Person()
        session.add(split)
        session.flush()
        for f in faces["A"][:4]:  # clustering left A in two people
            session.get(Face, f).person_id = split.id
        session.get(Face, faces["C"][0]).person_id = b  # and put one of C's faces in B
        session.flush()
        found = suggest(session)
        c = session.get(Face, faces["C"][1]).person_id
    assert found.merges and {found.merges[0].keep, found.merges[0].other} == {a, split.id}
    assert all({m.keep, m.other} != {a, b} for m in found.merges)
    assert [(m.face, m.from_person, m.to_person) for m in found.moves] == [(faces["C"][0], b, c)]
    result = runner.invoke(app, ["people", "suggest", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["pending"] == found.pending and doc["moves"][0]["face"] == faces["C"][0]
    listed = runner.invoke(app, ["people", "list"])
    assert f"{found.pending} suggestion(s) pending" in listed.output
    # following the suggestions leaves nothing to suggest
    merge = found.merges[0]
    assert runner.invoke(app, ["people", "merge", str(merge.keep), str(merge.other)]).exit_code == 0
    assert runner.invoke(app, ["people", "move", str(faces["C"][0]), "--to", str(c)]).exit_code == 0
    assert json.loads(runner.invoke(app, ["people", "suggest", "--json"]).stdout)["pending"] == 0


@pytest.mark.parametrize("option", [["--spread", "nan"], ["--max-distance", "-1"], ["--min-faces", "0"]])
def test_recluster_options_are_validated(library, option):
    db, _ = library
    before = _assignment(db)
    result = runner.invoke(app, ["people", "recluster", *option])
    assert result.exit_code == 2 and "error" in result.output.lower()
    assert _assignment(db) == before


def test_small_faces_join_their_person_and_never_form_one(library):
    db, faces = library
    with db.session() as session:
        a = session.get(Face, faces["A"][0]).person_id
        near_a = _add_photo(session, 500, [_face(_centre(1), 500, spread=0.1)])
        strangers = _add_photo(session, 501, [_face(_centre(9), 501)]) + _add_photo(
            session, 502, [_face(_centre(9), 502)]
        )
        for f in near_a + strangers:
            session.get(Face, f).cluster_exclusion = "small"
        people_before = session.query(Person).count()
        stats = cluster_faces(session)
    after = _assignment(db)
    assert stats.small_joined == 1 and after[near_a[0]] == a
    assert after[strangers[0]] is None and after[strangers[1]] is None  # two small faces alike: still no person
    with db.session() as session:
        assert session.get(Face, near_a[0]).assigned_by == "auto"
        assert session.query(Person).count() == people_before
        recluster(session)
    assert _assignment(db) == after  # released and placed again the same way
