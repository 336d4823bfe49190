"""Outputs keep what the input had: bit depth, alpha, grayscale, ICC profile, EXIF; never the original."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from photokit.errors import PhotokitError
from photokit.library.images import ImageReadError
from photokit.restore.output import load_photo, output_path_for, save_photo


def gradient(h=40, w=60):
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x / w, y / h, (x + y) / (w + h)]).astype(np.float32)


def test_icc_profile_and_exif_survive_a_jpeg(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[271], exif[274] = "Camera Maker", 3
    source = tmp_path / "in.jpg"
    Image.fromarray((gradient() * 255).astype(np.uint8)).save(source, icc_profile=icc, exif=exif.tobytes())
    photo = load_photo(source)
    target = save_photo(photo, photo.rgb, photo.alpha, output_path_for(source, tmp_path / "out"))
    out = Image.open(target)
    assert target.name == "in_restored.jpg"
    assert out.info.get("icc_profile") == icc
    assert out.getexif().get(271) == "Camera Maker" and out.getexif().get(274) == 1


def test_sixteen_bit_png_stays_sixteen_bit_with_its_profile(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pixels = (gradient() * 65535).astype(np.uint16)
    source = tmp_path / "deep.png"
    cv2.imwrite(str(source), pixels[:, :, ::-1])
    photo = load_photo(source)
    assert photo.bit_depth == 16 and photo.alpha is None and not photo.gray
    photo.icc_profile = icc
    target = save_photo(photo, photo.rgb, None, tmp_path / "deep_restored.png")
    back = cv2.imread(str(target), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[:, :, ::-1], pixels)  # no 8-bit round trip anywhere
    assert Image.open(target).info.get("icc_profile") == icc


def test_sixteen_bit_tiff_with_alpha(tmp_path):
    pixels = (np.dstack([gradient(), gradient()[:, :, :1]]) * 65535).astype(np.uint16)
    source = tmp_path / "deep.tif"
    cv2.imwrite(str(source), pixels[:, :, [2, 1, 0, 3]])
    photo = load_photo(source)
    assert photo.bit_depth == 16 and photo.alpha is not None
    target = save_photo(photo, photo.rgb, photo.alpha, tmp_path / "deep_restored.tif")
    back = cv2.imread(str(target), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape[2] == 4
    np.testing.assert_array_equal(back[:, :, [2, 1, 0, 3]], pixels)


def test_grayscale_stays_grayscale(tmp_path):
    source = tmp_path / "bw.png"
    Image.fromarray((gradient()[:, :, 0] * 255).astype(np.uint8), "L").save(source)
    photo = load_photo(source)
    assert photo.gray
    colourful = photo.rgb.copy()
    colourful[:, :, 0] = 1.0  # a colour face pasted into a black-and-white photo
    out = Image.open(save_photo(photo, colourful, None, tmp_path / "bw_restored.png"))
    assert out.mode == "L"


def test_rgb_scan_of_a_black_and_white_print_counts_as_gray(tmp_path):
    source = tmp_path / "scan.png"
    grey = (gradient()[:, :, 1] * 255).astype(np.uint8)
    Image.fromarray(np.dstack([grey] * 3)).save(source)
    assert load_photo(source).gray
    assert not load_photo(_save_colour(tmp_path)).gray


def _save_colour(tmp_path):
    path = tmp_path / "colour.png"
    Image.fromarray((gradient() * 255).astype(np.uint8)).save(path)
    return path


def test_original_is_never_overwritten(tmp_path):
    source = _save_colour(tmp_path)
    photo = load_photo(source)
    before = source.read_bytes()
    assert output_path_for(source, tmp_path, suffix="") != source
    with pytest.raises(PhotokitError):
        save_photo(photo, photo.rgb, None, source)
    assert source.read_bytes() == before


def test_corrupt_and_non_image_files_raise_one_line_errors(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(ImageReadError) as info:
        load_photo(text)
    assert "\n" not in str(info.value) and "notes.jpg" in str(info.value)


@pytest.mark.parametrize("kind", ["jpeg_rotated", "png_16bit_gray"])
def test_load_photo_opens_the_file_with_pillow_once(tmp_path, monkeypatch, kind):
    """Pixels, EXIF orientation and bit depth all come from one open of the file."""
    source = tmp_path / ("in.jpg" if kind == "jpeg_rotated" else "deep.png")
    if kind == "jpeg_rotated":
        exif = Image.Exif()
        exif[274] = 6  # rotated 90 degrees: the loaded photo is upright, so its sides swap
        Image.fromarray((gradient() * 255).astype(np.uint8)).save(source, exif=exif.tobytes())
    else:
        cv2.imwrite(str(source), (gradient()[:, :, 0] * 65535).astype(np.uint16))
    real_open, opened = Image.open, []

    def counting_open(*args, **kwargs):
        opened.append(args[0])
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    photo = load_photo(source)
    assert len(opened) == 1
    if kind == "jpeg_rotated":
        assert photo.rgb.shape[:2] == (60, 40) and photo.bit_depth == 8
    else:
        assert photo.rgb.shape[:2] == (40, 60) and photo.bit_depth == 16 and photo.gray
