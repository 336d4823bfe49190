"""The labelled development sets of ../shared/data/faces, and clustering quality measured on them.

Three sets of different kinds: ``deepface`` (web photos, labels.csv), ``five_celebrity`` (web photos
of 5 people, ``<person>/<file>``; some show a second person) and ``orl_faces`` (400 greyscale 92x112
portraits of 40 people, ``s<N>/<file>``). A photo's label is the identity of its *main* (largest)
face. Quality is pairwise precision / recall over photos' main faces (an unplaced face pairs with
nothing) and the share of photos whose main face is >= 40 px that have it placed in a person.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PHOTOKIT_SHARED", ROOT.parent / "shared"))
FACES = SHARED / "data" / "faces"
DEV_SETS = ("deepface", "five_celebrity", "orl_faces")
MIN_PLACED_SIZE = 40.0  # px: the "photos whose main face is >= 40 px"


def labels_of(name: str, root: Path | None = None) -> dict[str, str]:
    """Relative path of each labelled photo -> identity."""
    root = root or FACES / name
    if (root / "labels.csv").is_file():
        with open(root / "labels.csv", newline="") as fh:
            return {row["file"]: row["identity"] for row in csv.DictReader(fh)}
    return {
        str(p.relative_to(root)): p.parent.name
        for p in sorted(root.glob("*/*"))
        if p.is_file() and p.name != "SOURCE.txt"
    }


@dataclass
class FaceTable:
    """Every face of a scanned set (arrays aligned by face) and each labelled photo's identity."""

    face_ids: np.ndarray  # (F,)
    photo_ids: np.ndarray  # (F,)
    embeddings: np.ndarray  # (F, 128) float32; NaN rows for faces without a descriptor
    size_px: np.ndarray  # (F,)
    clusterable: np.ndarray  # (F,) bool: cluster_exclusion is None
    photo_of_file: dict[str, int]  # labelled file -> photo id
    truth: dict[str, str]  # labelled file -> identity

    def main_faces(self) -> dict[int, int]:
        """Photo id -> index (into the arrays) of its largest face."""
        best: dict[int, int] = {}
        for i, photo in enumerate(self.photo_ids.tolist()):
            if photo not in best or self.size_px[i] > self.size_px[best[photo]]:
                best[photo] = i
        return best

    def save(self, path: Path) -> None:
        files = sorted(self.truth)
        np.savez(
            path,
            face_ids=self.face_ids,
            photo_ids=self.photo_ids,
            embeddings=self.embeddings,
            size_px=self.size_px,
            clusterable=self.clusterable,
            files=np.array(files),
            file_photo=np.array([self.photo_of_file.get(f, -1) for f in files]),
            file_truth=np.array([self.truth[f] for f in files]),
        )

    @classmethod
    def load(cls, path: Path) -> FaceTable:
        z = np.load(path)
        files = z["files"].tolist()
        return cls(
            z["face_ids"],
            z["photo_ids"],
            z["embeddings"],
            z["size_px"],
            z["clusterable"],
            {f: int(p) for f, p in zip(files, z["file_photo"].tolist()) if p >= 0},
            dict(zip(files, z["file_truth"].tolist())),
        )


def face_table(db, name: str, root: Path | None = None) -> FaceTable:
    """Read a scanned set's faces from its database."""
    from sqlalchemy import select

    from photokit.db.models import Face, PhotoLocation
    from photokit.faces.people import embedding_from_bytes

    root = (root or FACES / name).resolve()
    truth = labels_of(name, root)
    with db.session() as session:
        photo_of_file = {}
        for path, photo in session.execute(select(PhotoLocation.path, PhotoLocation.photo_id)):
            rel = os.path.relpath(path, root)
            if rel in truth:
                photo_of_file[rel] = photo
        rows = session.execute(
            select(Face.id, Face.photo_id, Face.embedding, Face.size_px, Face.cluster_exclusion).order_by(Face.id)
        ).all()
    nan = np.full(128, np.nan, np.float32)
    return FaceTable(
        np.array([r[0] for r in rows], np.int64),
        np.array([r[1] for r in rows], np.int64),
        np.stack([embedding_from_bytes(r[2]) if r[2] else nan for r in rows]).astype(np.float32),
        np.array([r[3] or 0.0 for r in rows]),
        np.array([r[4] is None for r in rows]),
        photo_of_file,
        truth,
    )


def scan_set(name: str, home: Path, root: Path | None = None, device: str = "cpu"):
    """Scan one set into a fresh library under ``home``: (db, seconds of the face stage)."""
    from photokit.db import open_database
    from photokit.faces.pipeline import process_pending_photos
    from photokit.library.scan import scan_library
    from photokit.settings import Settings

    settings = Settings.load(home=home, models=home / "models", db_url=f"sqlite:///{home / 'library.db'}")
    db = open_database(settings)
    scan_library(db, [str(root or FACES / name)])
    started = time.perf_counter()
    process_pending_photos(db, device=device)
    return db, time.perf_counter() - started


def evaluate(table: FaceTable, person_of_face: np.ndarray) -> dict:
    """Pairwise precision / recall over main faces, and how many >= 40 px main faces were placed."""
    from photokit.faces.evaluation import pairwise_precision_recall

    main = table.main_faces()
    files = sorted(table.truth)
    predicted, truth, big, placed = [], [], 0, 0
    for f in files:
        photo = table.photo_of_file.get(f)
        i = main.get(photo) if photo is not None else None
        person = int(person_of_face[i]) if i is not None and person_of_face[i] else None
        predicted.append(person)
        truth.append(table.truth[f])
        if i is not None and table.size_px[i] >= MIN_PLACED_SIZE:
            big += 1
            placed += person is not None
    precision, recall = pairwise_precision_recall(predicted, truth)
    found = {p for p in predicted if p is not None}
    return {
        "photos": len(files),
        "identities": len(set(truth)),
        "people_found": len(found),
        "main_faces_40px": big,
        "placed": placed,
        "placed_fraction": round(placed / big, 4) if big else 1.0,
        "pairwise_precision": round(precision, 4),
        "pairwise_recall": round(recall, 4),
    }
