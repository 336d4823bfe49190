"""Prior builds from the gallery: the cost estimate first, a job only once confirmed, and a Cancel that stops
a running build within a progress step, keeping its checkpoints."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests.test_enhance_cli import install_random_generator
from tests.test_prior_tuning import largest_identity_person
from tests.web_support import copy_library, csrf, make_client, serving, wait_for_job, wait_until

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'photokit[web]')")


@pytest.fixture
def prior_library(deepface_library, tmp_path):
    """(settings, person id): a copy of the deepface library with a random-weight generator installed, and
    the person with the most faces."""
    settings = copy_library(deepface_library, tmp_path / "home")
    install_random_generator(settings)
    return settings, largest_identity_person(deepface_library)


def _job_rows(settings) -> list:
    from photokit.db import open_database
    from photokit.db.models import BackgroundJob

    db = open_database(settings)
    try:
        with db.session() as session:
            return [(j.kind, j.status, dict(j.params)) for j in session.scalars(select(BackgroundJob))]
    finally:
        db.dispose()


def test_build_shows_the_libraries_estimate_first_and_starts_only_when_confirmed(prior_library):
    from photokit.db import open_database
    from photokit.prior.estimate import estimate_build
    from photokit.prior.meta import prior_dir
    from photokit.prior.schedule import BuildOptions

    settings, person = prior_library
    with make_client(settings, run_jobs=False) as client:
        priors = client.get("/priors")
        assert 'action="/priors/build"' in priors.text and 'method="get"' in priors.text
        page = client.get("/priors/build", params={"person": person, "preset": "fast", "loss": "mse", "budget": 10})
        assert page.status_code == 200, page.text[:500]
        db = open_database(settings)
        expected = estimate_build(db, settings, str(person), BuildOptions(preset="fast", loss="mse", budget_s=600))
        db.dispose()
        plan = expected.plan
        assert f"{plan.refs} of {expected.usable_faces} usable faces" in page.text
        assert f"{plan.invert_batches} batch(es) × {plan.invert_steps} steps" in page.text
        assert f"{plan.tuning_steps} steps at" in page.text
        assert "NOT a real face prior" in page.text  # the random generator is named as such before any work
        assert 'id="start-build"' in page.text and 'name="csrf"' in page.text
        # the estimate wrote nothing and started nothing
        assert _job_rows(settings) == []
        assert not prior_dir(settings, person).exists()

        confirmed = client.post(
            "/priors/build",
            data={"person": str(person), "preset": "fast", "loss": "mse", "budget": "10", "csrf": csrf(client)},
        )
        assert confirmed.status_code == 303 and confirmed.headers["location"].startswith("/jobs")
        rows = _job_rows(settings)
        assert [(kind, status) for kind, status, _ in rows] == [("prior_build", "queued")]
        assert rows[0][2] == {"person_id": person, "preset": "fast", "loss": "mse", "budget_min": 10.0}


def test_bad_people_and_options_on_the_confirm_step_are_4xx_and_start_nothing(prior_library, tmp_path):
    settings, person = prior_library
    with make_client(settings, run_jobs=False) as client:
        cases = [
            ({"person": "987654"}, 404, "unknown person"),
            ({"person": "Nobody Known"}, 404, "unknown person"),
            ({}, 400, "bad input"),
            ({"person": ""}, 400, "bad input"),
            ({"person": person, "preset": "huge"}, 400, "bad input"),
            ({"person": person, "loss": "l1"}, 400, "bad input"),
            ({"person": person, "budget": "0"}, 400, "bad input"),
            ({"person": person, "budget": "soon"}, 400, "bad input"),
            ({"person": person, "steps": "-3"}, 400, "bad input"),
            ({"person": person, "invert_steps": "many"}, 400, "bad input"),
            ({"person": person, "loss": "mse", "steps": "0"}, 400, "between 1 and"),
            ({"person": person, "loss": "lpips"}, 400, "lpips"),  # its weights are not installed here
        ]
        for params, status, words in cases:
            response = client.get("/priors/build", params=params)
            assert response.status_code == status, (params, response.text[:300])
            assert words in response.text.lower() and "Traceback" not in response.text
        refused = client.post("/priors/build", data={"person": "987654", "loss": "mse", "csrf": csrf(client)})
        assert refused.status_code == 404
        assert client.post("/priors/build", data={"person": str(person), "loss": "mse"}).status_code == 403
    assert _job_rows(settings) == []


def test_the_estimate_without_a_generator_says_what_to_install(library):
    with make_client(library, run_jobs=False) as client:
        response = client.get("/priors/build", params={"person": 1, "loss": "mse"})
    assert response.status_code == 400
    assert "photokit models install" in response.text and "Traceback" not in response.text


def _checkpoint_step(settings, person: int) -> int:
    import torch

    from photokit.prior.meta import TUNING_CHECKPOINT, WORK_DIR, prior_dir

    path = prior_dir(settings, person) / WORK_DIR / TUNING_CHECKPOINT
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


@pytest.mark.slow
def test_cancel_stops_a_running_build_within_a_step_and_keeps_its_checkpoints(prior_library):
    """A build asked for 20,000 tuning steps (ticks, the gallery's advanced field); Cancel stops it a few
    ticks after it is pressed."""
    from photokit.prior.meta import ANCHORS_PARTIAL, WORK_DIR, prior_dir

    settings, person = prior_library
    with make_client(settings) as client:
        token = csrf(client)
        data = {"person": str(person), "loss": "mse", "invert_steps": "3", "steps": "20000", "csrf": token}
        assert client.post("/priors/build", data=data).status_code == 303
        job_id = client.get("/api/jobs").json()["jobs"][0]["id"]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:  # wait until tuning has made some progress
            job = wait_for_job(client, job_id, {"running", "done", "failed", "cancelled"})
            if job["status"] != "running" or ((job["stage"] or "").startswith("tuning") and job["done"] >= 5):
                break
            time.sleep(0.1)
        assert job["status"] == "running" and job["stage"].startswith("tuning"), job
        total = job["total"]
        assert total == 20000  # many ticks in this one stage
        assert any("references at" in text for _, text in job["notes"])  # the estimate came first
        assert client.post(f"/jobs/{job_id}/cancel", data={"csrf": token}).status_code == 303
        stopped = wait_for_job(client, job_id, {"cancelled", "done", "failed"}, timeout=60)
    assert stopped["status"] == "cancelled", stopped
    assert stopped["done"] - job["done"] < total / 20  # it stopped a few steps after Cancel, not at the stage's end
    work = prior_dir(settings, person) / WORK_DIR
    assert (work / ANCHORS_PARTIAL).is_file() and (work / "state.json").is_file()  # what a resume continues from
    assert _checkpoint_step(settings, person) >= job["done"] - 1  # written on the way out
    assert not (prior_dir(settings, person) / "prior.json").exists()  # nothing half-written


@pytest.mark.slow
def test_in_a_real_browser_the_estimate_comes_first_then_live_progress_and_cancel(prior_library):
    """Priors -> estimate -> Start build -> the Jobs row moves on its own (no reload) -> Cancel."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from photokit.db import open_database
    from photokit.db.models import BackgroundJob, Person
    from photokit.web.app import create_app
    from tests.web_support import TOKEN, LiveServer, chromium_driver

    settings, person = prior_library
    db = open_database(settings)
    with db.session() as session:
        session.get(Person, person).name = "Ada"  # the Priors page offers named people
    browser = chromium_driver()
    try:
        with LiveServer(create_app(settings, token=TOKEN)) as server:
            browser.get(f"{server.url}/priors?token={TOKEN}")
            Select(browser.find_element(By.NAME, "person")).select_by_value(str(person))
            Select(browser.find_element(By.NAME, "preset")).select_by_visible_text("paper")
            Select(browser.find_element(By.NAME, "loss")).select_by_value("mse")
            browser.find_element(By.CSS_SELECTOR, "#estimate-form button").click()
            table = wait_until(lambda: browser.find_elements(By.ID, "estimate"), timeout=120)[0]
            assert "usable faces" in table.text and "about" in table.text
            with db.session() as session:
                assert session.query(BackgroundJob).count() == 0  # shown, not started
            browser.find_element(By.ID, "start-build-button").click()
            wait_until(lambda: browser.current_url.split("?")[0].endswith("/jobs"), timeout=30)
            browser.execute_script("window.stayedOnPage = true")
            progress = "return document.querySelector('tr[data-job] progress').value"
            wait_until(lambda: browser.execute_script(progress) > 0, timeout=300)  # polled, not reloaded
            assert browser.execute_script("return window.stayedOnPage === true")
            browser.find_element(By.CSS_SELECTOR, "tr[data-job] form button").click()
            status = lambda: browser.find_element(By.CSS_SELECTOR, "tr[data-job] .status").text  # noqa: E731
            wait_until(lambda: status() == "cancelled", timeout=60)
        with db.session() as session:
            job = session.query(BackgroundJob).one()
            assert job.status == "cancelled" and job.progress_done < job.progress_total
    finally:
        browser.quit()
        db.dispose()


def _open_gallery(served):
    """A cookie-keeping HTTP client logged in to a served gallery."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    opener.open(f"{served.base}/people?token={served.token}", timeout=60).read()
    return opener


def _jobs(opener, served) -> list[dict]:
    import json

    with opener.open(f"{served.base}/api/jobs", timeout=60) as response:
        return json.loads(response.read())["jobs"]


@pytest.mark.slow
def test_ctrl_c_during_a_build_stops_the_server_and_the_next_serve_resumes_the_job(prior_library):
    """The server stops within a step of its running build (the job stays queued, its checkpoint kept);
    the next `photokit serve` runs the same job row on from that checkpoint."""
    import urllib.parse

    from photokit.web.security import csrf_token

    settings, person = prior_library
    env = {"PHOTOKIT_HOME": str(settings.home), "PHOTOKIT_MODELS": str(settings.models_dir)}
    env["PHOTOKIT_DB_URL"] = settings.db_url
    form = {"person": person, "loss": "mse", "invert_steps": 3, "steps": 20000}
    with serving(env) as served:
        opener = _open_gallery(served)
        data = urllib.parse.urlencode({**form, "csrf": csrf_token(served.token)}).encode()
        opener.open(f"{served.base}/priors/build", data=data, timeout=60).read()
        tuning = lambda: next(  # noqa: E731
            (j for j in _jobs(opener, served) if (j["stage"] or "").startswith("tuning") and j["done"] >= 200), None
        )
        first = wait_until(tuning, timeout=600)
    with make_client(settings, run_jobs=False) as client:
        stopped = wait_for_job(client, first["id"], {"queued"}, timeout=5)
    assert stopped["done"] < stopped["total"] == 20000 and not stopped["finished"]
    checkpoint = _checkpoint_step(settings, person)
    assert checkpoint >= first["done"]

    with serving(env) as served:  # the same row runs again, from the checkpoint
        opener = _open_gallery(served)
        again = wait_until(
            lambda: next(
                (j for j in _jobs(opener, served) if (j["stage"] or "").startswith("tuning") and j["done"]), None
            ),
            300,
        )
    assert again["id"] == first["id"] and again["status"] == "running"
    assert again["done"] >= checkpoint  # this run's first tuning step continued from the checkpoint
    notes = [text for _, text in again["notes"]]
    assert "started again after the server stopped" in " ".join(notes)
    assert any("resuming an unfinished build" in text for text in notes), notes  # the recorded schedule
