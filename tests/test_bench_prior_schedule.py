"""The prior-schedule benchmark's comparison generator and sweep flags (the measurements themselves run in
``python -m benchmarks.run_all prior_schedule`` and ``benchmarks/sweep_prior_schedule.py``, not here)."""

from __future__ import annotations

import pytest
import torch

from benchmarks.bench_prior_schedule import QUALITY_CHANNELS, QUALITY_WIDTHS, parse_widths, quality_generator
from benchmarks.sweep_prior_schedule import split_channels


def _conv_widths(G: torch.nn.Module) -> set[int]:
    return {int(p.shape[0]) for name, p in G.synthesis.named_parameters() if p.ndim == 4 and "torgb" not in name}


def test_quality_generator_width_is_a_parameter_with_the_old_default():
    assert _conv_widths(quality_generator(0)) == {QUALITY_CHANNELS}
    assert _conv_widths(quality_generator(0, 48)) == {48}


def test_quality_generator_is_reproducible_per_seed_at_any_width():
    a, b, c = quality_generator(3, 48), quality_generator(3, 48), quality_generator(4, 48)
    pa, pb, pc = (torch.cat([p.flatten() for p in g.parameters()]) for g in (a, b, c))
    assert torch.equal(pa, pb)
    assert not torch.equal(pa, pc)


def test_sweep_takes_channels_out_of_its_arguments_wherever_given():
    assert split_channels(["0", "paper", "{}"]) == (QUALITY_CHANNELS, ["0", "paper", "{}"])
    assert split_channels(["0", "--channels", "128", "paper"]) == (128, ["0", "paper"])
    assert split_channels(["0", "paper", "--channels", "96"]) == (96, ["0", "paper"])


@pytest.mark.parametrize("args", [["0", "--channels"], ["0", "--channels", "wide"], ["0", "--channels", "0"]])
def test_sweep_rejects_a_channels_flag_without_a_positive_number(args):
    with pytest.raises(SystemExit, match="--channels"):
        split_channels(args)


def test_the_benchmark_takes_its_layer_widths_from_a_comma_list():
    assert parse_widths([]) == QUALITY_WIDTHS and QUALITY_CHANNELS in QUALITY_WIDTHS
    assert parse_widths(["--quick", "--channels", "32,128,256"]) == (32, 128, 256)
    for bad in (["--channels"], ["--channels", "32,,64"], ["--channels", "0"], ["--channels", "wide"]):
        with pytest.raises(SystemExit, match="--channels"):
            parse_widths(bad)
