"""The gallery's pages (GET): People, Person, Photo, Priors, Restorations, Jobs. Reading only."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import func, select

from photokit.db.models import BackgroundJob, EnhanceJob, Person
from photokit.faces import browse
from photokit.faces.listing import SMALL_GROUP
from photokit.faces.people import list_people, resolve_person
from photokit.prior.vocab import Preset
from photokit.stylegan2.vocab import LossKind
from photokit.web import tasks
from photokit.web.app import gallery

router = APIRouter()
FACES_PER_PAGE = 200
PEOPLE_PER_PAGE = 300
ROWS_PER_PAGE = 50


class PeopleFilter(StrEnum):
    NAMED = "named"
    UNNAMED = "unnamed"
    SMALL = "small"
    IGNORED = "ignored"
    DEFAULT = "default"  # what `people list` shows
    ALL = "all"


def _filtered(rows: list[dict], which: PeopleFilter) -> list[dict]:
    keep = {
        PeopleFilter.NAMED: lambda r: r["name"] is not None and not r["ignored"],
        PeopleFilter.UNNAMED: lambda r: r["name"] is None and not r["ignored"],
        PeopleFilter.SMALL: lambda r: r["name"] is None and not r["ignored"] and r["faces"] < SMALL_GROUP,
        PeopleFilter.IGNORED: lambda r: r["ignored"],
        PeopleFilter.DEFAULT: lambda r: not r["ignored"] and (r["name"] is not None or r["faces"] >= SMALL_GROUP),
        PeopleFilter.ALL: lambda r: True,
    }[which]
    return [r for r in rows if keep(r)]


def merge_suggestions(session, cache_file: Path | None = None, limit: int = 20) -> list[dict]:
    """Pending merge suggestions (the ones `photokit people suggest` lists, from the same cache), surest first."""
    from photokit.faces import suggest

    return [
        {
            "id": suggest.merge_id(m.keep, m.other),
            "merge": m.other,
            "into": m.keep,
            "score": round(m.score, 2),
            "distance": round(m.distance, 2),
            "command": f"photokit people merge {m.keep} {m.other}",
        }
        for m in suggest.cached_suggestions(session, cache_file, limit=limit).merges
    ]


@router.get("/")
def home() -> Response:
    return RedirectResponse("/people", status_code=303)


@router.get("/people")
def people_page(
    request: Request, show: PeopleFilter = PeopleFilter.DEFAULT, page: int = Query(1, ge=1, le=1_000_000)
) -> Response:
    g = gallery(request)
    with g.db.session(write=False) as session:
        everyone = list_people(session, include_all=True)
        suggestions = merge_suggestions(session, g.media.folder / "suggestions.json")
    rows = _filtered(everyone, show)
    pages = max(1, -(-len(rows) // PEOPLE_PER_PAGE))
    if page > pages:
        raise HTTPException(404, f"there are {pages} page(s) of people")
    counts = {f.value: len(_filtered(everyone, f)) for f in PeopleFilter}
    return g.render(
        request,
        "people.html",
        people=rows[(page - 1) * PEOPLE_PER_PAGE : page * PEOPLE_PER_PAGE],
        show=show.value,
        counts=counts,
        suggestions=suggestions,
        filters=PeopleFilter,
        page=page,
        pages=pages,
    )


def _person_or_404(session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise HTTPException(404, f"there is no person {person_id} in this library")
    return person


def _people_choices(session) -> list[dict]:
    """Named people (and ids) for the move/merge pickers."""
    rows = session.execute(select(Person.id, Person.name).order_by(Person.name.is_(None), Person.name, Person.id))
    return [{"id": pid, "name": name} for pid, name in rows.all()[:5000]]


@router.get("/people/{person_id}")
def person_page(request: Request, person_id: int, page: int = Query(1, ge=1, le=1_000_000)) -> Response:
    from photokit.prior.meta import has_prior

    g = gallery(request)
    with g.db.session(write=False) as session:
        person = _person_or_404(session, person_id)
        faces = browse.person_face_page(session, person_id, (page - 1) * FACES_PER_PAGE, FACES_PER_PAGE)
        choices = _people_choices(session)
        info = {"id": person.id, "name": person.name, "ignored": person.ignored, "cover": person.cover_face_id}
    pages = max(1, -(-faces.total // FACES_PER_PAGE))
    if page > pages:
        raise HTTPException(404, f"person {person_id} has {pages} page(s) of faces")
    return g.render(
        request,
        "person.html",
        person=info,
        faces=faces,
        page=page,
        pages=pages,
        choices=choices,
        has_prior=has_prior(g.settings, person_id),
    )


@router.get("/photos/{photo_id}")
def photo_page(request: Request, photo_id: int) -> Response:
    g = gallery(request)
    with g.db.session(write=False) as session:
        photo = browse.get_photo(session, photo_id)
        if photo is None:
            raise HTTPException(404, f"there is no photo {photo_id} in this library")
        info = {"id": photo.id, "width": photo.width, "height": photo.height, "taken_at": photo.taken_at}
        faces = browse.photo_faces(session, photo_id)
        locations = [(loc.path, loc.status) for loc in browse.photo_locations(session, photo_id)]
        choices = _people_choices(session)
    return g.render(request, "photo.html", photo=info, faces=faces, locations=locations, choices=choices)


@router.get("/priors")
def priors_page(request: Request) -> Response:
    from photokit.prior.meta import list_priors

    g = gallery(request)
    priors = list_priors(g.settings)
    with g.db.session(write=False) as session:
        named = [p for p in list_people(session) if p["name"]]
    with_prior = {p["person_id"] for p in priors}
    return g.render(request, "priors.html", priors=priors, candidates=[p for p in named if p["id"] not in with_prior])


@router.get("/priors/build")
def prior_build_page(
    request: Request,
    person: str = Query(min_length=1, max_length=200),
    preset: Preset = Preset.AUTO,
    loss: LossKind = LossKind.LPIPS,
    budget: float = Query(10.0, ge=0.5, le=1440),
    steps: str = Query("", pattern=r"^\s*\d{0,7}\s*$"),
    invert_steps: str = Query("", pattern=r"^\s*\d{0,7}\s*$"),
) -> Response:
    """The confirm step of a prior build: its plan and cost, measured now on this machine by the same
    function `photokit prior build` announces; the job starts only from this page's POST."""
    from photokit.prior.estimate import estimate_build
    from photokit.reporting import format_duration

    g = gallery(request)
    with g.db.session(write=False) as session:
        person_id = resolve_person(session, person).id
        busy = session.scalar(select(func.count()).where(BackgroundJob.status == "running"))
    params = tasks.prior_build_params(
        person_id, preset, loss, budget, tasks.optional_steps(invert_steps), tasks.optional_steps(steps)
    )
    estimate = estimate_build(g.db, g.settings, str(person_id), tasks.build_options(params), device="auto")
    durations = {
        "anchors": format_duration(estimate.plan.invert_s),
        "tuning": format_duration(estimate.plan.tuning_s),
        "total": format_duration(estimate.total_s),
    }
    return g.render(
        request, "prior_build.html", e=estimate, plan=estimate.plan, durations=durations, params=params, busy=busy
    )


@router.get("/restorations")
def restorations_page(request: Request, page: int = Query(1, ge=1, le=1_000_000)) -> Response:
    g = gallery(request)
    with g.db.session(write=False) as session:
        done = select(EnhanceJob).where(EnhanceJob.status == "done").order_by(EnhanceJob.finished_at.desc())
        total = session.scalar(select(func.count()).select_from(done.subquery()))
        rows = session.scalars(done.offset((page - 1) * ROWS_PER_PAGE).limit(ROWS_PER_PAGE)).all()
        items = [
            {"id": r.id, "source": Path(r.source_path).name, "output": r.output_path, "finished": r.finished_at}
            for r in rows
        ]
    return g.render(request, "restorations.html", items=items, page=page, total=total, per_page=ROWS_PER_PAGE)


@router.get("/restorations/{job_id}")
def restoration_page(request: Request, job_id: int) -> Response:
    g = gallery(request)
    with g.db.session(write=False) as session:
        job = session.get(EnhanceJob, job_id)
        if job is None or job.status != "done":
            raise HTTPException(404, f"there is no finished restoration {job_id} in this library")
        item = {"id": job.id, "source": job.source_path, "output": job.output_path, "report": job.report or {}}
    return g.render(request, "restoration.html", item=item)


def job_json(job: BackgroundJob) -> dict:
    total = job.progress_total
    return {
        "id": job.id,
        "kind": job.kind,
        "title": job.title,
        "status": job.status,
        "cancel_requested": job.cancel_requested,
        "done": job.progress_done,
        "total": total,
        "percent": round(100 * job.progress_done / total, 1) if total else None,
        "stage": job.stage,
        "notes": job.notes or [],
        "error": job.error,
        "result": job.result,
        "created": job.created_at.isoformat(timespec="seconds") if job.created_at else None,
        "started": job.started_at.isoformat(timespec="seconds") if job.started_at else None,
        "finished": job.finished_at.isoformat(timespec="seconds") if job.finished_at else None,
    }


def _recent_jobs(session, limit: int = 100) -> list[dict]:
    rows = session.scalars(select(BackgroundJob).order_by(BackgroundJob.id.desc()).limit(limit)).all()
    return [job_json(j) for j in rows]


def _restore_batches(session, limit: int = 20) -> list[dict]:
    """Album restorations however they were started (`photokit enhance` too): photos per status, last errors."""
    rows = session.execute(
        select(EnhanceJob.batch_key, EnhanceJob.status, func.count(), func.max(EnhanceJob.created_at)).group_by(
            EnhanceJob.batch_key, EnhanceJob.status
        )
    ).all()
    batches: dict[str, dict] = {}
    for key, status, count, created in rows:
        batch = batches.setdefault(key, {"key": key, "counts": {}, "created": created})
        batch["counts"][status] = count
        batch["created"] = max(batch["created"], created)
    recent = sorted(batches.values(), key=lambda b: b["created"], reverse=True)[:limit]
    for batch in recent:
        batch["total"] = sum(batch["counts"].values())
        batch["errors"] = session.scalars(
            select(EnhanceJob.error)
            .where(EnhanceJob.batch_key == batch["key"], EnhanceJob.status == "failed")
            .order_by(EnhanceJob.id.desc())
            .limit(3)
        ).all()
    return recent


@router.get("/jobs")
def jobs_page(request: Request) -> Response:
    g = gallery(request)
    with g.db.session(write=False) as session:
        jobs = _recent_jobs(session)
        batches = _restore_batches(session)
    return g.render(request, "jobs.html", jobs=jobs, batches=batches)


@router.get("/api/jobs")
def jobs_api(request: Request) -> Response:
    g = gallery(request)
    with g.db.session(write=False) as session:
        return JSONResponse({"jobs": _recent_jobs(session)}, headers={"Cache-Control": "no-store"})


@router.get("/favicon.ico")
def favicon() -> Response:
    return RedirectResponse("/static/icon.svg", status_code=301)
