"""`make demo` is the README's first command: it must run end to end on a fresh machine."""

from __future__ import annotations

import os
import subprocess
import sys

from PIL import Image

from tests.conftest import ROOT


def test_demo_runs_the_main_job_and_says_where_results_are(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, PHOTOKIT_DEMO_DIR=str(out), PHOTOKIT_DB_URL="sqlite:////nonexistent/never-used.db")
    run = subprocess.run(
        [sys.executable, "-m", "photokit.demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"restored:    {out / 'restored'}" in run.stdout
    assert (out / "home" / "library.db").is_file()  # its own library, whatever PHOTOKIT_DB_URL says
    restored = out / "restored" / "astronaut_small_old_restored.jpg"
    with Image.open(restored) as image, Image.open(out / "album" / "astronaut_small_old.jpg") as original:
        assert image.size == (4 * original.width, 4 * original.height)
    assert "1 truncated" in run.stdout  # the broken file was skipped, not fatal
    # A second run replaces its own output folder but refuses a folder it did not make.
    assert (
        subprocess.run([sys.executable, "-m", "photokit.demo"], cwd=ROOT, env=env, capture_output=True).returncode == 0
    )
    foreign = tmp_path / "not-the-demo"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    refused = subprocess.run(
        [sys.executable, "-m", "photokit.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(env, PHOTOKIT_DEMO_DIR=str(foreign)),
    )
    assert refused.returncode == 2 and (foreign / "keep.txt").read_text() == "mine"
