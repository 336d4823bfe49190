"""`photokit serve` end to end: prints a tokenised loopback URL, serves it, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT

pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install 'photokit[web]')")


def test_serve_prints_a_token_url_on_loopback_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PHOTOKIT_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "photokit", "serve", "--port", "0", "--no-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/people\?token=([\w-]{40,})", line)
        assert match, line
        base, token = match.groups()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/people", timeout=30)
        assert refused.value.code == 401
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # keeps the cookie
        with browser.open(f"{base}/people?token={token}", timeout=30) as page:  # follows the 303
            assert page.status == 200 and b"People" in page.read()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0
    assert "Traceback" not in err and "gallery stopped" in err


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
