"""`photokit prior build --all`: every named person with enough faces, each build a job row of one batch;
who is skipped is said with the reason, the cost up front; an interrupted batch resumes without redoing
a finished build (a tiny random-weight generator and a short schedule)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.db.models import EnhanceJob, Face, Person, PhotoLocation
from tests.conftest import scan_faces_library, shared_path
from tests.web_support import copy_library

runner = CliRunner()
NAMES = {"person00": "Ann", "person01": "Bob", "person09": "Cy"}  # 9, 8 and 3 photos: Cy has too few


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    from photokit.stylegan2 import save_generator
    from photokit.stylegan2.network import build_tiny_generator

    return save_generator(build_tiny_generator(), tmp_path_factory.mktemp("gen") / "tiny.safetensors")


def name_people(library) -> None:
    """Name the library person holding most faces of each labelled identity of ``NAMES``."""
    with open(shared_path("data", "faces", "deepface", "labels.csv"), newline="") as fh:
        labels = {r["file"]: r["identity"] for r in csv.DictReader(fh)}
    votes: dict[str, dict[int, int]] = {}
    with library.db.session() as session:
        rows = session.execute(
            select(Face.person_id, PhotoLocation.path).join(Face, Face.photo_id == PhotoLocation.photo_id)
        )
        for person_id, path in rows:
            identity = labels.get(Path(path).name)
            if person_id is not None and identity in NAMES:
                votes.setdefault(identity, {}).setdefault(person_id, 0)
                votes[identity][person_id] += 1
        for identity, counts in votes.items():
            session.get(Person, max(counts, key=counts.get)).name = NAMES[identity]


@pytest.fixture(scope="module")
def named_library(tmp_path_factory):
    """Three labelled identities of ../shared/data/faces/deepface scanned with faces, named Ann, Bob, Cy."""
    with open(shared_path("data", "faces", "deepface", "labels.csv"), newline="") as fh:
        files = [r["file"] for r in csv.DictReader(fh) if r["identity"] in NAMES]
    root = tmp_path_factory.mktemp("named") / "photos"
    root.mkdir()
    for name in files:
        shutil.copy(shared_path("data", "faces", "deepface", name), root / name)
    library = scan_faces_library(tmp_path_factory.mktemp("named_home"), [root])
    name_people(library)
    yield library
    library.db.dispose()


def build_args(settings, tiny_file: Path, *extra: str) -> list[str]:
    return [
        "--db-url", settings.db_url, "prior", "build", "--all", "--generator", str(tiny_file), "--device", "cpu",
        "--loss", "mse", "--invert-steps", "8", "--steps", "12", "--max", "5", "--json", *extra,
    ]  # fmt: skip


def prior_jobs(settings) -> dict[str, EnhanceJob]:
    from photokit.db import open_database

    db = open_database(settings)
    with db.session() as session:
        rows = {r.source_path: r for r in session.scalars(select(EnhanceJob).where(EnhanceJob.kind == "prior_build"))}
    db.dispose()
    return rows


def test_all_builds_every_named_person_with_enough_faces_and_says_who_is_skipped(named_library, tiny_file, tmp_path):
    from photokit.prior.meta import has_prior

    settings = copy_library(named_library, tmp_path / "home")
    result = runner.invoke(app, build_args(settings, tiny_file), env={"PHOTOKIT_HOME": str(settings.home)})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert sorted(item["name"] for item in summary["built"]) == ["Ann", "Bob"]
    [skipped] = summary["skipped"]
    assert skipped["name"] == "Cy" and "at least 5" in skipped["reason"]
    assert summary["estimate_s"] > 0 and not summary["failed"]
    # The plan and its cost come first, then the builds.
    plan_line = result.stderr.index("2 priors to build, about")
    assert plan_line < result.stderr.index("building the prior of") and "skipped Cy:" in result.stderr
    for item in summary["built"]:
        assert has_prior(settings, item["person_id"]) and item["anchors"] == 5
    jobs = prior_jobs(settings)
    assert sorted(jobs) == sorted(f"person:{item['person_id']}" for item in summary["built"])
    assert {job.status for job in jobs.values()} == {"done"} and {job.attempts for job in jobs.values()} == {1}

    again = runner.invoke(app, build_args(settings, tiny_file), env={"PHOTOKIT_HOME": str(settings.home)})
    assert again.exit_code == 0 and "0 priors to build" in again.stderr  # nothing done twice
    repeat = json.loads(again.stdout)
    assert repeat["built"] == [] and sorted(item["name"] for item in repeat["already_built"]) == ["Ann", "Bob"]
    assert {job.attempts for job in prior_jobs(settings).values()} == {1}


def test_an_interrupted_batch_resumes_without_redoing_a_finished_build(named_library, tiny_file, tmp_path, monkeypatch):
    import photokit.prior.anchors as anchors_module
    import photokit.prior.personal as personal

    settings = copy_library(named_library, tmp_path / "home")
    env = {"PHOTOKIT_HOME": str(settings.home)}
    real_tune, tunings = personal.tune, []

    def interrupt_the_second_build(*a, **kw):
        tunings.append(1)

        def on_step(step, total, loss):
            if len(tunings) == 2 and step == 5:
                raise KeyboardInterrupt

        return real_tune(*a, **{**kw, "on_step": on_step})

    monkeypatch.setattr(personal, "tune", interrupt_the_second_build)
    result = runner.invoke(app, build_args(settings, tiny_file), env=env)
    assert result.exit_code == 130 and "interrupted" in result.stderr
    jobs = prior_jobs(settings)
    assert sorted(job.status for job in jobs.values()) == ["done", "queued"]  # the second one back in the queue
    [first] = [job for job in jobs.values() if job.status == "done"]
    first_meta = Path(first.output_path) / "prior.json"
    stamp = first_meta.stat().st_mtime_ns

    monkeypatch.setattr(personal, "tune", real_tune)
    inversions: list[int] = []
    monkeypatch.setattr(anchors_module, "invert_w", lambda *a, **kw: inversions.append(1))  # anchors are reused
    summary = json.loads(runner.invoke(app, build_args(settings, tiny_file), env=env).stdout)
    [before] = summary["already_built"]
    assert [item["name"] for item in summary["built"]] == ["Bob" if before["name"] == "Ann" else "Ann"]
    assert f"person:{before['person_id']}" == first.source_path and not summary["failed"]
    assert inversions == [] and first_meta.stat().st_mtime_ns == stamp  # the finished build was not redone
    [second] = [job for job in prior_jobs(settings).values() if job.source_path != first.source_path]
    assert second.status == "done" and second.attempts == 2
    meta = json.loads((Path(second.output_path) / "prior.json").read_text())
    assert meta["tuning"]["resumed_from"] == 5 and meta["tuning"]["steps_done"] == 12


def test_all_and_a_person_are_exclusive_and_ray_needs_all(named_library, tiny_file, tmp_path):
    settings = copy_library(named_library, tmp_path / "home")
    for args in (["prior", "build"], ["prior", "build", "Ann", "--all"], ["prior", "build", "Ann", "--ray"]):
        result = runner.invoke(app, ["--db-url", settings.db_url, *args])
        assert result.exit_code == 2 and result.stderr.startswith("error:"), result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert not prior_jobs(settings)
