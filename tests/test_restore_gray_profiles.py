"""A photo written as one gray channel drops an RGB colour profile; a colour one keeps it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageCms

from photokit.restore.output import load_photo, save_photo


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
