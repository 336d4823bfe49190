"""State-changing requests (POST + CSRF token). Each one calls the library function its CLI command calls
(``photokit.faces.people``, the job runner for prior builds and album restorations) and redirects back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import Response

from photokit.db.models import Face, Person
from photokit.faces import people
from photokit.web import security, tasks
from photokit.web.app import back_to, gallery


async def require_csrf(request: Request) -> None:
    given = request.headers.get(security.CSRF_HEADER)
    if given is None:
        form = await request.form()
        given = form.get(security.CSRF_FIELD)
    if not security.same_secret(str(given) if given is not None else None, gallery(request).csrf):
        raise HTTPException(403, "missing or wrong form token (reload the page and try again)")


router = APIRouter(dependencies=[Depends(require_csrf)])
FaceIds = Annotated[list[int], Form(alias="face", min_length=1, max_length=10_000)]
Text = Annotated[str, Form(max_length=200)]
StepsText = Annotated[str, Form(pattern=r"^\s*\d{0,7}\s*$")]  # blank: the preset's


def _person(session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise HTTPException(404, f"there is no person {person_id} in this library")
    return person


def _faces_exist(session, face_ids: list[int]) -> list[str]:
    missing = [f for f in face_ids if session.get(Face, f) is None]
    if missing:
        raise HTTPException(404, f"there is no face {missing[0]} in this library")
    return [str(f) for f in face_ids]


@router.post("/people/{person_id}/name")
def name_person(request: Request, person_id: int, name: Text) -> Response:
    with gallery(request).db.session() as session:
        person = people.name_person(session, _person(session, person_id), name)
        return back_to(f"/people/{person_id}", msg=f"named '{person.name}'")


@router.post("/people/{person_id}/merge")
def merge_into(request: Request, person_id: int, into: Text) -> Response:
    """This person's faces join ``into`` (an id or a name) and this person is removed."""
    with gallery(request).db.session() as session:
        source = _person(session, person_id)
        target = people.resolve_person(session, into)
        merged = people.merge_people(session, target, source)
        return back_to(f"/people/{merged.id}", msg=f"merged person {person_id} into this person")


@router.post("/people/{person_id}/ignore")
def ignore(request: Request, person_id: int) -> Response:
    with gallery(request).db.session() as session:
        people.ignore_person(session, _person(session, person_id))
    return back_to(f"/people/{person_id}", msg="ignored: hidden from the list and never used for restoration")


@router.post("/people/{person_id}/unignore")
def unignore(request: Request, person_id: int) -> Response:
    with gallery(request).db.session() as session:
        people.ignore_person(session, _person(session, person_id), ignored=False)
    return back_to(f"/people/{person_id}", msg="no longer ignored")


@router.post("/faces/move")
def move_faces(request: Request, face: FaceIds, to: Text, back: Text = "/people") -> Response:
    with gallery(request).db.session() as session:
        refs = _faces_exist(session, face)
        target = people.resolve_person(session, to)
        people.move_faces(session, refs, target)
        target_id = target.id
    return back_to(back, msg=f"moved {len(face)} face(s) to person {target_id}")


@router.post("/faces/split")
def split_faces(request: Request, face: FaceIds, name: Annotated[str, Form(max_length=200)] = "") -> Response:
    with gallery(request).db.session() as session:
        refs = _faces_exist(session, face)
        person = people.split_faces(session, refs, name.strip() or None)
        person_id = person.id
    return back_to(f"/people/{person_id}", msg=f"split {len(face)} face(s) off into this new person")


@router.post("/faces/{face_id}/remove")
def remove_face(request: Request, face_id: int, back: Text = "/people") -> Response:
    with gallery(request).db.session() as session:
        _faces_exist(session, [face_id])
        people.remove_face(session, str(face_id))
    return back_to(back, msg=f"face {face_id} is no longer assigned to anyone")


@router.post("/suggestions/dismiss")
def dismiss_suggestion(request: Request, suggestion: Text) -> Response:
    """'Not one person': the merge suggestion is not made again (``people suggest --dismiss``)."""
    from photokit.faces import dismissals

    with gallery(request).db.session() as session:
        ref = dismissals.dismiss(session, suggestion)
    return back_to("/people", msg=f"{ref.describe()} will not be suggested again")


@router.post("/priors/build")
def start_prior_build(
    request: Request,
    person: Text,
    preset: Annotated[str, Form(pattern="^(auto|paper|fast)$")] = "auto",
    loss: Annotated[str, Form(pattern="^(lpips|mse)$")] = "lpips",
    budget: Annotated[float, Form(ge=0.5, le=1440)] = 10.0,
    steps: StepsText = "",
    invert_steps: StepsText = "",
) -> Response:
    """Starts the build the confirm page (``GET /priors/build``) showed the estimate of."""
    g = gallery(request)
    with g.db.session() as session:
        target = people.resolve_person(session, person)
        person_id, label = target.id, target.name or f"person {target.id}"
    params = tasks.prior_build_params(
        person_id, preset, loss, budget, tasks.optional_steps(invert_steps), tasks.optional_steps(steps)
    )
    job_id = g.runner.submit(tasks.PRIOR_BUILD, f"prior build: {label}", params)
    return back_to("/jobs", msg=f"job {job_id} queued: prior build for {label}")


@router.post("/jobs/restore")
def start_album_restore(
    request: Request,
    path: Annotated[str, Form(max_length=4096)],
    out: Annotated[str, Form(max_length=4096)] = "",
    loss: Annotated[str, Form(pattern="^(lpips|mse)$")] = "lpips",
) -> Response:
    """Album restorations from the gallery are limited to the library's folders (the CLI takes any path)."""
    g = gallery(request)
    params = tasks.restore_album_params(path, out.strip() or None, loss, None)
    with g.db.session() as session:
        if not security.in_library(session, Path(params["paths"][0])):
            raise HTTPException(400, f"{path} is not inside a folder of your library (scan it first)")
    job_id = g.runner.submit(tasks.RESTORE_ALBUM, f"restore album: {params['paths'][0]}", params)
    return back_to("/jobs", msg=f"job {job_id} queued")


@router.post("/jobs/{job_id}/cancel")
def cancel_job(request: Request, job_id: int) -> Response:
    try:
        job = gallery(request).runner.cancel(job_id)
    except LookupError:
        raise HTTPException(404, f"there is no job {job_id}") from None
    return back_to("/jobs", msg=f"job {job_id}: " + ("cancelled" if job.status == "cancelled" else "stopping"))
