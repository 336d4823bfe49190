"""photokit.library.images: formats by content, full decodes, EXIF orientation and metadata."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from photokit.library import images
from photokit.library.images import ImageReadError, open_image, probe_image, read_rgb, sniff_format

PIL_SAVE_FORMAT = {
    "jpeg": "JPEG",
    "png": "PNG",
    "gif": "GIF",
    "webp": "WEBP",
    "tiff": "TIFF",
    "bmp": "BMP",
    "heic": "HEIF",
}


def gradient(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An RGB test picture whose rows and columns are distinguishable (so rotations are visible)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), np.full_like(x, int(rng.integers(0, 255)))],
        axis=-1,
    )
    return rgb.astype(np.uint8)


def write_image(path, fmt: str, width: int = 64, height: int = 48, seed: int = 0, **save_args):
    Image.fromarray(gradient(width, height, seed)).save(path, format=PIL_SAVE_FORMAT[fmt], **save_args)
    return path


def exif_block(
    orientation: int | None = None, taken: str | None = None, make: str | None = None, model: str | None = None
) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[274] = orientation
    if make is not None:
        exif[271] = make
    if model is not None:
        exif[272] = model
    if taken is not None:
        exif.get_ifd(0x8769)[36867] = taken
    return exif


FORMATS = ["jpeg", "png", "gif", "webp", "tiff", "bmp"] + (["heic"] if images.HEIC_AVAILABLE else [])


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_supported_format_is_recognised_by_content_without_extension(tmp_path, fmt):
    path = write_image(tmp_path / "photo_without_extension", fmt, width=40, height=30)
    assert sniff_format(path) == fmt
    info = probe_image(path)
    assert (info.format, info.width, info.height) == (fmt, 40, 30)
    rgb = read_rgb(path)
    assert rgb.shape == (30, 40, 3) and rgb.dtype == np.uint8


def test_heic_support_matches_the_optional_extra():
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        assert not images.HEIC_AVAILABLE
    else:
        assert images.HEIC_AVAILABLE


def test_extension_is_ignored_png_named_jpg(tmp_path):
    path = write_image(tmp_path / "really_a_png.jpg", "png")
    assert sniff_format(path) == "png"
    assert probe_image(path).format == "png"


def test_text_file_named_png_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("BMW service notes, not a picture\n")
    assert sniff_format(path) is None
    with pytest.raises(ImageReadError) as err:
        open_image(path)
    assert err.value.reason == "not_image"
    assert "\n" not in str(err.value) and "notes.png" in str(err.value)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
@pytest.mark.parametrize("fraction", [0.3, 0.7, 0.97])
def test_truncated_images_are_detected_by_both_readers(tmp_path, fmt, fraction):
    full = write_image(tmp_path / f"full.{fmt}", fmt, width=256, height=192)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[: int(len(data) * fraction)])
    for reader in (probe_image, open_image):
        with pytest.raises(ImageReadError) as err:
            reader(cut)
        assert err.value.reason == "truncated", (reader.__name__, str(err.value))


def test_empty_missing_corrupt_reasons(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)  # JPEG magic, garbage body
    cases = {empty: "empty", tmp_path / "nope.jpg": "missing", corrupt: "corrupt"}
    for path, reason in cases.items():
        with pytest.raises(ImageReadError) as err:
            probe_image(path)
        assert err.value.reason == reason, str(err.value)
        with pytest.raises(ImageReadError):
            read_rgb(path)


@pytest.mark.parametrize("orientation,rotated", [(1, False), (3, False), (6, True), (8, True)])
def test_exif_orientation_gives_upright_dimensions_and_pixels(tmp_path, orientation, rotated):
    path = write_image(
        tmp_path / "cam.jpg", "jpeg", width=80, height=40, quality=95, exif=exif_block(orientation=orientation)
    )
    info = probe_image(path)
    assert info.orientation == orientation
    assert (info.width, info.height) == ((40, 80) if rotated else (80, 40))
    upright = read_rgb(path)
    assert upright.shape[:2] == (info.height, info.width)
    stored = np.asarray(Image.open(path).convert("RGB"))
    expected = np.asarray(
        Image.fromarray(stored).transpose(
            {
                1: Image.Transpose.ROTATE_180,
                3: Image.Transpose.ROTATE_180,
                6: Image.Transpose.ROTATE_270,
                8: Image.Transpose.ROTATE_90,
            }[orientation]
        )
    )
    if orientation == 1:
        expected = stored
    assert np.array_equal(upright, expected)


def test_exif_date_and_camera_are_read(tmp_path):
    path = write_image(
        tmp_path / "cam.jpg",
        "jpeg",
        exif=exif_block(taken="2003:07:14 18:05:09", make="NIKON CORPORATION\x00", model=" E4500 "),
    )
    info = probe_image(path)
    assert info.taken_at == datetime(2003, 7, 14, 18, 5, 9)
    assert (info.camera_make, info.camera_model) == ("NIKON CORPORATION", "E4500")


def test_photo_without_exif_has_no_metadata(tmp_path):
    info = probe_image(write_image(tmp_path / "plain.png", "png"))
    assert (info.orientation, info.taken_at, info.camera_make, info.camera_model) == (None, None, None, None)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2019:12:31 23:59:58", datetime(2019, 12, 31, 23, 59, 58)),
        ("2019-12-31 23:59:58.123", datetime(2019, 12, 31, 23, 59, 58)),
        (b"2019:12:31 23:59:58\x00", datetime(2019, 12, 31, 23, 59, 58)),
        ("0000:00:00 00:00:00", None),
        ("    ", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_exif_datetime(value, expected):
    assert images.parse_exif_datetime(value) == expected


def test_read_rgb_flattens_alpha_and_16_bit(tmp_path):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :6, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    rgb = read_rgb(tmp_path / "alpha.png")
    assert rgb.shape == (10, 12, 3)
    assert tuple(rgb[0, 0]) == (200, 0, 0) and tuple(rgb[0, 11]) == (255, 255, 255)

    deep = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 250
    Image.fromarray(deep).save(tmp_path / "deep.png")
    grey = read_rgb(tmp_path / "deep.png")
    assert grey.dtype == np.uint8 and grey.shape == (16, 16, 3)
    assert grey[-1, -1, 0] > 200 and grey[0, 0, 0] == 0
