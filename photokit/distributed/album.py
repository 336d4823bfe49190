"""Album restoration on Ray: the same jobs (``EnhanceJob`` rows, same batch key) as a single-process run,
so either one resumes the other; each worker keeps its generator, detector and loss loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from photokit.db.vocab import JobStatus
from photokit.distributed.workers import HandlerFactory, run_batch_on_workers, start_workers
from photokit.jobs.queue import ClaimedJob, JobOutcome, lease_seconds
from photokit.reporting import NULL_REPORTER, Reporter
from photokit.restore.batch import AlbumPlan, BatchSummary, restore_photo
from photokit.restore.crops import CropCollector
from photokit.restore.options import EnhanceOptions
from photokit.restore.pipeline import Enhancer
from photokit.settings import Settings


class EnhanceHandler:
    """Restores one photo per job with a long-lived ``Enhancer``; with ``keep_crops`` its faces' crops go
    back to the submitting terminal with the outcome (for ``enhance --report``), not into the database."""

    def __init__(self, enhancer: Enhancer, targets: dict[str, str], keep_crops: bool = False) -> None:
        self.enhancer, self.targets = enhancer, targets
        self.crops = CropCollector() if keep_crops else None
        if self.crops is not None:
            self.enhancer.on_face = self.crops

    def __call__(self, job: ClaimedJob) -> JobOutcome:
        # Interrupted (Ctrl-C, ray.cancel): KeyboardInterrupt, and the job goes back to the queue.
        outcome = restore_photo(self.enhancer, Path(job.subject), Path(self.targets[job.subject]))
        if self.crops is not None:
            outcome.extra = {"crops": self.crops.take(job.subject)}
        return outcome


@dataclass
class LibraryEnhancerFactory:
    """What `photokit enhance` builds, rebuilt inside each worker: the library's people and priors."""

    settings: Settings
    options: EnhanceOptions
    device: str
    targets: dict[str, str]
    keep_crops: bool = False

    def __call__(self) -> EnhanceHandler:
        from photokit.db import open_database
        from photokit.devices import resolve_device
        from photokit.prior.storage import person_owner
        from photokit.restore.priors import DatabasePeople, StorePriors

        db = open_database(self.settings, upgrade=False)
        device = resolve_device(self.device)
        priors = StorePriors(self.settings, device, owner_of=lambda person_id: person_owner(db, person_id))
        enhancer = Enhancer(self.options, priors, DatabasePeople(db), device=device)
        return EnhanceHandler(enhancer, self.targets, self.keep_crops)


def restore_album_on_ray(
    db,
    plan: AlbumPlan,
    options: EnhanceOptions,
    factory: HandlerFactory,
    workers: int,
    num_gpus: float = 0,
    reporter: Reporter = NULL_REPORTER,
    lease_s: float | None = None,
    crops: dict | None = None,
) -> BatchSummary:
    """Restore the album queued as ``plan`` (``queue_album``) on ``workers`` Ray actors; the summary has the
    same shape as ``run_batch``'s. ``crops`` receives the faces' crops the workers send back (``keep_crops``)."""
    summary = BatchSummary(batch_key=plan.key, total=len(plan.sources), already_done=list(plan.already_done))
    lease_s = lease_s or lease_seconds()
    actors = start_workers(db.url, factory, workers, num_gpus=num_gpus, lease_s=lease_s)
    try:
        outcomes = run_batch_on_workers(
            db, plan.key, actors, reporter, f"restoring photos on {workers} Ray workers",
            total=len(plan.sources), completed=len(summary.already_done), poll_s=min(1.0, lease_s / 4),
        )  # fmt: skip
    finally:
        import ray

        for actor in actors:
            ray.kill(actor)
    order = {str(s): i for i, s in enumerate(plan.sources)}
    for outcome in sorted(outcomes, key=lambda o: order[o["subject"]]):
        if crops is not None and outcome.get("extra"):
            crops.update(outcome["extra"].get("crops", {}))
        if outcome["status"] == JobStatus.DONE.value:
            summary.done.append(outcome["report"])
        elif outcome["status"] == JobStatus.SKIPPED.value:
            summary.skipped.append({"source": outcome["subject"], "reason": outcome["error"]})
        else:
            summary.failed.append({"source": outcome["subject"], "error": outcome["error"]})
    return summary
