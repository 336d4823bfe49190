"""Album restoration on Ray: the same jobs (``EnhanceJob`` rows, same batch key) as a single-process run,
so either one resumes the other; each worker keeps its generator, detector and loss loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from photokit.db.models import EnhanceJob
from photokit.distributed.workers import HandlerFactory, JobOutcome, run_batch_on_workers, start_workers
from photokit.jobs.queue import ClaimedJob, JobKind, JobStatus, enqueue, requeue
from photokit.reporting import NULL_REPORTER, Reporter
from photokit.restore.batch import BatchSummary, _process, batch_key, collect_sources, plan_outputs
from photokit.restore.pipeline import EnhanceOptions, Enhancer
from photokit.settings import Settings


class EnhanceHandler:
    """Restores one photo per job with a long-lived ``Enhancer``."""

    def __init__(self, enhancer: Enhancer, targets: dict[str, str]) -> None:
        self.enhancer, self.targets = enhancer, targets

    def __call__(self, job: ClaimedJob) -> JobOutcome:
        status, error, output, report = _process(self.enhancer, Path(job.subject), Path(self.targets[job.subject]))
        if status is None:  # interrupted (Ctrl-C, ray.cancel): the job goes back to the queue
            raise KeyboardInterrupt
        return JobOutcome(status, output=output, error=error, report=report)


@dataclass
class LibraryEnhancerFactory:
    """What `photokit enhance` builds, rebuilt inside each worker: the library's people and priors."""

    settings: Settings
    options: EnhanceOptions
    device: str
    targets: dict[str, str]

    def __call__(self) -> EnhanceHandler:
        from photokit.db import open_database
        from photokit.devices import resolve_device
        from photokit.prior.storage import person_owner
        from photokit.restore.priors import DatabasePeople, StorePriors

        db = open_database(self.settings, upgrade=False)
        device = resolve_device(self.device)
        priors = StorePriors(self.settings, device, owner_of=lambda person_id: person_owner(db, person_id))
        return EnhanceHandler(Enhancer(self.options, priors, DatabasePeople(db), device=device), self.targets)


@dataclass(frozen=True)
class AlbumPlan:
    key: str
    sources: list[Path]
    targets: dict[str, str]  # source -> output path


def plan_album(inputs: list[str | Path], options: EnhanceOptions) -> AlbumPlan:
    """The photos, their outputs and the batch key, exactly as ``run_batch`` computes them."""
    sources = collect_sources(inputs, options.suffix, options.out_dir)
    targets = plan_outputs(sources, options.out_dir, options.suffix)
    key = batch_key(inputs, options.out_dir, options.fingerprint())
    return AlbumPlan(key, list(sources), {str(s): str(t) for s, t in targets.items()})


def queue_album(db, plan: AlbumPlan, fingerprint: str) -> list[dict]:
    """Queue every photo not finished yet; returns the ones already done (their output still exists)."""
    subjects = [str(s) for s in plan.sources]
    enqueue(db, JobKind.ENHANCE, plan.key, subjects, {"fingerprint": fingerprint})
    with db.session() as session:
        jobs = session.scalars(select(EnhanceJob).where(EnhanceJob.batch_key == plan.key)).all()
    done = {j.source_path: j.output_path for j in jobs if j.status == JobStatus.DONE and j.output_path}
    already = [{"source": s, "output": done[s]} for s in subjects if s in done and Path(done[s]).is_file()]
    finished = {item["source"] for item in already}
    # As a single-process run does: everything not done with its output present is (re)done.
    requeue(db, plan.key, [j.source_path for j in jobs if j.status != "running" and j.source_path not in finished])
    return already


def restore_album_on_ray(
    db,
    plan: AlbumPlan,
    options: EnhanceOptions,
    factory: HandlerFactory,
    workers: int,
    num_gpus: float = 0,
    reporter: Reporter = NULL_REPORTER,
    lease_s: float = 60.0,
) -> BatchSummary:
    """Restore the album on ``workers`` Ray actors; the summary has the same shape as ``run_batch``'s."""
    summary = BatchSummary(batch_key=plan.key, total=len(plan.sources))
    summary.already_done = queue_album(db, plan, options.fingerprint())
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
        if outcome["status"] == JobStatus.DONE.value:
            summary.done.append(outcome["report"])
        elif outcome["status"] == JobStatus.SKIPPED.value:
            summary.skipped.append({"source": outcome["subject"], "reason": outcome["error"]})
        else:
            summary.failed.append({"source": outcome["subject"], "error": outcome["error"]})
    return summary
