"""Malformed prior.json files are listed and shown with one-line errors and dashes, never a traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.prior.meta import FORMAT, PRIOR_JSON, list_priors, prior_dir

runner = CliRunner()


def _write_meta(settings, person_id: int, meta: dict) -> None:
    folder = prior_dir(settings, person_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PRIOR_JSON).write_text(json.dumps(meta))


def _complete_meta(person_id: int, **tuning) -> dict:
    return {
        "format": FORMAT,
        "person_id": person_id,
        "references": [],
        "base": {"name": "tiny", "fingerprint": "ab"},
        "tuning": {"kind": "full", **tuning},
        "files": {"delta.safetensors": {"sha256": "cd", "bytes": 10}},
    }


def test_list_priors_reports_a_prior_json_with_missing_keys_as_one_line(settings):
    _write_meta(settings, 1, {"format": FORMAT})  # no person_id, references, base, tuning, files
    _write_meta(settings, 2, {**_complete_meta(2), "tuning": {"kind": ["full"]}})
    _write_meta(settings, 3, _complete_meta(3, loss_before=0.5, loss_after=0.25))
    listed = {p["person_id"]: p for p in list_priors(settings)}
    for broken in (1, 2):
        assert "incomplete" in listed[broken]["error"] and "\n" not in listed[broken]["error"]
    assert "error" not in listed[3] and listed[3]["loss_after"] == 0.25


def test_prior_list_and_show_print_dashes_for_missing_numbers(settings, monkeypatch):
    from photokit.cli.common import console

    monkeypatch.setattr(console, "_width", 400)  # one table row per line
    _write_meta(settings, 4, _complete_meta(4, loss_before=None))
    _write_meta(settings, 5, {"format": FORMAT, "person_id": 5})
    result = runner.invoke(app, ["prior", "list"])
    assert result.exit_code == 0, result.output
    assert "- -> -" in result.stdout and "incomplete" in result.stdout
    listed = json.loads(runner.invoke(app, ["prior", "list", "--json"]).stdout)
    assert [p["person_id"] for p in listed] == [4, 5] and listed[0]["loss_before"] is None
    shown = runner.invoke(app, ["prior", "show", "4"])
    assert shown.exit_code == 0, shown.output
    assert "reconstruction loss - -> -" in shown.stdout
    broken = runner.invoke(app, ["prior", "show", "5"])
    assert broken.exit_code == 2 and "incomplete" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("meta", [_complete_meta(6), {**_complete_meta(6), "tuning": {"kind": "full"}}])
def test_a_complete_prior_json_passes(settings, meta):
    _write_meta(settings, 6, meta)
    assert "error" not in list_priors(settings)[0]
