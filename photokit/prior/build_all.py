"""`prior build --all`: the prior of every person who qualifies, each build a job row of one batch.

A person qualifies when they are named, not ignored, have no prior yet and enough usable faces; everyone
else is listed with the reason. Each build is a ``JobKind.PRIOR_BUILD`` job claimed with a lease
(``photokit.jobs``), so several processes (or Ray workers, ``photokit.distributed.priors``) share the
batch, a dead worker's build is taken over after its lease, and none is done twice. A build itself
resumes from its own checkpoints (``personal.build_prior``), so an interrupted batch loses little.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial

from sqlalchemy import select

from photokit.db.models import EnhanceJob, Person
from photokit.db.vocab import JobStatus
from photokit.errors import PhotokitError
from photokit.jobs.queue import (
    ClaimedJob,
    JobKind,
    JobOutcome,
    claim_next,
    enqueue,
    held_by_others,
    lease_seconds,
    requeue,
    run_job,
    worker_name,
)
from photokit.prior.estimate import measure_step_costs, start_build  # one build's own stages
from photokit.prior.meta import has_prior
from photokit.prior.personal import build_prior
from photokit.prior.refs import preview_selection
from photokit.prior.schedule import PRESET_SCHEDULES, BuildOptions, plan_schedule
from photokit.prior.selection import RefsConfig
from photokit.reporting import NULL_REPORTER, Reporter, reported_task
from photokit.settings import Settings

SUBJECT = "person:{}"


@dataclass(frozen=True)
class BuildRequest:
    """What every build of the batch is asked for (the same for each person; picklable for Ray workers)."""

    options: BuildOptions = field(default_factory=BuildOptions)
    device: str = "auto"
    generator: str | None = None  # the base generator file (None: the installed one)


@dataclass
class PersonBuild:
    """One person of the batch: built (``refs`` references, about ``estimate_s``), or why not."""

    person_id: int
    name: str | None
    refs: int = 0
    estimate_s: float = 0.0
    skipped: str | None = None  # the reason it is not built (None: it is)
    has_prior: bool = False  # built before (by this batch or otherwise): not built again


@dataclass
class AllPriorsPlan:
    key: str
    people: list[PersonBuild]
    unnamed: int  # people without a name (never built: name them first)
    measured_on: str  # the device the step costs were timed on

    @property
    def to_build(self) -> list[PersonBuild]:
        return [p for p in self.people if p.skipped is None and not p.has_prior]

    @property
    def estimate_s(self) -> float:
        return sum(p.estimate_s for p in self.to_build)


@dataclass
class AllPriorsSummary:
    key: str
    built: list[dict] = field(default_factory=list)  # {person_id, name, folder, ...prior summary}: this run
    already_built: list[dict] = field(default_factory=list)  # {person_id, name}: had a prior before this run
    skipped: list[dict] = field(default_factory=list)  # {person_id, name, reason}
    failed: list[dict] = field(default_factory=list)  # {person_id, name, error}
    unnamed: int = 0
    estimate_s: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def batch_key(request: BuildRequest) -> str:
    """The batch of `prior build --all` with these options (the device and restarting are not part of what
    is built)."""
    data = {"options": asdict(replace(request.options, restart=False)), "generator": request.generator or ""}
    return "priors-" + hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:25]


def plan_all_priors(db, settings: Settings, request: BuildRequest, reporter: Reporter = NULL_REPORTER) -> AllPriorsPlan:
    """Who is built and who is not (and why), with each build's cost timed once, up front, on the device."""
    options = request.options
    with db.session(write=False) as session:
        people = session.scalars(select(Person).where(Person.ignored.is_(False)).order_by(Person.id)).all()
        named = [(p.id, p.name) for p in people if p.name]
    plan = AllPriorsPlan(batch_key(request), [], len(people) - len(named), "")
    for person_id, name in named:
        if has_prior(settings, person_id) and not options.restart:
            plan.people.append(PersonBuild(person_id, name, has_prior=True))
        else:
            plan.people.append(PersonBuild(person_id, name))
    if not plan.to_build:
        return plan
    first = plan.to_build[0]
    b = start_build(
        db, settings, str(first.person_id), replace(options, restart=False), request.device, request.generator,
        None, None, reporter,
    )  # fmt: skip
    plan.measured_on = b.device.type
    upper = options.max_refs or PRESET_SCHEDULES[b.preset]["max_refs"]
    invert_batch = min(b.projector.batch_size, upper)
    inv_step_s, tun_step_s = measure_step_costs(b, invert_batch)
    if not options.max_refs:  # as build_prior: the fast preset may take fewer references to fit its budget
        upper = plan_schedule(b.preset, upper, invert_batch, inv_step_s, tun_step_s, options, b.tuning.batch_size).refs
    for person in plan.to_build:
        try:
            selection = preview_selection(
                db, str(person.person_id), b.base.generator.resolution, RefsConfig(max_refs=upper)
            )
        except PhotokitError as exc:
            person.skipped = str(exc)
            continue
        n = person.refs = min(upper, len(selection.kept))
        batch = min(invert_batch, n)
        schedule = plan_schedule(
            b.preset, n, batch, inv_step_s * batch / invert_batch, tun_step_s, replace(options, max_refs=n),
            b.tuning.batch_size,
        )  # fmt: skip
        person.estimate_s = schedule.invert_s + schedule.tuning_s
    return plan


def queue_builds(db, plan: AllPriorsPlan) -> None:
    """One job per person to build; failed builds, and built ones whose prior is gone, are queued again
    unless another worker is on the batch now."""
    subjects = {SUBJECT.format(p.person_id): p for p in plan.to_build}
    enqueue(db, JobKind.PRIOR_BUILD, plan.key, subjects)
    if held_by_others(db, plan.key):
        return
    with db.session(write=False) as session:
        rows = session.execute(
            select(EnhanceJob.source_path, EnhanceJob.status).where(EnhanceJob.batch_key == plan.key)
        ).all()
    requeue(db, plan.key, [s for s, status in rows if s in subjects and status in (JobStatus.FAILED, JobStatus.DONE)])


def build_job(
    db, settings: Settings, job: ClaimedJob, request: BuildRequest, reporter: Reporter = NULL_REPORTER
) -> JobOutcome:
    """Build (or resume) the prior of the job's person; an error fails the job with its one line (one broken
    build does not stop the others)."""
    person_id = job.subject.removeprefix("person:")
    try:
        built = build_prior(db, settings, person_id, request.options, request.device, request.generator, reporter)
    except PhotokitError as exc:
        return JobOutcome(JobStatus.FAILED, error=str(exc))
    except Exception as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return JobOutcome(JobStatus.FAILED, error=f"person {person_id}: unexpected {type(exc).__name__}: {detail}")
    return JobOutcome(JobStatus.DONE, output=str(built.folder), report=built.summary())


def build_all_priors(
    db, settings: Settings, plan: AllPriorsPlan, request: BuildRequest, reporter: Reporter = NULL_REPORTER
) -> AllPriorsSummary:
    """Build the plan's priors in this process, one job at a time (others may share the batch)."""
    queue_builds(db, plan)
    worker, lease_s = worker_name(), lease_seconds()
    names = {SUBJECT.format(p.person_id): p.name for p in plan.people}
    with reported_task(reporter, "priors", "personal priors", len(plan.to_build)) as task:
        while (job := claim_next(db, plan.key, worker, lease_s, _waiting_note(reporter))) is not None:
            reporter.note(f"building the prior of {names.get(job.subject) or job.subject}")
            run_job(db, job, lease_s, partial(build_job, db, settings, job, request, reporter))
            reporter.task_advanced(task, 1)
    return summarize(db, plan)


def _waiting_note(reporter: Reporter) -> Callable[[int], None]:
    def note(held: int) -> None:
        reporter.note(f"{held} prior builds are held by another photokit; waiting for them")

    return note


def summarize(db, plan: AllPriorsPlan) -> AllPriorsSummary:
    """The batch as the job rows record it (whichever worker built each prior during this run)."""
    with db.session(write=False) as session:
        rows = {j.source_path: j for j in session.scalars(select(EnhanceJob).where(EnhanceJob.batch_key == plan.key))}
    summary = AllPriorsSummary(plan.key, unnamed=plan.unnamed, estimate_s=round(plan.estimate_s, 1))
    for person in plan.people:
        who = {"person_id": person.person_id, "name": person.name}
        job = rows.get(SUBJECT.format(person.person_id))
        if person.has_prior:
            summary.already_built.append(who)
        elif job is not None and job.status == JobStatus.DONE:
            summary.built.append({**who, "folder": job.output_path, **(job.report or {})})
        elif person.skipped is not None:
            summary.skipped.append({**who, "reason": person.skipped})
        else:
            summary.failed.append({**who, "error": (job.error if job is not None else None) or "not built"})
    return summary
