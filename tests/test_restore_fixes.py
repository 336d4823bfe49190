"""Restoration edge cases: masks on the target's device, album structure under --out, grayscale ICC
profiles, cached prior failures, the --scale range."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from torch import nn

from photokit.errors import PhotokitError
from photokit.restore import degrade
from photokit.restore.batch import collect_sources, plan_outputs, run_batch
from photokit.restore.output import load_photo, output_path_for, save_photo
from photokit.restore.pipeline import EnhanceOptions, Enhancer, PhotoReport
from photokit.restore.priors import BaseGenerator, NoPeople, StaticPriors, StorePriors
from photokit.restore.project import AlphaProjection, SmallImageLoss
from photokit.stylegan2.losses import ReconstructionLoss
from photokit.stylegan2.network import build_tiny_generator


# -- 1. inpainting masks follow the prediction / target ------------------------------------------------
class _MeanAbsLpips(nn.Module):
    """Stands in for LPIPS (the same call signature) without any backbone."""

    def forward(self, a, b, normalize=False):
        return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)


@pytest.mark.parametrize("wrap", [False, True])
def test_a_cpu_mask_weights_a_loss_on_another_device(wrap):
    """'meta' stands for cuda/mps: a CPU mask times a tensor on another device fails unless moved."""
    pred = torch.zeros(1, 3, 8, 8, device="meta")
    target = torch.zeros(1, 3, 8, 8, device="meta")
    mask = degrade.inpainting(np.ones((8, 8), np.float32)).mask
    assert mask.device.type == "cpu"
    loss = SmallImageLoss(ReconstructionLoss(_MeanAbsLpips())) if wrap else ReconstructionLoss(None)
    value = loss(pred, target, weight=mask)
    assert value.device.type == "meta" and value.shape == (1,)


def test_projection_keeps_the_mask_on_the_targets_device_and_dtype():
    G = build_tiny_generator(resolution=16, channels=8, seed=0)
    anchors = torch.randn(3, G.w_dim)
    known = np.ones((16, 16), np.float32)
    known[4:10, 4:10] = 0
    degradation = degrade.inpainting(known)
    target = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 2 - 1
    projection = AlphaProjection(G, anchors, target, degradation, ReconstructionLoss(None), beta=0.02)
    mask = projection.degradation.mask
    assert mask.dtype == target.dtype and mask.device == target.device
    assert torch.equal(mask.float(), degradation.mask)  # the same mask, only moved
    assert np.isfinite(projection.step())


# -- 2. albums keep their structure under --out ------------------------------------------------------
def _jpeg(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)
    return path


def test_same_file_name_in_two_album_folders_gets_two_outputs(tmp_path):
    album = tmp_path / "Album"
    a, b = _jpeg(album / "2019" / "IMG_1.jpg"), _jpeg(album / "2020" / "IMG_1.jpg")
    single = _jpeg(tmp_path / "loose" / "scan.jpg")
    out = tmp_path / "out"
    targets = plan_outputs(collect_sources([album, single], out_dir=out), out, "_restored")
    assert targets[a.resolve()] == out / "2019" / "IMG_1_restored.jpg"
    assert targets[b.resolve()] == out / "2020" / "IMG_1_restored.jpg"
    assert targets[single.resolve()] == out / "scan_restored.jpg"  # a file given directly keeps the flat name


def test_no_two_photos_of_a_batch_share_an_output_and_no_original_is_a_target(tmp_path):
    first, second = tmp_path / "A", tmp_path / "B"
    paths = [_jpeg(first / "IMG_1.jpg"), _jpeg(second / "IMG_1.jpg")]
    # Both become x.png (formats photokit cannot write go to PNG), and with no suffix x.png is an original.
    for name in ("x.bmp", "x.gif"):
        Image.new("RGB", (8, 8)).save(first / name)
    paths.append(_jpeg(first / "x.png"))
    out = tmp_path / "out"
    for out_dir, suffix in ((out, "_restored"), (None, "")):
        sources = collect_sources([first, second], suffix=suffix, out_dir=out_dir)
        assert len(sources) == 5
        targets = list(plan_outputs(sources, out_dir, suffix).values())
        assert len(set(targets)) == len(targets) == 5
        assert not {t.resolve() for t in targets} & set(sources)
    again = plan_outputs(collect_sources([first, second], out_dir=out), out, "_restored")
    assert again == plan_outputs(collect_sources([first, second], out_dir=out), out, "_restored")  # resumable


class _WritingEnhancer:
    """Just enough of Enhancer for run_batch: writes a marker where it is told to."""

    def __init__(self, options):
        self.options = options

    def enhance(self, path, target=None):
        target = target or output_path_for(path, self.options.out_dir, self.options.suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(str(path))
        return PhotoReport(source=str(path), output=str(target))


def test_album_batch_writes_one_output_per_photo_under_its_folder(settings, tmp_path):
    from photokit.db import open_database

    album = tmp_path / "Album"
    a, b = _jpeg(album / "2019" / "IMG_1.jpg"), _jpeg(album / "2020" / "IMG_1.jpg")
    out = tmp_path / "out"
    db = open_database(settings)
    summary = run_batch(db, [album], _WritingEnhancer(EnhanceOptions(out_dir=out)))
    db.dispose()
    assert len(summary.done) == 2
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["2019/IMG_1_restored.jpg", "2020/IMG_1_restored.jpg"]
    assert (out / "2019" / "IMG_1_restored.jpg").read_text() == str(a.resolve())
    assert (out / "2020" / "IMG_1_restored.jpg").read_text() == str(b.resolve())


# -- 6. a gray photo written as one channel drops an RGB profile -------------------------------------
def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_gray_looking_rgb_photo_is_written_gray_without_its_rgb_profile(tmp_path, ext):
    y, x = np.mgrid[0:24, 0:32]
    gray = ((x + y) * 4).astype(np.uint8)
    source = tmp_path / f"scan{ext}"
    Image.fromarray(np.dstack([gray] * 3), "RGB").save(source, icc_profile=_srgb_profile())
    photo = load_photo(source)
    assert photo.gray and photo.icc_profile == _srgb_profile()
    out = Image.open(save_photo(photo, photo.rgb, None, tmp_path / f"out{ext}"))
    assert out.mode == "L"
    assert out.info.get("icc_profile") is None


def test_sixteen_bit_gray_png_drops_an_rgb_profile_but_colour_keeps_it(tmp_path):
    import cv2

    y, x = np.mgrid[0:24, 0:32]
    gray = ((x + y) * 1000).astype(np.uint16)
    source = tmp_path / "deep.png"
    cv2.imwrite(str(source), np.dstack([gray] * 3))
    photo = load_photo(source)
    assert photo.gray and photo.bit_depth == 16
    photo.icc_profile = _srgb_profile()
    out = Image.open(save_photo(photo, photo.rgb, None, tmp_path / "gray.png"))
    assert out.info.get("icc_profile") is None
    photo.gray = False
    out = Image.open(save_photo(photo, photo.rgb, None, tmp_path / "colour.png"))
    assert out.info.get("icc_profile") == _srgb_profile()


# -- 7. store priors: failures and the base fingerprint are computed once ------------------------------
def test_a_broken_prior_is_read_once_and_fails_the_same_way_for_every_face(settings, monkeypatch):
    import photokit.prior.storage as personal

    folder = personal.prior_dir(settings, 3)
    folder.mkdir(parents=True)
    (folder / personal.PRIOR_JSON).write_text("{not json")
    calls = []
    real = personal.load_personal_prior
    monkeypatch.setattr(personal, "load_personal_prior", lambda *a, **k: calls.append(a) or real(*a, **k))
    priors = StorePriors(settings, torch.device("cpu"))
    messages = []
    for _ in range(3):
        with pytest.raises(PhotokitError) as info:
            priors.personal(3)
        messages.append(str(info.value))
    assert len(calls) == 1
    assert len(set(messages)) == 1 and "corrupt" in messages[0] and "\n" not in messages[0]


def _store_tiny_prior(settings, person_id, G, fingerprint):
    from photokit.prior.adapters import FullDelta
    from photokit.prior.storage import FORMAT, prior_dir, save_prior

    anchors = torch.randn(2, G.w_dim)
    stored = FullDelta(G.synthesis).stored_tensors(torch.float16)
    meta = {
        "format": FORMAT,
        "person_id": person_id,
        "person_name": None,
        "base": {"name": "tiny", "fingerprint": fingerprint},
        "loss": {"kind": "mse"},
        "references": [{"index": i, "face_id": i} for i in range(2)],
        "tuning": {"kind": "full"},
    }
    save_prior(prior_dir(settings, person_id), anchors, stored, meta)


def test_store_priors_hash_the_base_generator_once_for_all_people(settings, monkeypatch):
    import photokit.stylegan2.state as checkpoints
    from photokit.store.catalog import catalog_entry
    from photokit.store.models import ModelStore
    from photokit.stylegan2 import generator_fingerprint, save_generator

    G = build_tiny_generator(resolution=16, channels=8, seed=2)
    path = ModelStore(settings).target_path(catalog_entry("ffhq-256"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_generator(G, path)
    fingerprint = generator_fingerprint(G)
    for person_id in (1, 2):
        _store_tiny_prior(settings, person_id, G, fingerprint)

    calls = []
    monkeypatch.setattr(checkpoints, "generator_fingerprint", lambda g: calls.append(1) or generator_fingerprint(g))
    priors = StorePriors(settings, torch.device("cpu"))
    assert priors.base().fingerprint == fingerprint  # loaded and hashed once
    calls.clear()
    loaded = [priors.personal(1), priors.personal(2), priors.personal(1)]
    assert all(p is not None and p.anchors.shape == (2, G.w_dim) for p in loaded)
    assert calls == []  # no person's prior hashes the base generator again
    assert priors.personal(5) is None  # no prior: no error


def test_load_personal_prior_uses_a_given_base_generators_fingerprint(settings, monkeypatch):
    import photokit.stylegan2.state as checkpoints
    from photokit.prior.storage import load_personal_prior
    from photokit.stylegan2 import generator_fingerprint

    G = build_tiny_generator(resolution=16, channels=8, seed=3)
    _store_tiny_prior(settings, 4, G, generator_fingerprint(G))
    base = BaseGenerator(G, "tiny")
    assert base.fingerprint  # computed once, here

    def no_rehash(g):
        raise AssertionError("the base generator was hashed again")

    monkeypatch.setattr(checkpoints, "generator_fingerprint", no_rehash)
    prior = load_personal_prior(settings, 4, "cpu", base_generator=base)
    assert prior.anchors.shape == (2, G.w_dim)
    wrong = BaseGenerator(G, "tiny", _fingerprint="0" * 64)
    with pytest.raises(PhotokitError, match="tuned on base generator"):
        load_personal_prior(settings, 4, "cpu", base_generator=wrong)


# -- 8. --scale range and message agree ----------------------------------------------------------------
def test_scale_range_message_matches_the_accepted_range():
    for bad in (0.2, 17):
        with pytest.raises(PhotokitError, match="0.25 to 16"):
            Enhancer(EnhanceOptions(scale=bad), StaticPriors(), NoPeople(), device="cpu")
    for good in (0.25, 0.5, 16):
        assert Enhancer(EnhanceOptions(scale=good), StaticPriors(), NoPeople(), device="cpu").options.scale == good
