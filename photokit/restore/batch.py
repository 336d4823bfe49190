"""Album restoration as resumable jobs in the library database (``EnhanceJob`` rows).

A batch is identified by its inputs, output folder and result-affecting options; re-running the same
command skips the photos already done (whose output still exists), retries the rest, and records each
failure with its one-line reason. Ctrl-C leaves finished photos done and the interrupted one queued.
Each photo is claimed with a lease (``photokit.jobs``) and its output is fixed when it is first queued, so
commands started together on one album (or Ray workers, ``photokit.distributed.album``) share it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import select

from photokit.db.models import EnhanceJob
from photokit.db.vocab import JobStatus
from photokit.errors import PhotokitError
from photokit.jobs.queue import (
    FINAL_STATUSES,
    ClaimedJob,
    JobKind,
    JobOutcome,
    claim_next,
    enqueue,
    held_by_others,
    lease_seconds,
    requeue,
    run_job,
    withdraw,
    worker_name,
)
from photokit.library.images import sniff_format
from photokit.pathtext import shown
from photokit.reporting import NULL_REPORTER, Reporter, reported_task
from photokit.restore.options import EnhanceOptions
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


@dataclass(frozen=True)
class AlbumPlan:
    """A batch as queued in the library database: every worker of the batch (this process, another
    ``photokit enhance`` of the same album, Ray workers) reads the same photos and outputs from it."""

    key: str
    sources: list[Path]
    targets: dict[str, str]  # photo -> its output, fixed by whoever queued the photo first
    preferred: dict[str, str]  # photo -> the name it would have without an existing file in the way
    already_done: list[dict] = field(default_factory=list)  # {source, output}: finished, output still there


def queue_album(db, inputs: list[str | Path], options: EnhanceOptions, force: bool = False) -> AlbumPlan:
    """Queue one job per photo the batch has not seen (its output recorded in the job), and put the
    batch's failed, skipped and lost-output photos back in the queue unless another worker is on the
    batch now (a second command started at the same time joins it; it does not redo its results)."""
    sources = collect_sources(inputs, options.suffix, options.out_dir)
    key = batch_key(inputs, options.out_dir, options.fingerprint())
    with db.session(write=False) as session:
        jobs = {j.source_path: j for j in session.scalars(select(EnhanceJob).where(EnhanceJob.batch_key == key))}
    own = frozenset(j.output_path for j in jobs.values() if j.output_path)
    own |= {j.options.get("target") for j in jobs.values() if (j.options or {}).get("target")}
    preferred = {str(s): str(t) for s, t in plan_outputs(sources, options.out_dir, options.suffix).items()}
    planned = plan_outputs(sources, options.out_dir, options.suffix, keep_existing=not force, own=frozenset(own))
    enqueue(
        db, JobKind.ENHANCE, key, [str(s) for s in sources], {"fingerprint": options.fingerprint()},
        subject_options={str(s): {"target": str(t)} for s, t in planned.items()},
    )  # fmt: skip
    with db.session(write=False) as session:
        jobs = {j.source_path: j for j in session.scalars(select(EnhanceJob).where(EnhanceJob.batch_key == key))}
    targets = {str(s): (jobs[str(s)].options or {}).get("target") or str(planned[s]) for s in sources}
    finished = {
        s: j.output_path
        for s, j in jobs.items()
        if j.status == JobStatus.DONE and j.output_path and Path(j.output_path).is_file()
    }
    already = [{"source": str(s), "output": finished[str(s)]} for s in sources if str(s) in finished]
    withdraw(db, key, [s for s in jobs if s not in targets], "no longer in the album")
    if not held_by_others(db, key):
        redo = [s for s, j in jobs.items() if j.status in FINAL_STATUSES and s not in finished and s in targets]
        requeue(db, key, redo)
    return AlbumPlan(key, list(sources), targets, preferred, already)


def run_batch(
    db,
    inputs: list[str | Path],
    enhancer: Enhancer,
    reporter: Reporter = NULL_REPORTER,
    on_photo_done: Callable[[Path, str], None] | None = None,
    force: bool = False,
) -> BatchSummary:
    """Restore every photo of ``inputs``, skipping those an earlier run of the same batch finished. An existing
    file is replaced only with ``force``: otherwise the output takes the next free name (``_1``, ``_2``...).

    Each photo is claimed with a lease (``photokit.jobs``), so several commands on the same album share it:
    each photo is restored once between them, and a stopped one's photo is redone after its lease."""
    plan = queue_album(db, inputs, enhancer.options, force)
    summary = BatchSummary(batch_key=plan.key, total=len(plan.sources), already_done=list(plan.already_done))
    worker, lease_s = worker_name(), lease_seconds()
    mine: set[str] = set()
    with reported_task(reporter, "batch", "restoring photos", len(plan.sources), len(plan.already_done)) as task:
        while (job := claim_next(db, plan.key, worker, lease_s, _waiting_note(reporter))) is not None:
            photo = Path(job.subject)
            reporter.task_advanced(task, 0, photo.name)
            status = _restore_claimed(db, job, lease_s, enhancer, plan, summary, reporter)
            mine.add(job.subject)
            reporter.task_advanced(task, 1)
            if on_photo_done is not None and status is not None:
                on_photo_done(photo, status)
    _add_others_results(db, plan, summary, mine)
    return summary


def _waiting_note(reporter: Reporter) -> Callable[[int], None]:
    def note(held: int) -> None:
        reporter.note(f"{held} photos of this album are held by another photokit; waiting for them")

    return note


def _restore_claimed(
    db, job: ClaimedJob, lease_s: float, enhancer: Enhancer, plan: AlbumPlan, summary: BatchSummary, reporter: Reporter
) -> JobStatus | None:
    """Restore one claimed photo under a heartbeat and record it; None when another worker took it over."""
    options = enhancer.options
    recorded = plan.targets.get(job.subject) or job.options.get("target")
    target = Path(recorded) if recorded else output_path_for(Path(job.subject), options.out_dir, options.suffix)
    outcome, accepted = run_job(db, job, lease_s, partial(restore_photo, enhancer, Path(job.subject), target))
    if not accepted:
        reporter.note(f"{shown(Path(job.subject).name)}: its lease ran out and another photokit redid it")
        return None
    status, error, report = outcome.status, outcome.error, outcome.report
    if status == JobStatus.DONE:
        preferred = plan.preferred.get(job.subject)
        if report is not None and preferred and str(target) != preferred:
            report["warnings"].append(
                f"{shown(preferred)} already exists: wrote {shown(target)} (replaced only when forced)"
            )
        summary.done.append(report or {})
    elif status == JobStatus.SKIPPED:
        summary.skipped.append({"source": job.subject, "reason": error})
    else:
        summary.failed.append({"source": job.subject, "error": error})
    return status


def _add_others_results(db, plan: AlbumPlan, summary: BatchSummary, mine: set[str]) -> None:
    """Photos another worker finished while this one ran: listed as already done, skipped or failed."""
    counted = mine | {item["source"] for item in summary.already_done}
    with db.session(write=False) as session:
        jobs = {j.source_path: j for j in session.scalars(select(EnhanceJob).where(EnhanceJob.batch_key == plan.key))}
    for source in map(str, plan.sources):
        job = jobs.get(source)
        if source in counted or job is None:
            continue
        if job.status == JobStatus.DONE:
            summary.already_done.append({"source": source, "output": job.output_path})
        elif job.status == JobStatus.SKIPPED:
            summary.skipped.append({"source": source, "reason": job.error})
        else:
            summary.failed.append({"source": source, "error": job.error})


def restore_photo(enhancer: Enhancer, photo: Path, target: Path) -> JobOutcome:
    """One photo's job outcome; KeyboardInterrupt when interrupted (its job goes back to the queue)."""
    status, error, output, report = _process(enhancer, photo, target)
    if status is None:
        raise KeyboardInterrupt
    return JobOutcome(status, output=output, error=error, report=report)


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
