"""Reduced-size decoding for face analysis (issue 14): right sizes, upright, errors, same faces."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from photokit.library.images import ImageReadError, read_rgb
from photokit.library.pixels import PhotoPixels
from tests.conftest import shared_path


def _gradient(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


def test_jpeg_decodes_at_the_smallest_size_that_is_large_enough(tmp_path):
    path = tmp_path / "p.jpg"
    _gradient(2000, 1500).save(path, quality=90)
    pixels = PhotoPixels.open(path)
    assert pixels.size == (2000, 1500)
    rgb, scale = pixels.at_least(400)
    assert rgb.shape == (375, 500, 3) and scale == pytest.approx(0.25)
    rgb, scale = pixels.at_least(1001)
    assert rgb.shape == (1500, 2000, 3) and scale == 1.0
    reduced = pixels.at_least(900)[0].astype(float)
    full = read_rgb(path)[::2, ::2].astype(float)  # a 1/2 decode is close to every other full pixel
    assert np.abs(reduced[:-1, :-1] - full[:-1, :-1]).mean() < 8


def test_exif_rotation_applies_to_reduced_decodes(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[274] = 6  # rotate 90 degrees clockwise to view
    _gradient(1600, 800).save(path, quality=90, exif=exif)
    pixels = PhotoPixels.open(path)
    assert pixels.size == (800, 1600)
    rgb, scale = pixels.at_least(400)
    assert rgb.shape == (400, 200, 3) and scale == pytest.approx(0.25)
    assert read_rgb(path).shape == (1600, 800, 3)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_reduced_decodes_hold_the_upright_pixels_of_the_full_decode(tmp_path, orientation):
    path = tmp_path / "oriented.jpg"
    exif = Image.Exif()
    exif[274] = orientation
    _gradient(1600, 800).save(path, quality=95, exif=exif)
    full = read_rgb(path).astype(float)  # upright by Pillow's exif_transpose
    pixels = PhotoPixels.open(path)
    reduced = pixels.at_least(700)[0]
    assert reduced.shape[:2] == (full.shape[0] // 2, full.shape[1] // 2) and reduced.flags.c_contiguous
    assert np.abs(reduced.astype(float) - full[::2, ::2]).mean() < 8  # a 1/2 decode ~ every other pixel
    assert np.array_equal(pixels.at_least(1600)[0], read_rgb(path))  # full size: the very same pixels


def test_other_formats_decode_at_full_size(tmp_path):
    path = tmp_path / "p.png"
    _gradient(640, 480).save(path)
    rgb, scale = PhotoPixels.open(path).at_least(100)
    assert rgb.shape == (480, 640, 3) and scale == 1.0


def test_truncated_jpeg_fails_at_reduced_size_too(tmp_path):
    path = tmp_path / "cut.jpg"
    _gradient(1600, 1200).save(path, quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    pixels = PhotoPixels.open(path)
    with pytest.raises(ImageReadError) as info:
        pixels.at_least(200)
    assert info.value.reason == "truncated"


def test_reduced_decoding_finds_the_same_faces_as_full_decode(tmp_path):
    from photokit.faces.analyze import FaceAnalyzer, FaceConfig
    from photokit.faces.quality import box_iou

    source = Image.open(shared_path("data", "faces", "face_recognition", "two_people.jpg")).convert("RGB")
    big = source.resize((source.width * 3, source.height * 3), Image.LANCZOS)
    path = tmp_path / "big.jpg"
    big.save(path, quality=92)
    analyzer = FaceAnalyzer(FaceConfig(max_side=800), device="cpu")
    full = analyzer.analyze(read_rgb(path))
    reduced = analyzer.analyze(PhotoPixels.open(path))
    assert len(full) == len(reduced) == 2
    for face in full:
        twin = max(reduced, key=lambda r: box_iou(face.box, r.box))
        assert box_iou(face.box, twin.box) > 0.8  # MTCNN boxes move a few px with resampling
        assert np.linalg.norm(face.embedding - twin.embedding) < 0.1  # dlib's same-person threshold is 0.6
        assert np.abs(face.landmarks68 - twin.landmarks68).mean() < 0.02 * face.size_px
        assert twin.alignment.side_px == pytest.approx(face.alignment.side_px, rel=0.03)


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_region_holds_the_pixels_of_the_whole_decode_around_the_box(tmp_path, orientation):
    path = tmp_path / "region.jpg"
    exif = Image.Exif()
    exif[274] = orientation
    _gradient(1600, 1200).save(path, quality=95, exif=exif)
    box = np.array([500.0, 300.0, 700.5, 541.0])  # photo pixels (upright)
    pixels, origin, scale = PhotoPixels.open(path).region(700, box, margin=50)
    whole, whole_scale = PhotoPixels.open(path).at_least(700)
    assert scale == whole_scale == pytest.approx(0.5)
    x0, y0 = (int(v) for v in origin)
    assert (x0, y0) == (225, 125)  # floor((500 - 50) * 0.5), floor((300 - 50) * 0.5)
    assert pixels.shape == (296 - 125, 376 - 225, 3)  # to ceil((541 + 50) * 0.5), ceil((700.5 + 50) * 0.5)
    assert np.array_equal(pixels, whole[y0 : y0 + pixels.shape[0], x0 : x0 + pixels.shape[1]])


def test_a_region_outside_the_photo_is_the_whole_decode(tmp_path):
    path = tmp_path / "p.jpg"
    _gradient(1600, 1200).save(path, quality=90)
    pixels, origin, _ = PhotoPixels.open(path).region(300, np.array([5000.0, 10.0, 5100.0, 110.0]), margin=10)
    assert pixels.shape == (300, 400, 3) and not origin.any()


def test_a_grey_jpeg_gives_rgb_regions_and_decodes(tmp_path):
    path = tmp_path / "grey.jpg"
    _gradient(1200, 900).convert("L").save(path, quality=90)
    pixels = PhotoPixels.open(path)
    region, origin, scale = pixels.region(1200, np.array([100.0, 100.0, 300.0, 300.0]), margin=0)
    assert region.shape == (200, 200, 3) and scale == 1.0 and tuple(origin) == (100, 100)
    assert np.array_equal(region, read_rgb(path)[100:300, 100:300])
    assert pixels.at_least(300)[0].shape == (225, 300, 3)
