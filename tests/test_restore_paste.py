"""Paste-back geometry and blending, and the degradation helpers, on synthetic images."""

from __future__ import annotations

import numpy as np
import torch

from photokit.faces.align import FaceAlignment, align_face
from photokit.restore import degrade, paste


def smooth_photo(h=200, w=300, seed=0):
    rng = np.random.default_rng(seed)
    import cv2

    noise = rng.random((h // 10, w // 10, 3)).astype(np.float32)
    return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def square(cx, cy, half, angle=0.0):
    c, s = np.cos(angle) * half, np.sin(angle) * half
    return FaceAlignment((cx, cy), (c, s), (-s, c))


def test_crop_mask_is_one_inside_zero_outside_and_scales_with_the_crop():
    small, large = paste.crop_mask(64), paste.crop_mask(256)
    assert small[32, 32] == 1 and large[128, 128] == 1
    assert small[0, 0] == 0 and large[0, 0] == 0 and large[128, 2] == 0
    # the same fraction of the crop is feathered at any size
    assert abs(((small > 0) & (small < 1)).mean() - ((large > 0) & (large < 1)).mean()) < 0.02


def test_crop_warped_back_lands_where_it_came_from():
    photo = smooth_photo()
    alignment = square(150, 100, 40, angle=0.3)
    for scale in (1.0, 2.0):
        crop = align_face(photo, alignment, 128)
        back = paste.warp_face(crop, alignment, paste.output_shape(photo.shape[:2], scale), scale)
        reference = paste.lanczos_upscale(photo, scale)
        inner = paste.face_weight(alignment, back.shape[:2], scale) == 1
        assert inner.sum() > 1000
        assert np.abs(back[inner] - reference[inner]).mean() < 0.02


def test_overlapping_faces_larger_on_top_and_background_exact_elsewhere():
    photo = smooth_photo()
    small, large = square(120, 100, 30), square(160, 100, 50)
    red = np.zeros((64, 64, 3), np.float32)
    red[..., 0] = 1
    blue = np.zeros((64, 64, 3), np.float32)
    blue[..., 2] = 1
    image = photo.copy()
    weights = []
    for alignment, crop in sorted([(large, blue), (small, red)], key=lambda p: p[0].side_px):
        image, w = paste.paste_super_resolution(image, crop, alignment, 1.0)
        weights.append(w)
    w_small, w_large = weights
    on_top = (w_large == 1) & (w_small > 0)
    assert on_top.sum() > 100
    np.testing.assert_allclose(image[on_top], np.tile([0, 0, 1], (on_top.sum(), 1)), atol=1e-3)
    outside = (w_small == 0) & (w_large == 0)
    np.testing.assert_array_equal(image[outside], photo[outside])


def test_inpainting_paste_changes_only_the_dilated_hole():
    photo = smooth_photo()
    alignment = square(150, 100, 60)
    known = np.ones(photo.shape[:2], np.float32)
    known[90:110, 140:160] = 0
    crop = np.full((128, 128, 3), 0.5, np.float32)
    image, replaced = paste.paste_inpainting(photo, crop, alignment, known, 1.0)
    changed = np.abs(image - photo).max(axis=2) > 0
    assert changed[known == 0].mean() > 0.9
    assert not changed[replaced == 0].any()
    assert replaced.sum() < 2.5 * (known == 0).sum()


def test_super_resolution_degradation_uses_the_faces_real_size():
    d = degrade.super_resolution(256, 61.7)
    assert d.size == 62 and d.task == "super_resolution"
    assert degrade.super_resolution(256, 900).size == 256  # never an upsampling
    out = d(torch.zeros(1, 3, 256, 256))
    assert out.shape == (1, 3, 62, 62)


def test_inpainting_degradation_masks_and_binarises():
    mask = np.ones((32, 32), np.float32)
    mask[:, :10] = 0.3
    d = degrade.inpainting(mask)
    images = torch.ones(1, 3, 32, 32)
    out = d(images)
    assert float(out[..., :10].abs().max()) == 0 and float(out[..., 10:].min()) == 1


def test_low_frequency_match_fixes_colour_cast_but_keeps_detail():
    d = degrade.super_resolution(64, 16)
    detail = torch.rand(1, 3, 64, 64) * 0.4 - 0.2
    restored = detail + torch.tensor([0.5, 0.0, -0.5]).view(1, 3, 1, 1)  # a strong colour cast
    observed = d(detail)
    matched = degrade.match_low_frequencies(restored, observed, d)
    cast_before = (d(restored) - observed).mean(dim=(2, 3)).abs().max()
    cast_after = (d(matched) - observed).mean(dim=(2, 3)).abs().max()
    assert float(cast_after) < 0.05 * float(cast_before)
    high = lambda x: x - torch.nn.functional.avg_pool2d(x, 5, 1, 2, count_include_pad=False)  # noqa: E731
    torch.testing.assert_close(high(matched)[..., 8:-8, 8:-8], high(restored)[..., 8:-8, 8:-8], atol=0.02, rtol=0)


def test_gray_degradation_ignores_colour():
    d = degrade.Degradation(size=8, gray=True)
    red, grey = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1
    grey[:] = 0.299
    torch.testing.assert_close(d(red), d(grey))
