"""Image routes. Every file is found from an id in this library's database; no request carries a path."""

from __future__ import annotations

import mimetypes
from enum import IntEnum, StrEnum

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from photokit.db.models import EnhanceJob, Face, Photo
from photokit.library.images import ImageReadError, sniff_format
from photokit.web import security
from photokit.web.app import gallery
from photokit.web.media import BROWSER_FORMATS, CACHED, REVALIDATE, etag_for, file_etag, send_file

router = APIRouter(prefix="/media")


class ThumbSize(IntEnum):
    SMALL = 256
    LARGE = 1024


class Side(StrEnum):
    BEFORE = "before"
    AFTER = "after"


def _photo_source(request: Request, photo_id: int) -> tuple[str, object]:
    """(sha256, readable file) of a library photo, or 404 (unknown id, file gone or outside the library)."""
    with gallery(request).db.session(write=False) as session:
        photo = session.get(Photo, photo_id)
        if photo is None:
            raise HTTPException(404, f"there is no photo {photo_id} in this library")
        path = security.library_photo_file(session, photo_id)
        if path is None:
            raise HTTPException(404, f"photo {photo_id} has no readable file inside the library's folders")
        return photo.sha256, path


async def _rendition(make, *args):
    try:
        return await run_in_threadpool(make, *args)
    except ImageReadError as exc:
        raise HTTPException(422, f"this photo cannot be decoded: {exc}") from None


@router.get("/photo/{photo_id}/thumb/{size}")
async def photo_thumb(request: Request, photo_id: int, size: ThumbSize) -> Response:
    g = gallery(request)
    sha, path = _photo_source(request, photo_id)
    target = await _rendition(g.media.thumbnail, path, sha, size.value)
    return send_file(request, target, etag_for(target.name), "image/jpeg", CACHED)


@router.get("/photo/{photo_id}/full")
async def photo_full(request: Request, photo_id: int) -> Response:
    """The photo at full resolution: the original as it is when a browser can show it, else a cached JPEG."""
    g = gallery(request)
    sha, path = _photo_source(request, photo_id)
    fmt = sniff_format(path)
    if fmt in BROWSER_FORMATS:
        return send_file(request, path, etag_for(sha), BROWSER_FORMATS[fmt], REVALIDATE)
    target = await _rendition(g.media.view, path, sha)
    return send_file(request, target, etag_for(target.name), "image/jpeg", CACHED)


@router.get("/face/{face_id}")
async def face_crop(request: Request, face_id: int) -> Response:
    g = gallery(request)
    with g.db.session(write=False) as session:
        face = session.get(Face, face_id)
        if face is None:
            raise HTTPException(404, f"there is no face {face_id} in this library")
        photo_id, box = face.photo_id, list(face.box)
    sha, path = _photo_source(request, photo_id)
    target = await _rendition(g.media.face_crop, path, sha, face_id, box)
    return send_file(request, target, etag_for(target.name), "image/jpeg", CACHED)


@router.get("/restoration/{job_id}/{side}")
def restoration_image(request: Request, job_id: int, side: Side) -> Response:
    """A finished restoration's input or output, at full resolution (only files the database recorded)."""
    with gallery(request).db.session(write=False) as session:
        job = session.get(EnhanceJob, job_id)
        if job is None or job.status != "done":
            raise HTTPException(404, f"there is no finished restoration {job_id} in this library")
        raw = job.source_path if side is Side.BEFORE else job.output_path
    path = security.recorded_output_file(raw)
    if path is None:
        raise HTTPException(404, f"the {side.value} image of restoration {job_id} is not there any more")
    fmt = sniff_format(path)
    if fmt not in BROWSER_FORMATS:
        raise HTTPException(415, f"the {side.value} image is {fmt or 'not an image'}, which browsers cannot show")
    media_type = BROWSER_FORMATS[fmt] or mimetypes.guess_type(path.name)[0]
    return send_file(request, path, file_etag(path), media_type, REVALIDATE)
