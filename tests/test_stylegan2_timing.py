"""Timing a step waits for asynchronous GPU work."""

from __future__ import annotations

import torch
from typer.testing import CliRunner

from photokit.stylegan2.timing import time_step

runner = CliRunner()


def test_time_step_waits_for_mps_work(monkeypatch):
    """GPU kernels run asynchronously: without a synchronize the timing measures only the queueing."""
    calls = []
    monkeypatch.setattr(torch.mps, "synchronize", lambda: calls.append("sync"))
    steps = []
    seconds = time_step(lambda: steps.append(1), torch.device("mps"), repeats=2)
    assert len(steps) == 3 and calls == ["sync", "sync"] and seconds >= 0
