"""The gallery's refusals: no token, wrong token, foreign Host, missing CSRF, paths out of the library."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.web_support import TOKEN, csrf, make_client, people_by_id

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'photokit[web]')")


@pytest.mark.parametrize(
    "url", ["/people", "/people/1", "/photos/1", "/media/face/1", "/media/photo/1/full", "/api/jobs", "/static/app.js"]
)
def test_without_the_token_every_request_is_refused_and_nothing_leaks(anonymous, library, url):
    response = anonymous.get(url)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert "face_recognition" not in body and "obama" not in body.lower() and "person" not in body.lower()
    assert "csrf" not in body


def test_a_wrong_token_or_cookie_is_refused(anonymous):
    assert anonymous.get("/people", params={"token": "nope"}).status_code == 403
    anonymous.cookies.set("photokit_token", TOKEN[:-1] + "x")
    assert anonymous.get("/people").status_code == 401


def test_the_token_in_the_url_sets_a_strict_httponly_cookie_and_is_dropped_from_the_url(anonymous):
    response = anonymous.get("/people", params={"token": TOKEN, "show": "all"})
    assert response.status_code == 303
    assert response.headers["location"] == "/people?show=all"
    cookie = response.headers["set-cookie"]
    assert "photokit_token=" + TOKEN in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert anonymous.get("/people?show=all").status_code == 200  # the client kept the cookie


def test_a_foreign_host_header_is_refused(client):
    response = client.get("/people", headers={"host": "evil.example:8765"})
    assert response.status_code == 400


def test_state_changes_need_post_and_the_csrf_token(client, db):
    person = _people(db)[0]["id"]
    url = f"/people/{person}/name"
    assert client.get(url).status_code == 405
    assert client.post(url, data={"name": "Mallory"}).status_code == 403
    assert client.post(url, data={"name": "Mallory", "csrf": "0" * 64}).status_code == 403
    cross = client.post(url, data={"name": "Mallory", "csrf": csrf(client)}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403
    assert all(p["name"] != "Mallory" for p in _people(db))
    ok = client.post(url, data={"name": "Barack", "csrf": csrf(client)}, headers={"origin": "http://testserver"})
    assert ok.status_code == 303
    assert any(p["name"] == "Barack" for p in _people(db))


@pytest.mark.parametrize(
    "url",
    [
        "/media/photo/..%2F..%2F..%2Fetc%2Fpasswd/full",
        "/media/photo/%2Fetc%2Fpasswd/full",
        "/media/photo/1/..%2F..%2F..%2Fetc%2Fpasswd",
        "/media/../../../../etc/passwd",
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/%2e%2e%2f%2e%2e%2fweb%2fsecurity.py",
        "/media/photo/1/thumb/9999",
        "/media/restoration/1/..%2Fsecret",
    ],
)
def test_traversal_and_paths_are_refused(client, url):
    response = client.get(url)
    assert 400 <= response.status_code < 500
    assert "root:" not in response.text and "import" not in response.text
    assert "Traceback" not in response.text


def _people(db) -> list[dict]:
    return list(people_by_id(db).values())


def _scan_folder(settings, root: Path):
    from photokit.db import open_database
    from photokit.library.scan import scan_library

    db = open_database(settings)
    scan_library(db, [str(root)])
    return db


def test_symlinks_out_of_the_library_and_foreign_locations_are_refused(tmp_path):
    from photokit.db.models import PhotoLocation
    from photokit.settings import Settings

    root, outside = tmp_path / "album", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(root / name)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(outside / "secret.png")
    settings = Settings.load(home=tmp_path / "home", models=tmp_path / "m", db_url=f"sqlite:///{tmp_path / 'l.db'}")
    db = _scan_folder(settings, root)
    with db.session() as session:
        ids = {Path(loc.path).name: loc.photo_id for loc in session.query(PhotoLocation)}
    with make_client(settings) as client:
        assert client.get(f"/media/photo/{ids['a.png']}/full").status_code == 200
        # a.png becomes a symlink to a file outside the scanned folder: refused although the row says present
        (root / "a.png").unlink()
        os.symlink(outside / "secret.png", root / "a.png")
        assert client.get(f"/media/photo/{ids['a.png']}/full").status_code == 404
        assert client.get(f"/media/photo/{ids['a.png']}/thumb/256").status_code == 404
        # a location row pointing out of the library (or with ..) is never served either
        with db.session() as session:
            loc = session.query(PhotoLocation).filter_by(photo_id=ids["b.png"]).one()
            loc.path = str(root / ".." / "private" / "secret.png")
        assert client.get(f"/media/photo/{ids['b.png']}/full").status_code == 404
        with db.session() as session:
            session.query(PhotoLocation).filter_by(photo_id=ids["b.png"]).one().path = str(outside / "secret.png")
        assert client.get(f"/media/photo/{ids['b.png']}/full").status_code == 404
    db.dispose()


def test_ids_of_another_library_are_not_found_here(library, face_recognition_library, tmp_path):
    from photokit.settings import Settings

    other_root = tmp_path / "other"
    other_root.mkdir()
    for k in range(3):
        Image.new("RGB", (30, 20), (k * 60, 10, 10)).save(other_root / f"p{k}.png")
    small = Settings.load(home=tmp_path / "small", models=tmp_path / "m", db_url=f"sqlite:///{tmp_path / 's.db'}")
    _scan_folder(small, other_root).dispose()
    with make_client(small) as client:
        # photo 10 and the faces exist in the other (face_recognition) library, not in this 3-photo one
        for url in ("/photos/10", "/media/photo/10/full", "/media/face/1", "/people/1", "/restorations/1"):
            response = client.get(url)
            assert response.status_code == 404, url
            assert "obama" not in response.text.lower()


def test_bad_ids_and_bad_input_get_clear_4xx_pages(client, db):
    person = _people(db)[0]["id"]
    token = csrf(client)
    cases = [
        (client.get("/people/abc"), 400, "bad input"),
        (client.get("/people/987654"), 404, "no person 987654"),
        (client.get("/photos/-3"), 404, "no photo"),
        (client.get(f"/people/{person}?page=0"), 400, "bad input"),
        (client.get("/people?show=everyone"), 400, "bad input"),
        (client.get("/nothing/here"), 404, "no such page"),
        (client.post(f"/people/{person}/name", data={"name": "   ", "csrf": token}), 400, "cannot be empty"),
        (client.post(f"/people/{person}/merge", data={"into": "Nobody Known", "csrf": token}), 404, "unknown person"),
        (client.post(f"/people/{person}/merge", data={"into": str(person), "csrf": token}), 400, "with itself"),
        (client.post("/faces/move", data={"to": str(person), "csrf": token}), 400, "bad input"),
        (client.post("/faces/move", data={"face": "x", "to": str(person), "csrf": token}), 400, "bad input"),
        (client.post("/faces/move", data={"face": "99999", "to": str(person), "csrf": token}), 404, "no face 99999"),
        (client.post("/jobs/restore", data={"path": "/no/such/album", "csrf": token}), 400, "no such file"),
        (
            client.post("/jobs/restore", data={"path": "/etc", "csrf": token}),
            400,
            "not inside a folder of your library",
        ),
        (client.post("/jobs/424242/cancel", data={"csrf": token}), 404, "no job"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (response.request.url, response.text[:300])
        assert words in response.text
        assert "Traceback" not in response.text and 'File "' not in response.text
    api = client.get("/api/jobs/../../people/abc", headers={"accept": "application/json"})
    assert api.status_code in (400, 404)


def test_an_unexpected_error_is_a_500_page_without_a_traceback(client, monkeypatch):
    import photokit.web.pages as pages

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /home/someone/library.db")

    monkeypatch.setattr(pages, "list_people", broken)
    response = client.get("/people")
    assert response.status_code == 500
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert "went wrong" in response.text


def test_images_are_cached_on_disk_with_etags_and_304(client, library, db):
    cover = next(p["cover_face"] for p in _people(db) if p["cover_face"])
    first = client.get(f"/media/face/{cover}")
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert "max-age" in first.headers["cache-control"]
    cached = list((library.home / "cache").rglob("*.jpg"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    again = client.get(f"/media/face/{cover}", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get(f"/media/face/{cover}").content == first.content
    assert cached[0].stat().st_mtime_ns == mtime  # made once
    thumb = client.get("/media/photo/1/thumb/256")
    assert thumb.status_code == 200
    assert max(Image.open(__import__("io").BytesIO(thumb.content)).size) <= 256
    full = client.get("/media/photo/1/full")
    assert client.get("/media/photo/1/full", headers={"if-none-match": full.headers["etag"]}).status_code == 304


def test_originals_are_only_read(client, face_recognition_library, library):
    before = {p: p.stat().st_mtime_ns for p in face_recognition_library.root.iterdir()}
    for photo_id in range(1, 6):
        client.get(f"/media/photo/{photo_id}/full")
        client.get(f"/media/photo/{photo_id}/thumb/1024")
        client.get(f"/photos/{photo_id}")
    assert {p: p.stat().st_mtime_ns for p in face_recognition_library.root.iterdir()} == before


def test_restoration_images_only_from_recorded_regular_files(client, db, tmp_path):
    from photokit.db.models import EnhanceJob

    src, out = tmp_path / "old.png", tmp_path / "old_restored.png"
    Image.new("RGB", (20, 10), "red").save(src)
    Image.new("RGB", (40, 20), "blue").save(out)
    with db.session() as session:
        job = EnhanceJob(
            batch_key="k", source_path=str(src), output_path=str(out), status="done", options={}, report={}
        )
        session.add(job)
        session.flush()
        job_id = job.id
    page = client.get(f"/restorations/{job_id}")
    assert page.status_code == 200 and "before" in page.text
    assert client.get(f"/media/restoration/{job_id}/after").status_code == 200
    out.unlink()
    os.symlink(shutil.which("sh") or "/bin/sh", out)
    assert client.get(f"/media/restoration/{job_id}/after").status_code == 404
    assert client.get(f"/media/restoration/{job_id}/sideways").status_code == 400


def test_serve_refuses_a_remote_host_without_the_explicit_flag(library):
    from typer.testing import CliRunner

    from photokit.cli.app import app

    result = CliRunner().invoke(app, ["--home", str(library.home), "serve", "--host", "0.0.0.0", "--no-open"])
    assert result.exit_code == 2
    assert "--allow-remote" in result.output
