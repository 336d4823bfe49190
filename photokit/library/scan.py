"""Incremental scan of photo folders into the library database.

One pass: walk the roots, then for every file decide from a bulk pre-load of what the database
already knows (path -> size, mtime, photo) whether it must be read at all. Only new or changed files
are hashed (sha256, streamed), and only content never seen before is decoded. Same content at a new
path is a duplicate, or a move when its old path is gone. Work is committed every ``batch_size`` files or
MAX_BATCH_SECONDS, so Ctrl-C loses at most one batch; locations are marked missing only after a complete walk.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from photokit.db import Database
from photokit.db.models import ScanRun, utcnow
from photokit.errors import DatabaseError
from photokit.library.scanner import Scanner, ScanSummary
from photokit.library.walk import WalkResult, resolve_roots, walk_roots
from photokit.pathtext import shown
from photokit.reporting import NULL_REPORTER, Reporter, reported_task

DEFAULT_BATCH_SIZE = 200
MAX_BATCH_SECONDS = 1.0  # how long one batch may hold the database's write lock
MAX_BATCH_RETRIES = 20  # batches redone after another scan's concurrent insert of the same files


def scan_library(
    db: Database,
    roots: Sequence[str | os.PathLike],
    reporter: Reporter = NULL_REPORTER,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ScanSummary:
    """Bring the library index up to date with the files under ``roots``.

    Raises ``PhotokitError`` for a missing root and ``DatabaseError`` for a locked or unreadable
    database. On any interruption the batches already committed stay, and the scan's history row
    says it was interrupted.
    """
    started = time.perf_counter()
    root_paths = resolve_roots(list(roots))
    summary = ScanSummary(roots=[shown(str(p)) for p in root_paths])  # JSON columns hold printable text
    with db.session() as session:
        run = ScanRun(started_at=utcnow(), roots=summary.roots, summary={})
        session.add(run)
        session.flush()
        run_id = run.id

    try:
        with reported_task(reporter, "finding", "finding files", None) as finding:

            def on_file(count: int) -> None:
                if count % 256 == 0:
                    reporter.task_advanced(finding, 256)

            walk = walk_roots(root_paths, on_file=on_file)
        summary.files = len(walk.files)
        summary.unreadable_dirs = [shown(d) for d in walk.unreadable_dirs]
        with db.session() as session:
            scanner = Scanner(session, walk, summary)
        with reported_task(reporter, "indexing", "indexing", len(walk.files)) as indexing:
            scanner = _index_files(
                db, scanner, walk, summary, batch_size, lambda n, path: reporter.task_advanced(indexing, n, path)
            )
        with db.session() as session:
            scanner.finish(session, utcnow())
            summary.seconds = time.perf_counter() - started
            session.execute(
                update(ScanRun).where(ScanRun.id == run_id).values(finished_at=utcnow(), summary=summary.to_json())
            )
    except BaseException:
        summary.interrupted = True
        summary.seconds = time.perf_counter() - started
        with contextlib.suppress(Exception), db.session() as session:  # best effort: the database may be what failed
            session.execute(update(ScanRun).where(ScanRun.id == run_id).values(summary=summary.to_json()))
        raise
    return summary


def _index_files(
    db: Database, scanner: Scanner, walk: WalkResult, summary: ScanSummary, batch_size: int, on_files
) -> Scanner:
    """Process ``walk.files`` in committed batches; returns the scanner in use at the end. A batch ends after
    ``batch_size`` files or MAX_BATCH_SECONDS, whichever comes first: it holds SQLite's write lock, so other
    photokit commands never wait long on a slow disk. ``on_files(count, name)`` reports progress (a negative
    count when a batch is redone)."""
    files, done, retries = walk.files, 0, 0
    while done < len(files):
        before = (done, copy.deepcopy(summary))
        try:
            with db.session() as session:
                now, batch_started = utcnow(), time.perf_counter()
                batch_end = min(len(files), done + max(1, batch_size))
                while True:
                    found = files[done]
                    scanner.process(session, found, now)
                    done += 1
                    on_files(1, os.path.basename(found.path)[:40])
                    if done >= batch_end or time.perf_counter() - batch_started >= MAX_BATCH_SECONDS:
                        break
                scanner.flush_seen(session, now)
        except DatabaseError as exc:
            # Another scan of the same files committed them first (UNIQUE path or content): the batch rolled
            # back; see the database as it is now and do the batch again.
            if not isinstance(exc.__cause__, IntegrityError) or retries >= MAX_BATCH_RETRIES:
                raise
            retries += 1
            redone = done - before[0]
            done, restored = before
            vars(summary).update(vars(restored))
            on_files(-redone, None)
            with db.session(write=False) as session:
                scanner = Scanner(session, walk, summary)
    return scanner
