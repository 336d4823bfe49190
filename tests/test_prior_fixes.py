"""Prior edge cases: timing on MPS, what low-rank adapters leave frozen, malformed prior.json files."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.prior.adapters import LowRankAdapters, is_constant_input
from photokit.prior.storage import FORMAT, PRIOR_JSON, list_priors, prior_dir
from photokit.stylegan2.network import build_tiny_generator
from photokit.stylegan2.timing import time_step

runner = CliRunner()


def test_time_step_waits_for_mps_work(monkeypatch):
    """GPU kernels run asynchronously: without a synchronize the timing measures only the queueing."""
    calls = []
    monkeypatch.setattr(torch.mps, "synchronize", lambda: calls.append("sync"))
    steps = []
    seconds = time_step(lambda: steps.append(1), torch.device("mps"), repeats=2)
    assert len(steps) == 3 and calls == ["sync", "sync"] and seconds >= 0


def test_low_rank_adapters_leave_the_constant_input_frozen():
    G = build_tiny_generator(resolution=16, channels=8, seed=0)
    names = dict(G.synthesis.named_parameters())
    assert any(is_constant_input(n) for n in names)  # the tiny generator has one, so the check means something
    adapters = LowRankAdapters(G.synthesis, rank=1)
    assert adapters.factors and not any(is_constant_input(n) for n in adapters.factors)
    with torch.no_grad():
        for up, _ in adapters.factors.values():
            up.add_(0.1)  # as if tuned
    merged = adapters.merged_parameters()
    for name in names:
        if is_constant_input(name):
            assert torch.equal(merged[name], names[name])


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
