"""Contact sheets: a person's aligned faces in a grid, so the user can see who a cluster is."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from sqlalchemy.orm import Session

from photokit.db.models import Person
from photokit.errors import PhotokitError
from photokit.faces.align import FaceAlignment, align_face
from photokit.faces.people import photo_path
from photokit.store.atomic import atomic_path

TILE = 128
GAP = 4


def sheet_layout(count: int, columns: int | None = None) -> tuple[int, int]:
    """(columns, rows) of a near-square grid for ``count`` tiles."""
    if count <= 0:
        return 0, 0
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    return columns, math.ceil(count / columns)


def compose_sheet(tiles: list[np.ndarray], tile: int = TILE, columns: int | None = None) -> Image.Image:
    """Tiles (each ``tile`` x ``tile`` RGB) in a grid with ``GAP`` px white gutters."""
    cols, rows = sheet_layout(len(tiles), columns)
    sheet = Image.new("RGB", (cols * tile + (cols + 1) * GAP, rows * tile + (rows + 1) * GAP), "white")
    for k, crop in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet.paste(Image.fromarray(crop), (GAP + c * (tile + GAP), GAP + r * (tile + GAP)))
    return sheet


def _placeholder(tile: int) -> np.ndarray:
    """A grey tile with a cross: the photo of this face could not be read."""
    image = Image.new("RGB", (tile, tile), (200, 200, 200))
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, tile, tile), fill=(120, 120, 120), width=2)
    draw.line((0, tile, tile, 0), fill=(120, 120, 120), width=2)
    return np.asarray(image)


def write_contact_sheet(
    session: Session, person: Person, out: str | Path, tile: int = TILE, limit: int | None = None
) -> dict:
    """Write ``person``'s aligned faces as a PNG grid to ``out`` (atomically). Returns what was drawn."""
    from photokit.library.images import read_rgb

    faces = sorted(person.faces, key=lambda f: (-(f.size_px or 0.0), f.id))
    if limit:
        faces = faces[:limit]
    if not faces:
        raise PhotokitError(f"person {person.id} has no faces to show")
    tiles, unreadable = [], 0
    cache: dict[int, np.ndarray | None] = {}
    for face in faces:
        if face.photo_id not in cache:
            path = photo_path(session, face.photo_id)
            try:
                cache[face.photo_id] = read_rgb(path) if path else None
            except PhotokitError:
                cache[face.photo_id] = None
        rgb = cache[face.photo_id]
        if rgb is None or face.alignment is None:
            tiles.append(_placeholder(tile))
            unreadable += 1
            continue
        tiles.append(align_face(rgb, FaceAlignment.from_json(face.alignment), tile))
    sheet = compose_sheet(tiles, tile)
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG")
    cols, rows = sheet_layout(len(tiles))
    return {
        "person": person.id,
        "out": str(out),
        "tiles": len(tiles),
        "columns": cols,
        "rows": rows,
        "tile_px": tile,
        "unreadable": unreadable,
        "face_ids": [f.id for f in faces],
    }
