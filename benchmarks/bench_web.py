"""Web gallery speed: the People page and a 5,000-face Person page on a 100,000-face / 2,000-person library.

Synthetic database rows are inserted in bulk (no images: pages do not open photos, the browser fetches face
crops separately). Server time is the app's own ``Server-Timing`` figure (routing, queries, template
rendering), taken in-process through the framework's test client, median of repeated requests after one
warm-up. Target (issue 12): <= 300 ms for each page.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

TARGET_MS = 300.0


def build_library(settings, faces: int, people: int, big_person_faces: int, faces_per_photo: int = 4) -> dict:
    """Bulk-insert photos, people and faces; person 1 gets ``big_person_faces`` faces, the rest share the others."""
    from sqlalchemy import insert

    from photokit.db import open_database
    from photokit.db.models import Face, Person, Photo, PhotoLocation, utcnow

    db = open_database(settings)
    now = utcnow()
    photos = -(-faces // faces_per_photo)
    with db.session() as session:
        session.execute(
            insert(Photo),
            [
                {
                    "id": i,
                    "sha256": f"{i:064x}",
                    "size": 1,
                    "format": "jpeg",
                    "width": 4000,
                    "height": 3000,
                    "created_at": now,
                    "faces_status": "done",
                }
                for i in range(1, photos + 1)
            ],
        )
        session.execute(
            insert(PhotoLocation),
            [
                {
                    "photo_id": i,
                    "path": f"/photos/{i // 1000}/IMG_{i:06d}.jpg",
                    "size": 1,
                    "mtime_ns": 0,
                    "status": "present",
                    "first_seen": now,
                    "last_seen": now,
                }
                for i in range(1, photos + 1)
            ],
        )
        session.execute(
            insert(Person),
            [
                {
                    "id": p,
                    "name": f"Person {p}" if p % 3 == 0 else None,
                    "ignored": False,
                    "cover_face_id": None,
                    "created_at": now,
                }
                for p in range(1, people + 1)
            ],
        )
        rows = []
        rest = faces - big_person_faces
        for f in range(1, faces + 1):
            person = 1 if f <= big_person_faces else 2 + (f - big_person_faces - 1) * (people - 1) // rest
            rows.append(
                {
                    "id": f,
                    "photo_id": (f - 1) // faces_per_photo + 1,
                    "detector": "mtcnn",
                    "box": [100.0, 100.0, 300.0, 300.0],
                    "score": 0.99,
                    "size_px": 200.0 + f % 50,
                    "blur": 80.0,
                    "is_gray": False,
                    "person_id": person,
                    "assigned_by": "auto",
                    "user_rejected": False,
                    "created_at": now,
                }
            )
        session.execute(insert(Face), rows)
    with db.session() as session:
        from photokit.faces.assignment import refresh_covers

        refresh_covers(session)
    db.dispose()
    return {"photos": photos, "faces": faces, "people": people, "big_person_faces": big_person_faces}


def _server_ms(client, url: str, repeats: int) -> dict:
    client.get(url)  # warm-up (template compilation, SQLite page cache)
    server, wall = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        response = client.get(url)
        wall.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}")
        server.append(float(response.headers["server-timing"].split("dur=")[1]))
    return {
        "url": url,
        "server_ms_median": round(statistics.median(server), 1),
        "server_ms_max": round(max(server), 1),
        "client_wall_ms_median": round(statistics.median(wall), 1),
        "html_kb": round(len(response.content) / 1024, 1),
        "meets_target": statistics.median(server) <= TARGET_MS,
    }


def run(device: str = "cpu", quick: bool = False) -> dict:
    from fastapi.testclient import TestClient

    from photokit.settings import Settings
    from photokit.web.app import create_app

    load_at_start = os.getloadavg()
    faces, people, big = (10_000, 200, 1_000) if quick else (100_000, 2_000, 5_000)
    repeats = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="photokit_bench_web_") as tmp:
        home = Path(tmp)
        settings = Settings.load(home=home, models=home / "models", db_url=f"sqlite:///{home / 'library.db'}")
        t0 = time.perf_counter()
        library = build_library(settings, faces, people, big)
        build_s = time.perf_counter() - t0
        token = "bench"
        app = create_app(settings, token=token, run_jobs=False, hosts=frozenset({"testserver"}))
        with TestClient(app) as client:
            client.cookies.set("photokit_token", token)
            pages = {
                "people": _server_ms(client, "/people", repeats),
                "people_all": _server_ms(client, "/people?show=all", repeats),
                "person_5000_faces_first_page": _server_ms(client, "/people/1", repeats),
                "person_5000_faces_last_page": _server_ms(client, f"/people/1?page={-(-big // 200)}", repeats),
            }
    return {
        "library": library,
        "build_s": round(build_s, 1),
        "pages": pages,
        "target_ms": TARGET_MS,
        "meets_target": all(p["meets_target"] for p in pages.values()),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "measured": "Server-Timing of the app (routing + SQLite queries + Jinja2 rendering) in-process via "
        "TestClient, median of repeated requests after a warm-up; 300 people per People page, 200 faces per Person page; "
        "machine shared with other jobs (see load average)",
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
