"""Images for the browser: thumbnails and face crops made once and cached on disk, originals streamed.

Cache files live under ``$PHOTOKIT_HOME/cache/<library id>/`` and are named by what they depend on (the
photo's sha256, a face's box), so a changed photo or box gets a new file and a new ETag; stale files are
simply never asked for again. Originals are opened read-only and never written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse, Response
from PIL import Image

from photokit.library.images import open_image
from photokit.store.atomic import atomic_path

THUMB_SIZES = (256, 1024)  # grid tiles, photo page
FACE_SIZE = 160
FACE_MARGIN = 0.35  # of the box side, around the face
BROWSER_FORMATS = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
CACHED = "private, max-age=604800, immutable"  # a cache file never changes under its name
REVALIDATE = "private, no-cache"  # originals and outputs: ask again, answered 304 while unchanged


def etag_for(key: str) -> str:
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match", "")
    return etag in {tag.strip() for tag in given.split(",")} or given.strip() == "*"


def send_file(request: Request, path: Path, etag: str, media_type: str, cache_control: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


def file_etag(path: Path) -> str:
    """For files we do not own (originals, outputs): changes when the file does."""
    st = path.stat()
    return etag_for(f"{path}:{st.st_size}:{st.st_mtime_ns}")


class MediaCache:
    """Makes and finds cached renditions under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def thumbnail(self, source: Path, sha256: str, size: int) -> Path:
        target = self.folder / "thumbs" / f"{sha256}_{size}.jpg"
        if not target.is_file():
            image = _rgb(open_image(source))
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            _save_jpeg(image, target)
        return target

    def view(self, source: Path, sha256: str) -> Path:
        """A full-resolution JPEG of a photo the browser cannot show as it is (TIFF, BMP, HEIC)."""
        target = self.folder / "views" / f"{sha256}.jpg"
        if not target.is_file():
            _save_jpeg(_rgb(open_image(source)), target, quality=92)
        return target

    def face_crop(self, source: Path, sha256: str, face_id: int, box: list[float]) -> Path:
        digest = hashlib.sha256(json.dumps([sha256, [round(float(v), 1) for v in box]]).encode()).hexdigest()[:16]
        target = self.folder / "faces" / f"{face_id}_{digest}.jpg"
        if not target.is_file():
            image = _rgb(open_image(source))
            _save_jpeg(_crop_square(image, box).resize((FACE_SIZE, FACE_SIZE), Image.Resampling.LANCZOS), target)
        return target


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA", "P"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    return image.convert("RGB")


def _crop_square(image: Image.Image, box: list[float]) -> Image.Image:
    """A square around the face box with some margin (padded with grey past the photo's edge)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * FACE_MARGIN)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    side_px = max(1, round(side))
    return image.crop((left, top, left + side_px, top + side_px))


def _save_jpeg(image: Image.Image, target: Path, quality: int = 85) -> None:
    with atomic_path(target) as tmp:
        image.save(tmp, "JPEG", quality=quality)
