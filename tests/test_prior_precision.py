"""The prior build's steps in bf16: inversion and tuning take their steps in the chosen arithmetic, measure
what they reach in fp32, and leave the generator as they found it; the fast preset's choice, and its caps."""

from __future__ import annotations

import pytest
import torch

from photokit.errors import PhotokitError
from photokit.prior.adapters import LowRankAdapters, RankRule
from photokit.prior.projector import ProjectorConfig, invert_w
from photokit.prior.schedule import (
    FIXED_RANK,
    BuildOptions,
    fast_precision,
    fast_tuning,
    preset_configs,
)
from photokit.prior.tuning import TuningConfig, reconstruction_losses, tune
from photokit.prior.vocab import Preset
from photokit.stylegan2.losses import make_reconstruction_loss
from photokit.stylegan2.network import build_tiny_generator
from photokit.stylegan2.precision import native_bf16, synthesis_precision
from photokit.stylegan2.vocab import Precision

CPU = torch.device("cpu")


def _references(G, n: int = 2, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    anchors = G.mapping(torch.randn(n, G.z_dim, generator=gen))[:, 0]
    targets = torch.rand(n, 3, G.resolution, G.resolution, generator=gen) * 2 - 1
    return anchors, targets


def test_synthesis_precision_is_set_for_the_body_and_restored_after_it():
    G = build_tiny_generator(resolution=16, channels=16)
    assert G.synthesis.precision == Precision.FP32
    with synthesis_precision(G, Precision.BF16) as inside:
        assert inside == G.synthesis.precision == Precision.BF16
    assert G.synthesis.precision == Precision.FP32
    with pytest.raises(RuntimeError), synthesis_precision(G, Precision.AUTO):
        assert G.synthesis.precision == fast_precision(CPU)  # AUTO resolves for the generator's device
        raise RuntimeError
    assert G.synthesis.precision == Precision.FP32  # restored after an error too


def test_tuning_steps_in_bf16_and_measures_before_and_after_in_fp32():
    G = build_tiny_generator(resolution=16, channels=16)
    anchors, targets = _references(G)
    loss = make_reconstruction_loss("mse")
    config = TuningConfig(steps=12, adapter_rank=4, adapter_lr=0.02, storage_dtype="float32", checkpoint_every_s=1e9)
    fp32 = tune(G, anchors, targets, loss, config)
    bf16 = tune(G, anchors, targets, loss, TuningConfig(**{**config.to_json(), "precision": Precision.BF16}))
    assert bf16.losses_before == fp32.losses_before  # the starting error, in fp32 both times
    assert bf16.stored.keys() == fp32.stored.keys()
    assert any(not torch.equal(bf16.stored[k], fp32.stored[k]) for k in fp32.stored)  # the steps differed
    assert max(bf16.losses_after) < min(bf16.losses_before)  # and still tuned
    assert bf16.generator.synthesis.precision == G.synthesis.precision == Precision.FP32
    again = reconstruction_losses(bf16.generator.synthesis, anchors, targets, loss, G.num_ws)
    assert again == pytest.approx(bf16.losses_after, rel=1e-6)  # what it reports is the fp32 error


def test_inversion_steps_in_bf16_reports_fp32_losses_and_leaves_the_generator_in_fp32():
    G = build_tiny_generator(resolution=16, channels=16)
    _anchors, targets = _references(G)
    loss = make_reconstruction_loss("mse")
    config = ProjectorConfig(steps=8, w_avg_samples=200, optimize_noise=False, batch_size=2)
    fp32 = invert_w(G, targets, loss, config)
    bf16 = invert_w(G, targets, loss, ProjectorConfig(**{**config.to_json(), "precision": Precision.BF16}))
    assert G.synthesis.precision == Precision.FP32
    assert bf16.start_loss == fp32.start_loss
    assert not torch.equal(bf16.ws, fp32.ws)
    assert max(bf16.final_loss) < min(bf16.start_loss)


def test_the_fast_preset_takes_bf16_where_the_cpu_has_it_and_an_explicit_precision_wins():
    projector, tuning = ProjectorConfig(), TuningConfig()
    fast = preset_configs(Preset.FAST, projector, tuning, CPU)
    expected = Precision.BF16 if native_bf16(CPU) else Precision.FP32
    assert fast[0].precision == fast[1].precision == expected == fast_precision(CPU)
    assert preset_configs(Preset.PAPER, projector, tuning, CPU) == (projector, tuning)  # MyStyle's fp32
    forced = preset_configs(Preset.FAST, projector, tuning, CPU, Precision.FP32)
    assert forced[0].precision == forced[1].precision == Precision.FP32
    paper_bf16 = preset_configs(Preset.PAPER, projector, tuning, CPU, Precision.BF16)
    assert paper_bf16[0].precision == paper_bf16[1].precision == Precision.BF16
    with pytest.raises(PhotokitError, match="bf16 is not supported on mps"):
        preset_configs(Preset.FAST, projector, tuning, torch.device("mps"), Precision.BF16)
    with pytest.raises(PhotokitError, match="unknown precision 'fp8'"):
        BuildOptions(precision="fp8")


def test_a_rank_cap_bounds_the_widest_weights_and_a_fixed_rank_clears_the_rule():
    G = build_tiny_generator(resolution=16, w_dim=64, channels=128)
    uncapped = LowRankAdapters(G.synthesis, RankRule(rank=4, fraction=0.5)).ranks()
    capped = LowRankAdapters(G.synthesis, RankRule(rank=4, fraction=0.5, cap=24)).ranks()
    assert max(uncapped.values()) == 64 and max(capped.values()) == 24
    assert {n: min(r, 24) for n, r in uncapped.items()} == capped
    for bad in (lambda: RankRule(rank=8, cap=4), lambda: RankRule(rank=4, cap=-1)):
        with pytest.raises(ValueError, match="cap"):
            bad()
    fast = fast_tuning(TuningConfig())
    assert fast.rank_rule() == RankRule(
        fast.adapter_rank or 0, fast.adapter_rank_fraction or 0.0, fast.adapter_rank_cap or 0
    )
    fixed = TuningConfig(**{**fast.to_json(), **FIXED_RANK, "adapter_rank": 96})
    assert fixed.rank_rule() == RankRule(rank=96) and fixed.adapter_lr_channels is None


def test_a_tuning_checkpoint_resumes_only_in_the_arithmetic_it_was_taken_in(tmp_path):
    G = build_tiny_generator(resolution=16, channels=16)
    anchors, targets = _references(G)
    loss = make_reconstruction_loss("mse")
    bf16 = TuningConfig(steps=10, adapter_rank=4, precision=Precision.BF16, checkpoint_every_s=1e9)
    checkpoint = tmp_path / "tuning.ckpt"

    def stop_at_4(step: int, _total: int, _loss: float) -> None:
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune(G, anchors, targets, loss, bf16, checkpoint=checkpoint, on_step=stop_at_4)
    fp32 = TuningConfig(**{**bf16.to_json(), "precision": Precision.FP32})
    with pytest.raises(PhotokitError, match="other settings"):  # never continued in another arithmetic
        tune(G, anchors, targets, loss, fp32, checkpoint=checkpoint)
    assert tune(G, anchors, targets, loss, bf16, checkpoint=checkpoint).resumed_from == 4
