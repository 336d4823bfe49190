"""The restoration-quality benchmark's planted targets: in-prior targets follow eq. (7)'s model."""

from __future__ import annotations

import torch

from benchmarks.bench_restore_quality import TargetFamily, planted_offsets
from photokit.prior.alpha import AlphaConfig, regularised_layers


def test_in_prior_targets_have_no_offsets_in_the_regularised_layers():
    num_ws = 14
    head = regularised_layers(num_ws, AlphaConfig.reg_layer_fraction)
    inside = planted_offsets(num_ws, TargetFamily.IN_PRIOR, torch.Generator().manual_seed(3))
    outside = planted_offsets(num_ws, TargetFamily.OFF_PRIOR, torch.Generator().manual_seed(3))
    assert 0 < head < num_ws
    assert torch.count_nonzero(inside[:head]) == 0
    assert torch.count_nonzero(inside[head:]) == inside[head:].numel()
    assert torch.count_nonzero(outside[:head]) == outside[:head].numel()
    torch.testing.assert_close(inside[head:], outside[head:])  # same draw, only the head zeroed
