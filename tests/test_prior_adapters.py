"""Low-rank adapters never tune the constant input."""

from __future__ import annotations

import torch
from typer.testing import CliRunner

from photokit.prior.adapters import LowRankAdapters, RankRule, is_constant_input
from photokit.stylegan2.network import build_tiny_generator

runner = CliRunner()


def test_low_rank_adapters_leave_the_constant_input_frozen():
    G = build_tiny_generator(resolution=16, channels=8, seed=0)
    names = dict(G.synthesis.named_parameters())
    assert any(is_constant_input(n) for n in names)  # the tiny generator has one, so the check means something
    adapters = LowRankAdapters(G.synthesis, RankRule(rank=1))
    assert adapters.factors and not any(is_constant_input(n) for n in adapters.factors)
    with torch.no_grad():
        for up, _ in adapters.factors.values():
            up.add_(0.1)  # as if tuned
    merged = adapters.merged_parameters()
    for name in names:
        if is_constant_input(name):
            assert torch.equal(merged[name], names[name])
