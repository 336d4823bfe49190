"""Adapters that scale with the layer: a rank per weight (a fraction of its own rank) and an lr per weight
(smaller for wider fan-ins); mixed ranks store and reload exactly; what the fast preset picks."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from photokit.prior.adapters import (
    LowRankAdapters,
    RankRule,
    apply_stored,
    feature_channels,
    low_rank_shape,
    rank_range,
    scaled_lr,
    stored_ranks,
    synthesis_parameters,
)
from photokit.prior.meta import tuned_weights
from photokit.prior.schedule import FAST_TUNING, fast_tuning
from photokit.prior.storage import load_safetensors, save_safetensors
from photokit.prior.tuning import TuningConfig, lr_groups, tune
from photokit.stylegan2.losses import make_reconstruction_loss
from photokit.stylegan2.network import Generator, GeneratorConfig, build_tiny_generator


def tapered_generator() -> Generator:
    """Layers narrowing from 32 to 8 channels, as FFHQ's narrow from 512 to 64: weights of several widths."""
    config = GeneratorConfig(z_dim=16, w_dim=16, resolution=16, mapping_layers=2, channels={4: 32, 8: 16, 16: 8})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Generator(config).eval().requires_grad_(False)


def test_a_fractional_rank_follows_each_weights_own_rank():
    G = build_tiny_generator(resolution=16, w_dim=32, channels=16, seed=1)
    for fraction in (0.25, 0.5):
        adapters = LowRankAdapters(G.synthesis, RankRule(fraction=fraction))
        ranks = adapters.ranks()
        assert ranks
        for name, rank in ranks.items():
            assert rank == max(1, math.ceil(fraction * min(low_rank_shape(adapters.base[name].shape))))
        assert len(set(ranks.values())) > 1  # toRGB (3 outputs) and the 16-channel convs differ
    fixed = LowRankAdapters(G.synthesis, RankRule(rank=2)).ranks()
    assert set(fixed.values()) == {2}
    at_least = LowRankAdapters(G.synthesis, RankRule(rank=2, fraction=0.5))
    for name, rank in at_least.ranks().items():  # the fraction where it gives more, else the rank
        assert rank == max(2, math.ceil(0.5 * min(low_rank_shape(at_least.base[name].shape))))
    assert set(at_least.ranks().values()) == {2, 8}  # toRGB keeps 2, the 16-wide weights get 8
    for bad in (RankRule, lambda: RankRule(rank=-1), lambda: RankRule(fraction=1.5)):
        with pytest.raises(ValueError):
            bad()


def test_adapter_lr_shrinks_only_for_weights_wider_than_the_reference():
    assert scaled_lr(0.02, 128, 32) == pytest.approx(0.01)  # 4x the channels: half the lr
    assert scaled_lr(0.02, 256, 32, power=2 / 3) == pytest.approx(0.005)  # 8x: a quarter
    assert scaled_lr(0.02, 16, 32) == scaled_lr(0.02, 32, 32) == scaled_lr(0.02, 128, None) == 0.02
    assert feature_channels(torch.Size([64, 128, 3, 3])) == 128  # a conv mixes its input channels
    assert feature_channels(torch.Size([128, 512])) == 128  # a style affine scales its conv's 128 inputs
    adapters = LowRankAdapters(tapered_generator().synthesis, RankRule(fraction=0.5))
    widths = [feature_channels(adapters.base[n].shape) for n in adapters.factors]
    scales = adapters.lr_scales(16)
    assert scales[::2] == scales[1::2]  # up and down of one weight share it
    assert scales[::2] == [min(1.0, math.sqrt(16 / c)) for c in widths]
    assert min(scales) < 1.0 == max(scales)
    groups = lr_groups(adapters.trainable(), scales, 0.02)
    assert sum(len(g["params"]) for g in groups) == len(scales) and len(groups) == len(set(scales))
    assert all(g["lr"] == pytest.approx(0.02 * g["lr_scale"]) for g in groups)


def test_tuning_takes_each_weights_lr_and_its_mixed_ranks_reload_exactly(tmp_path):
    """Adam's first step moves every entry with a gradient by its lr, so after one step each weight's ``up``
    factor shows the lr that weight was given; the stored factors, of several ranks, rebuild the tuned
    network bit for bit after a round trip through a file."""
    G = tapered_generator()
    targets = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    anchors = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)))[:, 0]
    widths = {n: feature_channels(p.shape) for n, p in synthesis_parameters(G.synthesis).items() if p.ndim >= 2}
    config = TuningConfig(
        steps=1, adapter_rank_fraction=0.5, adapter_lr=0.01, adapter_lr_channels=8, storage_dtype="float32"
    )
    result = tune(G, anchors, targets, make_reconstruction_loss("mse"), config, checkpoint=None)
    ranks = stored_ranks(result.stored)
    assert len(set(ranks.values())) > 1
    moved = {name: result.stored[f"up.{name}"].abs().max().item() for name in ranks}
    for name, step in moved.items():
        assert step == pytest.approx(scaled_lr(0.01, widths[name], 8), rel=1e-3)
    assert len({round(s, 6) for s in moved.values()}) == 3  # 32, 16 and 8 channels wide

    save_safetensors(tmp_path / "adapters.safetensors", result.stored, {})
    reloaded, _ = load_safetensors(tmp_path / "adapters.safetensors")
    fresh = copy.deepcopy(G)
    apply_stored(fresh.synthesis, reloaded)
    tuned = synthesis_parameters(result.generator.synthesis)
    for name, p in synthesis_parameters(fresh.synthesis).items():
        assert torch.equal(p, tuned[name])
    assert any(not torch.equal(p, synthesis_parameters(G.synthesis)[n]) for n, p in tuned.items())


def test_the_fast_preset_s_ranks_follow_the_width_up_to_a_cap_and_a_given_rank_replaces_the_rule():
    fast = fast_tuning(TuningConfig())
    rule = RankRule(FAST_TUNING["adapter_rank"], FAST_TUNING["adapter_rank_fraction"], FAST_TUNING["adapter_rank_cap"])
    assert fast.rank_rule() == rule and fast.peak_lr == fast.adapter_lr and rule.fraction > 0 < rule.cap
    assert TuningConfig(adapter_rank_fraction=0.5).rank_rule() == RankRule(fraction=0.5)
    assert TuningConfig(adapter_rank=0).rank_rule() is None and TuningConfig().peak_lr == TuningConfig().lr


def test_on_32_channel_layers_the_fast_rule_is_rank_16_at_one_lr_and_wider_layers_get_more():
    """The rule was chosen so that the 32-channel generators the fast preset was first tuned on see no
    change; FFHQ's 512-channel convolutions stop at the cap."""
    fast = fast_tuning(TuningConfig())
    rule, reference = fast.rank_rule(), fast.adapter_lr_channels
    assert rule is not None
    narrow = LowRankAdapters(build_tiny_generator(resolution=16, w_dim=64, channels=32).synthesis, rule)
    assert set(narrow.ranks().values()) == {FAST_TUNING["adapter_rank"]} and set(narrow.lr_scales(reference)) == {1.0}
    wide = LowRankAdapters(build_tiny_generator(resolution=16, w_dim=64, channels=128).synthesis, rule)
    assert min(wide.ranks().values()) >= FAST_TUNING["adapter_rank"] < max(wide.ranks().values())
    assert max(wide.lr_scales(reference)) < 1.0
    widest = LowRankAdapters(build_tiny_generator(resolution=8, w_dim=64, channels=512).synthesis, rule)
    assert max(widest.ranks().values()) == rule.cap < rule.fraction * 512


def test_a_stored_prior_says_which_ranks_it_holds():
    lowrank = {"kind": "lowrank", "adapter_rank": 16, "adapter_rank_fraction": 0.5}
    assert tuned_weights(lowrank | {"adapter_ranks": rank_range({"a": 16, "b": 64, "c": 32})}) == (
        "low-rank adapters R=16-64 (0.5 of each weight's rank, at least 16)"
    )
    assert tuned_weights({"kind": "lowrank", "adapter_rank": 16}) == "low-rank adapters R=16"  # an older prior.json
    assert tuned_weights({"kind": "lowrank", "adapter_ranks": [8, 8]}) == "low-rank adapters R=8"
    assert tuned_weights({"kind": "full"}) == "full delta"
