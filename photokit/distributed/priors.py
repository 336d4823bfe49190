"""`prior build --all --ray`: the batch's prior builds (``photokit.prior.build_all``) on Ray workers, one
build at a time per worker (a GPU each when the cluster has them), each reading the library and writing the
prior to the shared ``PHOTOKIT_HOME``; each running build's stage (recorded on its job row) and each finished
build stream back to the submitting terminal."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from photokit.distributed.workers import ProgressToDatabase, run_batch_on_workers, start_workers
from photokit.jobs.queue import ClaimedJob, JobOutcome, lease_seconds, running_progress
from photokit.prior.build_all import (
    SUBJECT,
    AllPriorsPlan,
    AllPriorsSummary,
    BuildRequest,
    build_job,
    queue_builds,
    summarize,
)
from photokit.reporting import NULL_REPORTER, Reporter
from photokit.settings import Settings


class PriorBuildHandler:
    def __init__(self, settings: Settings, request: BuildRequest) -> None:
        from photokit.db import open_database

        self.db = open_database(settings, upgrade=False)
        self.settings, self.request = settings, request

    def __call__(self, job: ClaimedJob) -> JobOutcome:
        return build_job(self.db, self.settings, job, self.request, ProgressToDatabase(self.db, job))


@dataclass
class PriorBuildFactory:
    settings: Settings
    request: BuildRequest

    def __call__(self) -> PriorBuildHandler:
        return PriorBuildHandler(self.settings, self.request)


def builds_status(db, plan: AllPriorsPlan) -> str | None:
    """How the running builds are getting on, e.g. "Ann: tuning 120/300; Bob: anchors 2/8"."""
    names = {SUBJECT.format(p.person_id): p.name or f"person {p.person_id}" for p in plan.people}
    parts = [
        f"{names.get(subject, subject)}: {p['stage']}"
        + (f" {p['done']:.0f}/{p['total']:.0f}" if p.get("total") else "")
        for subject, p in sorted(running_progress(db, plan.key).items())
    ]
    return "; ".join(parts) or None


def build_priors_on_ray(
    db,
    plan: AllPriorsPlan,
    factory: PriorBuildFactory,
    workers: int,
    num_gpus: float = 0,
    reporter: Reporter = NULL_REPORTER,
) -> AllPriorsSummary:
    """Build the plan's priors on ``workers`` Ray actors; the same summary as ``build_all_priors``."""
    queue_builds(db, plan)
    if plan.to_build:
        count = min(workers, len(plan.to_build))
        lease_s = lease_seconds()
        actors = start_workers(db.url, factory, count, num_gpus=num_gpus, lease_s=lease_s)
        try:
            run_batch_on_workers(
                db, plan.key, actors, reporter, f"personal priors on {count} Ray workers", total=len(plan.to_build),
                poll_s=min(1.0, lease_s / 4), watch=partial(builds_status, db, plan),
            )  # fmt: skip
        finally:
            import ray

            for actor in actors:
                ray.kill(actor)
    return summarize(db, plan)
