"""Make the gallery screenshots in docs/ (not committed) from a synthetic library (drawn faces, no real photos).

    make screenshots        # = PYTHONPATH=. .venv/bin/python docs/make_screenshots.py

Needs the web extra, selenium and Debian's chromium + chromium-driver.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DOCS = Path(__file__).resolve().parent
# (name, skin, hair) of the synthetic people
PEOPLE = [
    ("Grandma Rose", (236, 200, 170), (220, 220, 225)),
    ("Grandpa Joe", (210, 165, 130), (90, 90, 95)),
    ("Aunt Mia", (180, 130, 95), (40, 25, 20)),
    ("Cousin Ann", (245, 215, 190), (200, 120, 40)),
    (None, (150, 105, 75), (20, 20, 20)),
    (None, (225, 185, 150), (120, 70, 30)),
]


def draw_face(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, skin, hair, rng) -> list[float]:
    draw.ellipse((cx - r * 1.05, cy - r * 1.3, cx + r * 1.05, cy + r * 0.2), fill=hair)
    draw.ellipse((cx - r * 0.85, cy - r, cx + r * 0.85, cy + r * 1.1), fill=skin)
    for side in (-1, 1):
        ex = cx + side * r * 0.35
        draw.ellipse((ex - r * 0.13, cy - r * 0.2, ex + r * 0.13, cy + r * 0.02), fill="white")
        draw.ellipse((ex - r * 0.06, cy - r * 0.14, ex + r * 0.06, cy - r * 0.02), fill=(50, 40, 30))
    smile = rng.uniform(0.25, 0.45)
    draw.arc((cx - r * 0.4, cy + r * 0.2, cx + r * 0.4, cy + r * (0.5 + smile)), 10, 170, fill=(150, 60, 60), width=3)
    return [cx - r * 0.85, cy - r, cx + r * 0.85, cy + r * 1.1]


def make_album(root: Path, rng) -> list[tuple[Path, list[tuple[int, list[float]]]]]:
    photos = []
    for k in range(30):
        w, h = 960, 640
        sky = np.linspace(0, 1, h)[:, None, None] * np.array(rng.uniform(40, 120, 3)) + rng.uniform(90, 160, 3)
        image = Image.fromarray(np.broadcast_to(sky, (h, w, 3)).clip(0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, h * 0.72, w, h), fill=tuple(int(v) for v in rng.uniform(60, 140, 3)))
        who = rng.choice(len(PEOPLE), size=int(rng.integers(1, 4)), replace=False)
        faces = []
        for j, person in enumerate(who):
            cx = w * (j + 1) / (len(who) + 1) + rng.uniform(-30, 30)
            r = rng.uniform(60, 95)
            draw.rectangle(
                (cx - r * 1.1, h * 0.45 + r, cx + r * 1.1, h), fill=tuple(int(v) for v in rng.uniform(30, 200, 3))
            )
            faces.append((int(person), draw_face(draw, cx, h * 0.42, r, PEOPLE[person][1], PEOPLE[person][2], rng)))
        path = root / f"IMG_{k:04d}.jpg"
        image.save(path, quality=88)
        photos.append((path, faces))
    return photos


def build_library(home: Path, album: Path, rng):
    """Photos, faces and people as rows (faces drawn where the rows say), plus one restoration."""
    import hashlib

    from photokit.db import open_database
    from photokit.db.models import EnhanceJob, Face, Person, Photo, PhotoLocation, ScanRun
    from photokit.faces.assignment import refresh_covers
    from photokit.settings import Settings

    settings = Settings.load(home=home, models=home / "models", db_url=f"sqlite:///{home / 'library.db'}")
    db = open_database(settings)
    photos = make_album(album, rng)
    with db.session() as session:
        session.add(ScanRun(roots=[str(album.resolve())], summary={}))
        people = [Person(name=name) for name, _, _ in PEOPLE]
        session.add_all(people)
        session.flush()
        for path, faces in photos:
            data = path.read_bytes()
            photo = Photo(sha256=hashlib.sha256(data).hexdigest(), size=len(data), format="jpeg", width=960, height=640)
            photo.locations.append(
                PhotoLocation(path=str(path.resolve()), size=len(data), mtime_ns=path.stat().st_mtime_ns)
            )
            for person, box in faces:
                side = ((box[2] - box[0]) * (box[3] - box[1])) ** 0.5
                photo.faces.append(
                    Face(
                        detector="mtcnn",
                        box=box,
                        score=0.99,
                        size_px=side,
                        person_id=people[person].id,
                        assigned_by="auto",
                    )
                )
            session.add(photo)
        session.flush()
        refresh_covers(session)
        source, _ = photos[3]
        small = Image.open(source).resize((320, 213), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(1.2))
        old = album.parent / "old_scan.jpg"
        small.save(old, quality=40)
        restored = album.parent / "old_scan_restored.jpg"
        Image.open(source).resize((640, 426), Image.Resampling.LANCZOS).save(restored, quality=90)
        report = {
            "faces": [
                {
                    "index": i,
                    "person": PEOPLE[p][0],
                    "person_id": people[p].id,
                    "status": "restored",
                    "prior_name": "personal prior",
                    "beta": 0.05,
                    "steps": 100,
                    "loss": 0.0412 + 0.01 * i,
                }
                for i, (p, _) in enumerate(photos[3][1])
            ],
            "warnings": ["screenshot data: synthetic drawings, not a real restoration"],
        }
        session.add(
            EnhanceJob(
                batch_key="docs",
                source_path=str(old),
                output_path=str(restored),
                status="done",
                options={},
                report=report,
            )
        )
    return settings, db


def main() -> None:
    from selenium.webdriver.common.by import By

    from photokit.web.app import create_app
    from tests.web_support import LiveServer, chromium_driver

    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "album").mkdir()
        settings, db = build_library(tmp_path / "home", tmp_path / "album", rng)
        driver = chromium_driver(1280, 860)
        try:
            with LiveServer(create_app(settings, token="docs")) as server:
                driver.get(f"{server.url}/people?token=docs")
                shots = {"people": "/people", "person": "/people/1", "photo": None, "restoration": "/restorations/1"}
                for name, url in shots.items():
                    if url is None:
                        driver.get(f"{server.url}/people/1")
                        url = driver.find_element(By.CSS_SELECTOR, "li.card.face a").get_attribute("href")
                        driver.get(url)
                    else:
                        driver.get(server.url + url)
                    time.sleep(1.0)
                    out = DOCS / f"web-{name}.png"
                    driver.save_screenshot(str(out))
                    image = Image.open(out).convert("RGB")
                    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
                    print(out, out.stat().st_size // 1024, "KB")
        finally:
            driver.quit()
            db.dispose()


if __name__ == "__main__":
    main()
