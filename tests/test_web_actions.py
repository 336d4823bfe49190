"""Gallery pages and actions on a real scanned library; every change is checked in the database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.web_support import csrf, faces_of, people_by_id

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'photokit[web]')")


def test_people_page_lists_everyone_with_cover_counts_and_filters(client, db):
    people = people_by_id(db)
    page = client.get("/people")
    assert page.status_code == 200
    for p in people.values():
        assert f'data-person="{p["id"]}"' in page.text
        assert f"{p['faces']} faces" in page.text
        assert f"/media/face/{p['cover_face']}" in page.text
    first = min(people)
    client.post(f"/people/{first}/name", data={"name": "Barack", "csrf": csrf(client)})
    named = client.get("/people?show=named").text
    unnamed = client.get("/people?show=unnamed").text
    assert f'data-person="{first}"' in named and f'data-person="{first}"' not in unnamed


def test_name_split_move_remove_ignore_and_merge_change_the_database(client, db):
    people = people_by_id(db)
    big, small = sorted(people, key=lambda pid: -people[pid]["faces"])[:2]
    token = csrf(client)

    r = client.post(f"/people/{big}/name", data={"name": "  Barack   Obama ", "csrf": token})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/people/{big}")
    assert people_by_id(db)[big]["name"] == "Barack Obama"  # the library's own normalisation

    faces = faces_of(db, big)
    r = client.post("/faces/split", data={"face": faces[:2], "name": "Look-alike", "csrf": token})
    assert r.status_code == 303
    new_id = int(r.headers["location"].split("/people/")[1].split("?")[0])
    assert faces_of(db, new_id) == faces[:2] and people_by_id(db)[new_id]["name"] == "Look-alike"

    back = f"/people/{new_id}"
    r = client.post("/faces/move", data={"face": [faces[0]], "to": "barack obama", "back": back, "csrf": token})
    assert r.status_code == 303 and r.headers["location"].startswith(back)
    assert faces[0] in faces_of(db, big) and faces_of(db, new_id) == [faces[1]]

    r = client.post(f"/faces/{faces[1]}/remove", data={"back": "//evil.example/x", "csrf": token})
    assert r.status_code == 303 and r.headers["location"].startswith("/people")  # never off-site
    from photokit.db.models import Face

    with db.session() as session:
        removed = session.get(Face, faces[1])
        assert removed.person_id is None and removed.user_rejected

    client.post(f"/people/{small}/ignore", data={"csrf": token})
    assert people_by_id(db)[small]["ignored"]
    assert f'data-person="{small}"' not in client.get("/people").text
    client.post(f"/people/{small}/unignore", data={"csrf": token})
    assert not people_by_id(db)[small]["ignored"]

    small_faces = faces_of(db, small)
    r = client.post(f"/people/{small}/merge", data={"into": str(big), "csrf": token})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/people/{big}")
    after = people_by_id(db)
    assert small not in after and set(small_faces) <= set(faces_of(db, big))


def test_person_page_is_paginated_and_links_each_face_to_its_photo(client, db, monkeypatch):
    import photokit.web.pages as pages

    people = people_by_id(db)
    big = max(people, key=lambda pid: people[pid]["faces"])
    total = people[big]["faces"]
    monkeypatch.setattr(pages, "FACES_PER_PAGE", 5)
    first = client.get(f"/people/{big}")
    assert first.text.count('class="card face"') == 5
    assert f"page 1 of {-(-total // 5)}" in first.text
    last = client.get(f"/people/{big}?page={-(-total // 5)}")
    assert last.text.count('class="card face"') == total - 5 * (-(-total // 5) - 1)
    assert client.get(f"/people/{big}?page={-(-total // 5) + 1}").status_code == 404
    from photokit.db.models import Face

    face_id = faces_of(db, big)[0]
    with db.session() as session:
        photo_id = session.get(Face, face_id).photo_id
    assert f'href="/photos/{photo_id}"' in first.text


def test_photo_page_shows_boxes_and_who_each_face_is_and_fixes_a_face(client, db):
    from photokit.db.models import Face, Photo

    with db.session() as session:
        photo_id = max(
            session.scalars(select(Photo.id)), key=lambda pid: len(session.get(Photo, pid).faces)
        )  # the two-person photo
        faces = session.scalars(select(Face).where(Face.photo_id == photo_id)).all()
        expected = [(f.id, f.person_id) for f in faces]
    page = client.get(f"/photos/{photo_id}")
    assert page.status_code == 200
    assert page.text.count("<rect ") == len(expected) >= 2
    for face_id, person_id in expected:
        assert f'data-face="{face_id}"' in page.text
        if person_id:
            assert f'href="/people/{person_id}"' in page.text
    face_id, person_id = next((f, p) for f, p in expected if p)
    target = next(p for p in people_by_id(db) if p != person_id)
    r = client.post(
        "/faces/move", data={"face": [face_id], "to": str(target), "back": f"/photos/{photo_id}", "csrf": csrf(client)}
    )
    assert r.status_code == 303 and r.headers["location"].startswith(f"/photos/{photo_id}")
    with db.session() as session:
        moved = session.get(Face, face_id)
        assert moved.person_id == target and moved.assigned_by == "user"


def test_merge_suggestions_are_shown_on_the_people_page(client, monkeypatch):
    import photokit.faces.suggest as suggest_module

    monkeypatch.setattr(suggest_module, "cached_suggestions", lambda *args, **kw: suggest_module.Suggestions())
    assert "Suggested merges" not in client.get("/people").text
    found = suggest_module.Suggestions(
        merges=[suggest_module.MergeSuggestion(keep=1, other=2, score=0.8, distance=0.41)]
    )
    monkeypatch.setattr(suggest_module, "cached_suggestions", lambda *args, **kw: found)
    page = client.get("/people").text
    assert "Suggested merges" in page and "distance: 0.41" in page and "photokit people merge 1 2" in page


def test_a_merge_suggestion_can_be_dismissed_from_the_people_page(client, db, monkeypatch):
    import photokit.faces.suggest as suggest_module
    from photokit.db.models import DismissedSuggestion

    a, b = sorted(people_by_id(db))[:2]
    found = suggest_module.Suggestions(merges=[suggest_module.MergeSuggestion(b, a, score=0.8, distance=0.41)])
    monkeypatch.setattr(suggest_module, "_merges", lambda *args: found.merges)
    page = client.get("/people").text
    assert f'name="suggestion" value="m{a}-{b}"' in page
    assert client.post("/suggestions/dismiss", data={"suggestion": f"m{a}-{b}"}).status_code == 403  # no token
    r = client.post("/suggestions/dismiss", data={"suggestion": f"m{a}-{b}", "csrf": csrf(client)})
    assert r.status_code == 303 and r.headers["location"].startswith("/people")
    with db.session() as session:
        assert [(d.person_id, d.other_person_id) for d in session.query(DismissedSuggestion)] == [(a, b)]
    assert "Suggested merges" not in client.get("/people").text
    assert client.post("/suggestions/dismiss", data={"suggestion": "nonsense", "csrf": csrf(client)}).status_code == 400
    missing = client.post("/suggestions/dismiss", data={"suggestion": f"m{a}-999999", "csrf": csrf(client)})
    assert missing.status_code == 404


def test_priors_page_lists_priors_and_unreadable_ones(client, library):
    folder = library.priors_dir / "person_1"
    folder.mkdir(parents=True)
    (folder / "prior.json").write_text("{not json")
    page = client.get("/priors")
    assert page.status_code == 200
    assert "corrupt" in page.text and 'href="/people/1"' in page.text
