"""Pure pieces of the personal prior: schedules, selection, plans, adapters and stored deltas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from photokit.prior.adapters import (
    FullDelta,
    LowRankAdapters,
    RankRule,
    adaptable,
    apply_stored,
    low_rank_delta,
    stored_bytes,
)
from photokit.prior.projector import ProjectorConfig, learning_rate, noise_regularization, w_noise_scale
from photokit.prior.schedule import FAST_FLOORS, BuildOptions, plan_schedule, resolve_preset
from photokit.prior.selection import (
    Candidate,
    RefsConfig,
    drop_near_duplicates,
    farthest_point_sampling,
    select_references,
    too_few_message,
)
from photokit.prior.tuning import batch_indices
from photokit.stylegan2.network import build_tiny_generator

# -- projector schedule ---------------------------------------------------------------------------------


def test_learning_rate_ramps_up_peaks_and_ramps_down():
    cfg = ProjectorConfig()
    lrs = [learning_rate(i / cfg.steps, cfg) for i in range(cfg.steps)]
    assert lrs[0] == 0.0
    assert max(lrs) == pytest.approx(cfg.initial_lr)
    peak = [i for i, lr in enumerate(lrs) if lr == pytest.approx(cfg.initial_lr)]
    # flat top between the 5% warm-up and the last 25% cosine ramp-down
    assert peak[0] == math.ceil(cfg.lr_rampup_length * cfg.steps)
    assert peak[-1] <= (1 - cfg.lr_rampdown_length) * cfg.steps + 1
    assert lrs[-1] < 0.01 * cfg.initial_lr
    assert all(a >= b for a, b in zip(lrs[peak[-1] :], lrs[peak[-1] + 1 :]))


def test_w_noise_fades_out_over_the_first_75_percent():
    cfg = ProjectorConfig()
    assert w_noise_scale(0.0, 2.0, cfg) == pytest.approx(2.0 * cfg.initial_noise_factor)
    assert w_noise_scale(0.5, 2.0, cfg) < w_noise_scale(0.25, 2.0, cfg)
    assert w_noise_scale(0.75, 2.0, cfg) == 0.0 and w_noise_scale(0.9, 2.0, cfg) == 0.0


def test_noise_regularization_punishes_correlated_noise_only():
    gen = torch.Generator().manual_seed(0)
    white = torch.randn(2, 1, 32, 32, generator=gen)
    smooth = torch.nn.functional.interpolate(torch.randn(2, 1, 4, 4, generator=gen), size=32, mode="bilinear")
    smooth = (smooth - smooth.mean()) / smooth.std()
    reg_white, reg_smooth = noise_regularization([white]), noise_regularization([smooth])
    assert reg_white.shape == (2,)
    assert (reg_smooth > 100 * reg_white).all()


# -- reference selection --------------------------------------------------------------------------------


def _candidate(face_id, embedding, side=600.0, blur=300.0, gray=False, yaw=0.0, aligned=True):
    return Candidate(
        face_id,
        face_id,
        f"/photos/{face_id}.jpg",
        side,
        blur,
        gray,
        yaw,
        None if embedding is None else np.asarray(embedding, np.float32),
        {"center": [0, 0], "x": [1, 0], "y": [0, 1]} if aligned else None,
    )


def test_each_filter_gives_its_reason():
    rng = np.random.default_rng(0)
    e = lambda: rng.normal(size=128) * 0.1  # noqa: E731 - spread far beyond the duplicate threshold
    cands = [
        _candidate(1, e()),
        _candidate(2, e(), side=100.0),
        _candidate(3, e(), blur=5.0),
        _candidate(4, e(), gray=True),
        _candidate(5, e(), yaw=70.0),
        _candidate(6, e(), aligned=False),
        _candidate(7, None),
    ]
    sel = select_references(cands, resolution=256, config=RefsConfig())
    reasons = {d.face_id: d.reason for d in sel.decisions}
    assert reasons == {
        1: None,
        2: "too_small",
        3: "blurry",
        4: "grayscale",
        5: "turned",
        6: "no_landmarks",
        7: "no_embedding",
    }
    assert [c.face_id for c in sel.kept] == [1]
    assert "only 1 usable face" in too_few_message("person 3", sel, RefsConfig())


def test_near_duplicates_keep_the_better_face():
    base = np.zeros(128)
    a = _candidate(1, base, side=400.0)
    b = _candidate(2, base + 0.005, side=900.0)  # same shot, more pixels
    c = _candidate(3, base + 0.1, side=500.0)  # distance ~1.1: another photo
    kept, dropped = drop_near_duplicates([a, b, c], threshold=0.22)
    assert [k.face_id for k in kept] == [2, 3]
    assert [(d.face_id, of.face_id) for d, of, _ in dropped] == [(1, 2)]


def test_farthest_point_sampling_spreads_out():
    pts = np.array([[0.0, 0], [0.1, 0], [10, 0], [0, 10], [10.1, 0], [5, 5]])
    order = farthest_point_sampling(pts, 4)
    assert order[0] == 0
    assert set(order[1:3]) == {2, 3} or set(order[1:3]) == {4, 3}
    assert 1 not in order  # the near copy of the start point is never worth picking among 4
    assert farthest_point_sampling(pts, 50) and len(farthest_point_sampling(pts, 50)) == len(pts)


def test_max_refs_keeps_the_most_diverse_and_reports_the_rest():
    rng = np.random.default_rng(1)
    cands = [_candidate(i, rng.normal(size=128), side=1000 - i) for i in range(1, 9)]
    sel = select_references(cands, 256, RefsConfig(max_refs=5))
    assert len(sel.kept) == 5 and sel.kept[0].face_id == 1  # best quality first
    assert sel.counts() == {"kept": 5, "not_selected": 3}
    order = {d.face_id: d.order for d in sel.decisions if d.kept}
    assert [order[c.face_id] for c in sel.kept] == list(range(5))


# -- build plans ----------------------------------------------------------------------------------------


def test_auto_preset_is_paper_on_gpu_fast_elsewhere():
    assert resolve_preset("auto", torch.device("cuda")) == "paper"
    assert resolve_preset("auto", torch.device("cpu")) == "fast"
    with pytest.raises(Exception, match="unknown preset"):
        resolve_preset("turbo", torch.device("cpu"))


def test_paper_plan_uses_published_schedules():
    plan = plan_schedule("paper", refs=20, invert_batch=8, invert_step_s=1.0, tuning_step_s=1.0, options=BuildOptions())
    assert plan.invert_steps == 450 and plan.tuning_steps == 350 * 20 and plan.invert_batches == 3


def test_fast_plan_fits_its_budget_and_respects_explicit_options():
    opts = BuildOptions(budget_s=600)
    plan = plan_schedule("fast", refs=10, invert_batch=8, invert_step_s=1.0, tuning_step_s=1.0, options=opts)
    assert plan.invert_s + plan.tuning_s <= 600 * 1.01
    assert plan.paper_estimate_s > 5 * (plan.invert_s + plan.tuning_s)  # same references, published steps
    pinned = plan_schedule("fast", 10, 8, 1.0, 1.0, BuildOptions(budget_s=600, tuning_steps=777))
    assert pinned.tuning_steps == 777
    # far too slow a device: floors, fewer references, and the estimate still says how long honestly
    slow = plan_schedule("fast", 10, 8, 100.0, 100.0, opts)
    floors = FAST_FLOORS
    assert (slow.refs, slow.invert_steps, slow.tuning_steps) == (
        floors["refs"],
        floors["invert_steps"],
        floors["epochs"] * floors["refs"],
    )
    assert slow.invert_s + slow.tuning_s > 600
    asked = plan_schedule("fast", 10, 8, 100.0, 100.0, BuildOptions(budget_s=600, max_refs=10))
    assert asked.refs == 10  # an explicit --max is never overridden


def test_tuning_order_is_a_reproducible_permutation_per_epoch():
    seen = torch.cat([batch_indices(s, 7, 2, seed=3) for s in range(4)])
    assert sorted(seen.tolist()) == list(range(7))
    assert torch.equal(batch_indices(5, 7, 2, 3), batch_indices(5, 7, 2, 3))
    assert not torch.equal(
        torch.cat([batch_indices(s, 7, 1, 3) for s in range(7)]),
        torch.cat([batch_indices(s, 7, 1, 3) for s in range(7, 14)]),
    )


# -- adapters and stored changes ------------------------------------------------------------------------


def test_adapters_only_where_factors_are_smaller():
    assert adaptable(torch.Size([32, 32, 3, 3]), 4)
    assert not adaptable(torch.Size([3, 32, 1, 1]), 4)  # toRGB: rank 4 factors exceed the weight
    assert not adaptable(torch.Size([32]), 1)
    up, down = torch.randn(6, 2), torch.randn(2, 12)
    assert torch.equal(low_rank_delta(up, down, torch.Size([6, 3, 2, 2])), (up @ down).reshape(6, 3, 2, 2))


@pytest.mark.parametrize("rank", [None, 2])
def test_stored_change_rebuilds_the_tuned_network_exactly(rank):
    G = build_tiny_generator(resolution=16, w_dim=32, channels=16, seed=1)
    tunable = LowRankAdapters(G.synthesis, RankRule(rank=rank)) if rank else FullDelta(G.synthesis)
    with torch.no_grad():
        for p in tunable.trainable():
            p.add_(torch.randn_like(p) * 0.01)
    stored = tunable.stored_tensors(torch.float32)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)))
    expected = tunable.synthesize(ws)
    fresh = build_tiny_generator(resolution=16, w_dim=32, channels=16, seed=1)
    apply_stored(fresh.synthesis, stored)
    assert torch.allclose(fresh.synthesis(ws, noise_mode="const"), expected, atol=1e-5)
    assert not torch.allclose(
        G.synthesis(ws, noise_mode="const")
        if rank
        else build_tiny_generator(resolution=16, w_dim=32, channels=16, seed=1).synthesis(ws),
        expected,
    )
    assert stored_bytes(stored) > 0
    other = build_tiny_generator(resolution=16, w_dim=32, channels=8, seed=1)  # another architecture
    with pytest.raises(ValueError):
        apply_stored(other.synthesis, stored)
