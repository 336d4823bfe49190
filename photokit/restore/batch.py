"""Album restoration as resumable jobs in the library database (``EnhanceJob`` rows).

A batch is identified by its inputs, output folder and result-affecting options; re-running the same
command skips the photos already done (whose output still exists), retries the rest, and records each
failure with its one-line reason. Ctrl-C leaves finished photos done and the interrupted one queued.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from photokit.db.models import EnhanceJob, utcnow
from photokit.db.vocab import JobStatus
from photokit.errors import PhotokitError
from photokit.library.images import sniff_format
from photokit.pathtext import shown
from photokit.reporting import NULL_REPORTER, Reporter, reported_task
from photokit.restore.output import output_path_for
from photokit.restore.pipeline import Enhancer, NoFacesError

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".heic", ".heif", ".bmp", ".gif"}


@dataclass
class BatchSummary:
    batch_key: str
    total: int = 0
    done: list[dict] = field(default_factory=list)  # reports of photos restored in this run
    already_done: list[dict] = field(default_factory=list)  # {source, output} skipped as finished
    skipped: list[dict] = field(default_factory=list)  # {source, reason}: nothing to restore
    failed: list[dict] = field(default_factory=list)  # {source, error}

    def to_json(self) -> dict:
        return {
            "batch": self.batch_key,
            "total": self.total,
            "restored": len(self.done),
            "already_done": len(self.already_done),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "reports": self.done,
            "already_done_photos": self.already_done,
            "skipped_photos": self.skipped,
            "failures": self.failed,
        }


def is_output_stem(stem: str, suffix: str) -> bool:
    """``a_restored``, and the free names photokit picks beside an existing one (``a_restored_1``, ...)."""
    return bool(suffix) and re.fullmatch(rf".*{re.escape(suffix)}(_\d+)?", stem, flags=re.DOTALL) is not None


def collect_sources(
    paths: list[str | Path], suffix: str = "_restored", out_dir: Path | None = None
) -> dict[Path, Path | None]:
    """Every photo to restore (resolved path) -> its folder relative to the album it was found in
    (None for a file given directly). Folders are searched recursively, sorted, hidden folders skipped.

    photokit's own outputs (``*<suffix>.*``, ``*<suffix>_<n>.*`` or anything inside ``out_dir``) are never
    inputs. A photo reached twice keeps its first place.
    """
    found: dict[Path, Path | None] = {}
    out_resolved = out_dir.resolve() if out_dir is not None else None
    for raw in paths:
        if not str(raw).strip():
            raise PhotokitError("an empty path was given: name a photo or folder ('.' for the current folder)")
        path = Path(raw).expanduser()
        if not path.exists():
            raise PhotokitError(f"{path}: no such file or folder")
        # An output folder inside this album holds earlier outputs, never inputs; an output folder that is the
        # album itself (or contains it) does not hide the album: outputs there are told apart by their suffix.
        skip_dir = out_resolved if out_resolved is not None and path.resolve() in out_resolved.parents else None
        if path.is_file():
            found.setdefault(path.resolve(), None)
            continue
        for item in sorted(path.rglob("*")):
            rel = item.relative_to(path)
            if any(part.startswith(".") for part in rel.parts) or not item.is_file():
                continue
            if is_output_stem(item.stem, suffix):
                continue
            # Photo-named files (so a broken one is reported as a failure) and photos recognised by content
            # (scans without an extension, a PNG called .dat), as the library scan does.
            if item.suffix.lower() not in PHOTO_SUFFIXES and sniff_format(item) is None:
                continue
            if skip_dir is not None and skip_dir in item.resolve().parents:
                continue
            found.setdefault(item.resolve(), rel.parent)
    return found


def plan_outputs(
    sources: dict[Path, Path | None],
    out_dir: Path | None,
    suffix: str,
    keep_existing: bool = False,
    own: frozenset[str] = frozenset(),
) -> dict[Path, Path]:
    """One output path per photo (``output_path_for``), never shared by two photos of the batch and never
    one of its originals: a clash (e.g. ``a.heic`` and ``a.bmp`` both become ``a_restored.png``) gets
    ``_1``, ``_2``... Deterministic, so a resumed batch finds the same outputs. With ``keep_existing`` a
    file already there (the user's own, or an earlier run's) is never a target either, unless it is in
    ``own`` (the outputs this batch already wrote)."""

    def key(path: Path) -> str:  # case-insensitive file systems see IMG.JPG and img.jpg as one file
        return str(path.resolve()).casefold()

    taken = {key(source) for source in sources}
    targets: dict[Path, Path] = {}
    for source, subfolder in sources.items():
        first = output_path_for(source, out_dir, suffix, subfolder)
        target, n = first, 1
        while key(target) in taken or (keep_existing and target.exists() and str(target) not in own):
            target = first.with_name(f"{first.stem}_{n}{first.suffix}")
            n += 1
        taken.add(key(target))
        targets[source] = target
    return targets


def batch_key(paths: list[str | Path], out_dir: Path | None, options_fingerprint: str) -> str:
    data = {
        "inputs": sorted(str(Path(p).expanduser().resolve()) for p in paths),
        "out": str(out_dir.resolve()) if out_dir else None,
        "options": options_fingerprint,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def run_batch(
    db,
    inputs: list[str | Path],
    enhancer: Enhancer,
    reporter: Reporter = NULL_REPORTER,
    on_photo_done: Callable[[Path, str], None] | None = None,
    force: bool = False,
) -> BatchSummary:
    """Restore every photo of ``inputs``, skipping those an earlier run of the same batch finished. An existing
    file is replaced only with ``force``: otherwise the output takes the next free name (``_1``, ``_2``...)."""
    options = enhancer.options
    sources = collect_sources(inputs, options.suffix, options.out_dir)
    photos = list(sources)
    key = batch_key(inputs, options.out_dir, options.fingerprint())
    summary = BatchSummary(batch_key=key, total=len(photos))
    own = _queue_jobs(db, key, photos, options.fingerprint())
    preferred = plan_outputs(sources, options.out_dir, options.suffix)
    targets = plan_outputs(sources, options.out_dir, options.suffix, keep_existing=not force, own=own)
    with reported_task(reporter, "batch", "restoring photos", len(photos)) as task:
        for photo in photos:
            output = _claim(db, key, photo)
            if output is not None:
                summary.already_done.append({"source": str(photo), "output": output})
                reporter.task_advanced(task, 1, f"{photo.name} already done")
                continue
            reporter.task_advanced(task, 0, photo.name)
            status, error, output, report = _process(enhancer, photo, targets[photo])
            _record(db, key, photo, status, error, output, report)
            if status is None:  # interrupted
                raise KeyboardInterrupt
            if status == JobStatus.DONE:
                if report is not None and targets[photo] != preferred[photo]:
                    report["warnings"].append(
                        f"{shown(preferred[photo])} already exists: wrote {shown(targets[photo])} (--force replaces it)"
                    )
                summary.done.append(report)
            elif status == JobStatus.SKIPPED:
                summary.skipped.append({"source": str(photo), "reason": error})
            else:
                summary.failed.append({"source": str(photo), "error": error})
            reporter.task_advanced(task, 1)
            if on_photo_done is not None:
                on_photo_done(photo, status)
    return summary


def _queue_jobs(db, key: str, photos: list[Path], fingerprint: str) -> frozenset[str]:
    """One queued job row per photo the batch has not seen yet; returns the outputs the batch already wrote."""
    with db.session() as session:
        existing = {
            job.source_path: job for job in session.scalars(select(EnhanceJob).where(EnhanceJob.batch_key == key))
        }
        own = frozenset(job.output_path for job in existing.values() if job.output_path)
        for photo in photos:
            if str(photo) not in existing:
                session.add(
                    EnhanceJob(
                        batch_key=key,
                        source_path=str(photo),
                        status=JobStatus.QUEUED,
                        options={"fingerprint": fingerprint},
                    )
                )
    return own


def _job(session, key: str, photo: Path) -> EnhanceJob:
    return session.scalars(
        select(EnhanceJob).where(EnhanceJob.batch_key == key, EnhanceJob.source_path == str(photo))
    ).one()


def _claim(db, key: str, photo: Path) -> str | None:
    """Mark the photo's job running; returns its output instead when it is already done (and still there)."""
    with db.session() as session:
        job = _job(session, key, photo)
        if job.status == JobStatus.DONE and job.output_path and Path(job.output_path).is_file():
            return job.output_path
        job.status, job.error = JobStatus.RUNNING, None
    return None


def _record(
    db, key: str, photo: Path, status: JobStatus | None, error: str | None, output: str | None, report: dict | None
) -> None:
    """Store the outcome of one photo (an interrupted one goes back to the queue)."""
    with db.session() as session:
        job = _job(session, key, photo)
        if status is None:  # interrupted: back to the queue
            job.status = JobStatus.QUEUED
        else:
            job.status, job.error, job.output_path, job.report = status, error, output, report
            job.finished_at = utcnow()


def _process(
    enhancer: Enhancer, photo: Path, target: Path
) -> tuple[JobStatus | None, str | None, str | None, dict | None]:
    """(status, error or reason, output path, report) for one photo (status None: interrupted by Ctrl-C);
    never raises."""
    try:
        report = enhancer.enhance(photo, target)
    except KeyboardInterrupt:
        return None, None, None, None
    except NoFacesError as exc:
        return JobStatus.SKIPPED, str(exc), None, None
    except PhotokitError as exc:
        return JobStatus.FAILED, str(exc), None, None
    except Exception as exc:  # one broken photo must not stop an album; the reason is kept
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return JobStatus.FAILED, shown(f"{photo}: unexpected {type(exc).__name__}: {detail}"), None, None
    doc = report.to_json()  # JSON columns hold printable text: a non-UTF-8 file name is shown escaped there
    doc.update(source=shown(doc["source"]), output=doc["output"] and shown(doc["output"]))
    return JobStatus.DONE, None, report.output, doc
