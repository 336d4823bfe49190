"""`photokit serve` end to end: prints a tokenised loopback URL, serves it, stops cleanly on Ctrl-C."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from tests.web_support import serving

pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install 'photokit[web]')")


def test_serve_prints_a_token_url_on_loopback_and_stops_cleanly_on_ctrl_c(tmp_path):
    with serving({"PHOTOKIT_HOME": str(tmp_path / "home")}) as served:
        base, token = served.base, served.token
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/people", timeout=30)
        assert refused.value.code == 401
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # keeps the cookie
        with browser.open(f"{base}/people?token={token}", timeout=30) as page:  # follows the 303
            assert page.status == 200 and b"People" in page.read()
    assert "warning" not in served.stderr


def test_a_remote_host_with_the_explicit_flag_is_served_with_a_warning(tmp_path):
    with serving({"PHOTOKIT_HOME": str(tmp_path / "home")}, "--host", "0.0.0.0", "--allow-remote") as served:
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(f"{served.base}/people?token={served.token}", timeout=30) as page:
            assert page.status == 200
    assert "warning: serving on 0.0.0.0" in served.stderr


def test_a_prior_build_job_without_a_generator_fails_with_the_install_hint(settings):
    from photokit.db import open_database
    from photokit.db.models import Person
    from tests.web_support import csrf, make_client

    db = open_database(settings)
    with db.session() as session:
        session.add(Person(name="Rose"))
    with make_client(settings) as client:
        response = client.post("/priors/build", data={"person": "Rose", "loss": "mse", "csrf": csrf(client)})
        assert response.status_code == 303
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = client.get("/api/jobs").json()["jobs"][0]
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        assert job["status"] == "failed" and job["title"] == "prior build: Rose"
        assert "photokit models install" in job["error"]
        assert "\n" not in job["error"]
    db.dispose()
