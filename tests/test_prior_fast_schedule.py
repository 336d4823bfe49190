"""The fast prior preset: batched W inversion with per-anchor early stopping, and a schedule that fits
20 references at 256 px into 30 minutes given measured step costs (timings are never asserted here)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch

from photokit.prior.estimate import schedule_for
from photokit.prior.projector import ProjectorConfig, balanced_batch_size, invert_w, loss_flattened
from photokit.prior.schedule import (
    FAST_REFERENCE_COSTS,
    PRESET_SCHEDULES,
    BuildOptions,
    fast_projector,
    preset_configs,
)
from photokit.prior.tuning import TuningConfig, tune, tuning_lr
from photokit.prior.vocab import LrDecay, Preset
from photokit.stylegan2.losses import make_reconstruction_loss
from photokit.stylegan2.network import build_tiny_generator, w_statistics


@pytest.fixture(scope="module")
def tiny():
    G = build_tiny_generator()
    return G, w_statistics(G, 2000, torch.device("cpu"), 0)


def _planted(G, n: int, seed: int) -> torch.Tensor:
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.synthesis(G.mapping(z), noise_mode="const")


def test_batched_inversion_equals_one_at_a_time(tiny):
    G, w_stats = tiny
    targets = _planted(G, 3, seed=4)
    config = ProjectorConfig(steps=25)
    loss = make_reconstruction_loss("mse")
    batched = invert_w(G, targets, loss, config, w_stats=w_stats, seeds=[7, 8, 9])
    singles = [invert_w(G, targets[i : i + 1], loss, config, w_stats=w_stats, seeds=[7 + i]) for i in range(3)]
    assert batched.noise_optimized and batched.steps == [25, 25, 25]  # no early stop unless asked
    assert all(f < s for f, s in zip(batched.final_loss, batched.start_loss))  # the anchors moved
    assert torch.allclose(batched.ws, torch.cat([s.ws for s in singles]), rtol=1e-3, atol=1e-4)
    assert batched.final_loss == pytest.approx([s.final_loss[0] for s in singles], rel=1e-3)


def test_early_stopping_freezes_a_converged_anchor_and_not_a_moving_one(tiny):
    """Reference 0 is the mean w's own image (converged from the start), reference 1 is far from it."""
    G, w_stats = tiny
    w_avg = w_stats[0]
    with torch.no_grad():
        at_mean = G.synthesis(w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1), noise_mode="const")
    targets = torch.cat([at_mean, _planted(G, 1, seed=5)])
    config = ProjectorConfig(
        steps=60, early_stop_window=5, early_stop_tol=0.002, initial_noise_factor=0.0, optimize_noise=False
    )
    loss = make_reconstruction_loss("mse")
    result = invert_w(G, targets, loss, config, w_stats=w_stats, seeds=[1, 2])
    assert result.steps[0] == 2 * config.early_stop_window  # frozen at the first chance
    assert result.steps[1] > result.steps[0]  # still improving then: kept going
    # Adam normalises even round-off gradients, so the converged anchor drifts by a few tiny steps at most
    assert torch.allclose(result.ws[0], w_avg, atol=0.02) and result.final_loss[0] < 1e-4
    assert result.final_loss[1] < 0.5 * result.start_loss[1]
    # the anchor that stayed is not disturbed by its neighbour leaving the batch
    alone = invert_w(G, targets[1:], loss, config, w_stats=w_stats, seeds=[2])
    assert alone.steps == result.steps[1:]
    assert torch.allclose(alone.ws, result.ws[1:], rtol=1e-3, atol=1e-4)


def test_loss_flattened_needs_two_windows_and_a_small_drop():
    steps = torch.arange(20, dtype=torch.float32)
    history = torch.stack([torch.full((20,), 0.3), 1.0 / (1 + steps), 1.0 - 0.0001 * steps], dim=1)
    assert loss_flattened(history, window=5, tol=0.01).tolist() == [True, False, True]
    assert not loss_flattened(history[:9], window=5, tol=0.01).any()  # fewer than 2 windows
    assert not loss_flattened(history, window=0, tol=0.01).any()  # early stopping off
    # at its optimum from the start, the loss only jitters upwards: flat, though the window means still fall
    jitter = torch.tensor([0.0, 0.0, 6e-6, 1.3e-4, 1.5e-4, 7.7e-5, 1.8e-5, 1.1e-4, 4.3e-5, 2.3e-5])
    assert jitter[5:].mean() < jitter[:5].mean() and loss_flattened(jitter[:, None], window=5, tol=0.01).item()


def test_fast_preset_fits_20_references_at_256_px_in_30_minutes():
    """With the per-step costs measured at 256 px (benchmarks/bench_prior_schedule.py), the fast preset's
    own schedule needs no shrinking for 20 references in 30 minutes on a CPU (one reference at a time);
    a slower machine shrinks it."""
    invert_step_s, tuning_step_s = FAST_REFERENCE_COSTS["invert_step_s"], FAST_REFERENCE_COSTS["tuning_step_s"]
    fast = PRESET_SCHEDULES[Preset.FAST]
    options = BuildOptions(preset=Preset.FAST, max_refs=20, budget_s=30 * 60)
    batch = fast_projector(ProjectorConfig(), torch.device("cpu")).batch_size
    plan = schedule_for(Preset.FAST, 20, batch, (invert_step_s * batch, tuning_step_s), options, 1, None)
    assert (plan.refs, plan.invert_steps, plan.tuning_steps) == (20, fast["invert_steps"], fast["epochs"] * 20)
    assert plan.invert_batches == 20 // batch and not plan.notes  # not shrunk
    assert plan.invert_s + plan.tuning_s <= 30 * 60
    assert plan.paper_estimate_s > 5 * (plan.invert_s + plan.tuning_s)
    costs = (1.25 * invert_step_s * batch, 1.25 * tuning_step_s)
    slow = schedule_for(Preset.FAST, 20, batch, costs, options, 1, None)
    assert slow.refs == 20 and slow.invert_s + slow.tuning_s <= 30 * 60
    assert slow.invert_steps < plan.invert_steps and slow.tuning_steps < plan.tuning_steps
    assert fast_projector(ProjectorConfig()).early_stop_window > 0  # the fast preset stops anchors early


def test_fast_preset_configs_invert_one_at_a_time_on_a_cpu_and_tune_adapters():
    """On a CPU a batch costs more per reference than one reference alone, so the fast preset inverts one
    at a time there and keeps batches elsewhere; it tunes low-rank adapters; the paper preset is unchanged."""
    projector, tuning = ProjectorConfig(), TuningConfig()
    cpu = preset_configs(Preset.FAST, projector, tuning, torch.device("cpu"))
    gpu = preset_configs(Preset.FAST, projector, tuning, torch.device("cuda"))
    assert cpu[0].batch_size == 1 and gpu[0].batch_size == projector.batch_size > 1
    assert cpu[0].loss_size == gpu[0].loss_size < projector.loss_size  # a cheaper inversion loss
    assert replace(cpu[1], precision=gpu[1].precision) == gpu[1]  # bf16 only on a CPU that computes it natively
    assert cpu[1].adapter_rank and cpu[1].adapter_lr > tuning.adapter_lr
    assert (cpu[1].steps, cpu[1].epochs, cpu[0].steps) == (tuning.steps, tuning.epochs, projector.steps)
    assert preset_configs(Preset.PAPER, projector, tuning, torch.device("cpu")) == (projector, tuning)


def test_balanced_batches_keep_the_number_of_batches():
    for count in range(1, 40):
        for size in (1, 3, 8):
            balanced = balanced_batch_size(count, size)
            assert balanced <= size and -(-count // balanced) == -(-count // size)


def test_tuning_lr_warms_up_then_holds_or_decays():
    total, peak = 100, 2e-3
    constant = [tuning_lr(s, total, peak, 0.1, LrDecay.CONSTANT) for s in range(total)]
    cosine = [tuning_lr(s, total, peak, 0.1, LrDecay.COSINE) for s in range(total)]
    for lrs in (constant, cosine):
        warm = lrs[:10]
        assert all(a < b for a, b in itertools.pairwise(warm)) and 0 < warm[0] < peak / 5  # linear ramp up
        assert lrs[9] == pytest.approx(peak)  # the peak at the end of the warm-up
    assert all(lr == pytest.approx(peak) for lr in constant[10:])
    decay = cosine[10:]
    assert all(a > b for a, b in itertools.pairwise(decay)) and decay[-1] < peak / 1000  # down to ~0
    assert cosine[55] == pytest.approx(peak / 2, rel=0.05)  # half way through the decay: half the peak
    assert [tuning_lr(s, 10, peak, 0.0, LrDecay.CONSTANT) for s in range(10)] == [peak] * 10  # MyStyle's


def test_tuning_follows_its_lr_schedule():
    """Both schedules start at the peak, so their first step is the same; then the cosine takes smaller ones."""
    G = build_tiny_generator()
    targets = _planted(G, 2, seed=6)
    anchors = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)))[:, 0]
    loss = make_reconstruction_loss("mse")
    runs = [
        tune(G, anchors, targets, loss, TuningConfig(steps=3, lr=1e-2, lr_decay=decay, checkpoint_every_s=1e9))
        for decay in (LrDecay.CONSTANT, LrDecay.COSINE)
    ]
    assert runs[0].loss_history[:2] == pytest.approx(runs[1].loss_history[:2], rel=1e-5)
    assert runs[0].losses_after != pytest.approx(runs[1].losses_after, rel=1e-4)
