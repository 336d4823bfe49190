"""Anchors: W inversion with the projector's default schedule, stored in the recorded order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from photokit.prior.anchors import compute_anchors
from photokit.prior.meta import ANCHORS_PARTIAL
from photokit.prior.projector import ProjectorConfig, invert_w
from photokit.prior.refs import ReferenceSet
from photokit.stylegan2.base import BaseGenerator
from photokit.stylegan2.losses import make_reconstruction_loss
from photokit.stylegan2.network import build_tiny_generator, w_statistics


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_generator()


def _known(G, n, seed):
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        w = G.mapping(z)[:, 0]
        return w, G.synthesis(w.unsqueeze(1).repeat(1, G.num_ws, 1), noise_mode="const")


def _mse(G, w, target):
    with torch.no_grad():
        return (
            (G.synthesis(w.unsqueeze(1).repeat(1, G.num_ws, 1), noise_mode="const") - target).pow(2).mean(dim=(1, 2, 3))
        )


def test_default_schedule_recovers_a_known_w(tiny):
    """450 steps, ramped lr, w-noise, noise regularisation, mean-w start: image MSE falls >= 90%.

    MSE is the loss here: LPIPS without its ImageNet backbone (not installable in tests) is not a
    perceptual metric, and the acceptance measure is image MSE anyway.
    """
    config = ProjectorConfig()
    assert (config.steps, config.initial_lr, config.w_avg_samples, config.regularize_noise_weight) == (
        450,
        0.01,
        10_000,
        1e5,
    )
    _w_true, target = _known(tiny, 4, seed=5)
    w_avg, _ = w_statistics(tiny, config.w_avg_samples, torch.device("cpu"))
    start = _mse(tiny, w_avg.expand(4, -1), target)
    result = invert_w(tiny, target, make_reconstruction_loss("mse"), config)
    assert result.noise_optimized  # the projector's per-sample noise maps were used
    final = _mse(tiny, result.ws, target)
    reduction = 1 - final.mean() / start.mean()
    print(f"image MSE from mean w {start.mean():.4f} -> {final.mean():.4f} ({reduction:.1%} less)")
    assert reduction >= 0.90
    assert (final < start).all()
    assert result.final_loss == pytest.approx(final.tolist(), rel=1e-4)  # reported losses are the anchors' own


def _refs(folder: Path, face_ids: list[int]) -> ReferenceSet:
    faces = [{"face_id": f, "photo_id": f, "path": None, "crop": f"refs/face_{f}.png"} for f in face_ids]
    return ReferenceSet(1, None, 32, faces, [], {}, folder)


def test_anchors_are_computed_in_batches_resumed_and_kept_in_reference_order(tiny, tmp_path):
    _w_true, targets = _known(tiny, 5, seed=11)
    base = BaseGenerator(tiny, "tiny")
    refs = _refs(tmp_path, [40, 12, 33, 7, 21])
    config = ProjectorConfig(steps=150, batch_size=2)
    loss = make_reconstruction_loss("mse")

    calls = {"n": 0}

    def interrupt_in_second_batch(step, value):
        calls["n"] += 1
        if calls["n"] == config.steps + 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compute_anchors(base, refs, targets, loss, config, "mse", tmp_path, on_step=interrupt_in_second_batch)
    from safetensors import safe_open

    with safe_open(str(tmp_path / ANCHORS_PARTIAL), framework="pt") as fh:
        assert fh.get_tensor("anchors").shape == (2, tiny.w_dim)  # the finished first batch survived

    calls["n"] = 0
    anchors, start, final = compute_anchors(
        base, refs, targets, loss, config, "mse", tmp_path, on_step=lambda s, v: calls.__setitem__("n", calls["n"] + 1)
    )
    assert calls["n"] == 2 * config.steps  # only the two unfinished batches ran
    assert anchors.shape == (5, tiny.w_dim) and len(final) == 5 and all(f < s for f, s in zip(final, start))
    # row i is the anchor of reference i: each reconstructs its own target best
    errors = torch.stack([_mse(tiny, anchors, t.expand(5, -1, -1, -1)) for t in targets])  # [target, anchor]
    assert torch.equal(errors.argmin(dim=1), torch.arange(5))

    from photokit.prior.meta import ANCHORS_FILE
    from photokit.prior.storage import save_prior

    meta = {"base": {"fingerprint": base.fingerprint}, "references": refs.faces, "tuning": {"kind": "full"}}
    save_prior(tmp_path, anchors, {"delta.b4.const": torch.zeros(1)}, meta)
    with safe_open(str(tmp_path / ANCHORS_FILE), framework="pt") as fh:
        assert torch.equal(fh.get_tensor("anchors"), anchors)
        assert json.loads(fh.metadata()["face_ids"]) == [40, 12, 33, 7, 21]
