"""The cost benchmarks time every arithmetic the device runs natively: fp32, and bf16 autocast where it is
native (on a GPU that gives issue 14's per-anchor and per-face figures in fp32 and autocast). Run here at
32 px on the CPU, so the code a GPU run takes is the code these tests take."""

from __future__ import annotations

import pytest
import torch

from benchmarks.bench_generator import timed_precisions
from benchmarks.bench_prior import measure
from benchmarks.bench_restore import projection_cost
from photokit.stylegan2.precision import native_bf16
from photokit.stylegan2.vocab import Precision

CPU = torch.device("cpu")


def test_the_precisions_timed_are_fp32_and_bf16_only_where_native():
    expected = [Precision.FP32, Precision.BF16] if native_bf16(CPU) else [Precision.FP32]
    assert timed_precisions(CPU) == expected
    assert timed_precisions(torch.device("mps")) == [Precision.FP32]


def test_prior_costs_are_recorded_per_precision_with_per_anchor_figures():
    out = measure(32, CPU, repeats=1, invert_batch=1, ranks=(4,), timed_rank=None)
    assert list(out["timings"]) == [str(p) for p in timed_precisions(CPU)]
    for timing in out["timings"].values():
        assert timing["inversion"]["s_per_step"] > 0 and timing["inversion"]["s_per_anchor_paper_450_steps"] > 0
        assert set(timing["tuning"]) == {"full"}  # adapters are timed only when asked for
        for tuned in timing["tuning"].values():
            assert tuned["s_per_anchor_paper_350_epochs"] == pytest.approx(tuned["s_per_step"] * 350, rel=1e-3)
    sizes = out["bytes"]
    assert set(sizes) == {"full", "lowrank_r4", "fast_preset"} and sizes["full"]["x_smaller_than_full"] == 1.0
    assert sizes["lowrank_r4"]["file_bytes"] < sizes["fast_preset"]["file_bytes"] < sizes["full"]["file_bytes"]


def test_projection_cost_runs_in_the_precision_asked_for():
    for precision in timed_precisions(CPU):
        row = projection_cost(32, CPU, 1, precision)
        assert row["precision"] == str(precision) and row["seconds_per_step"] > 0
        assert row["seconds_per_face_1000_steps"] == pytest.approx(row["seconds_per_step"] * 1000, rel=1e-3)
