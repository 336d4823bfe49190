"""The per-file decisions of one scan, against an in-memory picture of what the database already knows.

`library.scan` walks the roots and commits batches; a `Scanner` decides, file by file, whether a file is
unchanged, new, changed, moved, a duplicate, back again or skipped, and writes only what changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from photokit.db.models import Photo, PhotoLocation, SkippedFile
from photokit.db.vocab import FacesStatus, LocationStatus
from photokit.library import images
from photokit.library.walk import FoundFile, WalkResult

_SQL_CHUNK = 500  # ids per bulk UPDATE/DELETE (SQLite's bound-parameter limit is far above)

PRESENT, MISSING, MOVED = LocationStatus.PRESENT, LocationStatus.MISSING, LocationStatus.MOVED


@dataclass
class ScanSummary:
    """What a scan found. Every file lands in exactly one of the per-file counts."""

    roots: list[str]
    files: int = 0
    new: int = 0  # a new path with content never seen before (a new Photo)
    unchanged: int = 0  # same path, same size and mtime (not reopened) or same content
    changed: int = 0  # same path, different content (a new Photo if that content is new)
    moved: int = 0  # known content at a new path whose old path is gone
    duplicates: int = 0  # known content at a new path while another copy is still present
    returned: int = 0  # a missing (or moved-away) file back at a known path, or known content again
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> files
    missing: int = 0  # locations under the roots whose file is gone (marked, not deleted)
    unreadable_dirs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def to_json(self) -> dict:
        return {
            "roots": self.roots,
            "files": self.files,
            "new": self.new,
            "unchanged": self.unchanged,
            "changed": self.changed,
            "moved": self.moved,
            "duplicates": self.duplicates,
            "returned": self.returned,
            "missing": self.missing,
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_total": self.skipped_total,
            "unreadable_dirs": self.unreadable_dirs,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
        }


@dataclass
class _KnownLocation:
    id: int
    photo_id: int
    size: int
    mtime_ns: int
    status: str


@dataclass
class _KnownSkip:
    id: int
    size: int
    mtime_ns: int
    reason: str


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Scanner:
    """The per-file decisions of one scan, against an in-memory picture of the database."""

    def __init__(self, session: Session, walk: WalkResult, summary: ScanSummary) -> None:
        self.walk = walk
        self.walked_paths = {f.path for f in walk.files}
        self.summary = summary
        self.locations: dict[str, _KnownLocation] = {
            path: _KnownLocation(id_, photo_id, size, mtime_ns, status)
            for id_, path, photo_id, size, mtime_ns, status in session.execute(
                select(
                    PhotoLocation.id,
                    PhotoLocation.path,
                    PhotoLocation.photo_id,
                    PhotoLocation.size,
                    PhotoLocation.mtime_ns,
                    PhotoLocation.status,
                )
            )
        }
        self.skips: dict[str, _KnownSkip] = {
            path: _KnownSkip(id_, size, mtime_ns, reason)
            for id_, path, size, mtime_ns, reason in session.execute(
                select(SkippedFile.id, SkippedFile.path, SkippedFile.size, SkippedFile.mtime_ns, SkippedFile.reason)
            )
        }
        self.photo_by_sha: dict[str, int] = {sha: id_ for sha, id_ in session.execute(select(Photo.sha256, Photo.id))}
        self.seen_location_ids: list[int] = []
        self.seen_skip_ids: list[int] = []

    # -- one file -------------------------------------------------------------------------------
    def process(self, session: Session, found: FoundFile, now: datetime) -> None:
        known = self.locations.get(found.path)
        if self._settled_without_reading(session, found, known, now):
            return
        skip = self.skips.get(found.path)
        if skip is not None and self._still_skipped(found, skip):
            return
        try:
            sha, info = self._read(found)
        except images.ImageReadError as exc:
            if exc.reason == "missing":  # deleted while we were scanning: the next scan sees it gone
                return
            self._record_skip(session, found, skip, exc, now)
            if known is not None and known.status == PRESENT:  # a photo here was replaced by a bad file
                session.execute(
                    update(PhotoLocation).where(PhotoLocation.id == known.id).values(status=MISSING, missing_since=now)
                )
                known.status = MISSING
            return
        if skip is not None:
            session.execute(delete(SkippedFile).where(SkippedFile.id == skip.id))
        photo_id = self.photo_by_sha.get(sha)
        is_new_content = photo_id is None
        if photo_id is None:
            photo_id = self._add_photo(session, found, sha, info, now)
        if known is not None:
            self._update_known_path(session, found, known, photo_id, now)
        else:
            self._add_location(session, found, photo_id, is_new_content, now)

    def _settled_without_reading(
        self, session: Session, found: FoundFile, known: _KnownLocation | None, now: datetime
    ) -> bool:
        """A known path with the same size and mtime: unchanged, or back after being missing."""
        if known is None or (known.size, known.mtime_ns) != (found.size, found.mtime_ns):
            return False
        if known.status == PRESENT:
            self.seen_location_ids.append(known.id)
            self.summary.unchanged += 1
        else:
            self._set_location(session, known, now, photo_id=known.photo_id, size=found.size, mtime_ns=found.mtime_ns)
            self.summary.returned += 1
        return True

    def _still_skipped(self, found: FoundFile, skip: _KnownSkip) -> bool:
        """A file skipped before and untouched since (unreadable files are retried: permissions change
        without touching mtime)."""
        if skip.reason == "unreadable" or (skip.size, skip.mtime_ns) != (found.size, found.mtime_ns):
            return False
        self.seen_skip_ids.append(skip.id)
        self._count_skip(skip.reason)
        return True

    def _update_known_path(
        self, session: Session, found: FoundFile, known: _KnownLocation, photo_id: int, now: datetime
    ) -> None:
        """A known path whose size or mtime changed: same content (unchanged or returned) or new content."""
        if known.photo_id == photo_id:
            if known.status == PRESENT:
                self.summary.unchanged += 1
            else:
                self.summary.returned += 1
        else:
            self.summary.changed += 1
        self._set_location(session, known, now, photo_id=photo_id, size=found.size, mtime_ns=found.mtime_ns)

    def _add_location(
        self, session: Session, found: FoundFile, photo_id: int, is_new_content: bool, now: datetime
    ) -> None:
        """A new path: new content, or known content that moved here, is a duplicate, or came back."""
        moved_from = None
        if is_new_content:
            self.summary.new += 1
        else:
            moved_from, has_present_copy = self._claim_move_source(session, photo_id, found.path, now)
            if moved_from is not None:
                self.summary.moved += 1
            elif has_present_copy:
                self.summary.duplicates += 1
            else:
                self.summary.returned += 1
        session.add(
            PhotoLocation(
                photo_id=photo_id,
                path=found.path,
                size=found.size,
                mtime_ns=found.mtime_ns,
                status=PRESENT,
                first_seen=now,
                last_seen=now,
                moved_from=moved_from,
            )
        )

    def _read(self, found: FoundFile) -> tuple[str, images.ImageInfo | None]:
        """Sniff and hash the file (one open); decode it only when its content is new to the library."""
        if found.size == 0:
            raise images.ImageReadError(found.path, "empty")
        try:
            with open(found.path, "rb") as fh:
                if images.sniff_bytes(fh.read(32)) is None:
                    raise images.ImageReadError(found.path, "not_image")
                fh.seek(0)
                sha = hashlib.file_digest(fh, "sha256").hexdigest()
        except FileNotFoundError:
            raise images.ImageReadError(found.path, "missing") from None
        except OSError as exc:
            raise images.ImageReadError(found.path, "unreadable", exc.strerror or str(exc)) from None
        if sha in self.photo_by_sha:  # same bytes as a photo already validated
            return sha, None
        return sha, images.probe_image(found.path)

    def _add_photo(
        self, session: Session, found: FoundFile, sha: str, info: images.ImageInfo | None, now: datetime
    ) -> int:
        assert info is not None
        photo = Photo(
            sha256=sha,
            size=found.size,
            format=info.format,
            width=info.width,
            height=info.height,
            orientation=info.orientation,
            taken_at=info.taken_at,
            camera_make=info.camera_make,
            camera_model=info.camera_model,
            created_at=now,
            faces_status=FacesStatus.PENDING,
        )
        session.add(photo)
        session.flush()
        self.photo_by_sha[sha] = photo.id
        return photo.id

    def _claim_move_source(
        self, session: Session, photo_id: int, new_path: str, now: datetime
    ) -> tuple[str | None, bool]:
        """(old path this content moved from, whether a copy is still present elsewhere).

        A source is a location this scan vouches is gone (under a walked root, not found), else one
        already marked missing. It becomes 'moved', so it is neither reused nor counted missing.
        """
        rows = session.execute(
            select(PhotoLocation.id, PhotoLocation.path, PhotoLocation.status)
            .where(PhotoLocation.photo_id == photo_id, PhotoLocation.path != new_path)
            .order_by(PhotoLocation.id)
        ).all()
        gone_now = [
            r for r in rows if r.status == PRESENT and r.path not in self.walked_paths and self.walk.covers(r.path)
        ]
        already_missing = [r for r in rows if r.status == MISSING]
        candidates = gone_now or already_missing
        source = candidates[0] if candidates else None
        if source is None:
            return None, any(r.status == PRESENT for r in rows)
        session.execute(
            update(PhotoLocation)
            .where(PhotoLocation.id == source.id)
            .values(status=MOVED, missing_since=func.coalesce(PhotoLocation.missing_since, now))
            .execution_options(synchronize_session=False)
        )
        if source.path in self.locations:
            self.locations[source.path].status = MOVED
        return source.path, any(r.status == PRESENT and r.id != source.id for r in rows)

    def _count_skip(self, reason: str) -> None:
        self.summary.skipped[reason] = self.summary.skipped.get(reason, 0) + 1

    def _set_location(self, session: Session, known: _KnownLocation, now: datetime, **values) -> None:
        session.execute(
            update(PhotoLocation)
            .where(PhotoLocation.id == known.id)
            .values(status=PRESENT, missing_since=None, last_seen=now, **values)
        )
        known.status, known.photo_id = PRESENT, values["photo_id"]
        known.size, known.mtime_ns = values["size"], values["mtime_ns"]

    def _record_skip(
        self, session: Session, found: FoundFile, skip: _KnownSkip | None, exc: images.ImageReadError, now: datetime
    ) -> None:
        self._count_skip(exc.reason)
        values = dict(
            size=found.size, mtime_ns=found.mtime_ns, reason=exc.reason, detail=exc.detail or None, last_seen=now
        )
        if skip is None:
            session.add(SkippedFile(path=found.path, **values))
        else:
            session.execute(update(SkippedFile).where(SkippedFile.id == skip.id).values(**values))

    # -- end of a batch / of the scan -----------------------------------------------------------
    def flush_seen(self, session: Session, now: datetime) -> None:
        """Bulk 'last seen' for files that needed no other write."""
        for model, seen in ((PhotoLocation, self.seen_location_ids), (SkippedFile, self.seen_skip_ids)):
            for ids in _chunks(seen, _SQL_CHUNK):
                session.execute(
                    update(model)
                    .where(model.id.in_(ids))
                    .values(last_seen=now)
                    .execution_options(synchronize_session=False)
                )
            seen.clear()

    def finish(self, session: Session, now: datetime) -> None:
        """After a complete walk: mark vanished locations missing, forget vanished skipped files."""
        gone = [
            known.id
            for path, known in self.locations.items()
            if known.status == PRESENT and path not in self.walked_paths and self.walk.covers(path)
        ]
        for ids in _chunks(gone, _SQL_CHUNK):
            session.execute(
                update(PhotoLocation)
                .where(PhotoLocation.id.in_(ids), PhotoLocation.status == PRESENT)
                .values(status=MISSING, missing_since=now)
                .execution_options(synchronize_session=False)
            )
        self.summary.missing = len(gone)
        stale_skips = [
            skip.id for path, skip in self.skips.items() if path not in self.walked_paths and self.walk.covers(path)
        ]
        for ids in _chunks(stale_skips, _SQL_CHUNK):
            session.execute(
                delete(SkippedFile).where(SkippedFile.id.in_(ids)).execution_options(synchronize_session=False)
            )
