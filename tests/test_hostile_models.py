"""Hostile model files and photos: impossible generator metadata, a random-weight generator installed as a
face model, a photo too large for its scale (issue 16, items 10 and 13)."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.errors import PhotokitError
from photokit.stylegan2 import load_generator, save_generator
from photokit.stylegan2.network import build_tiny_generator
from photokit.stylegan2.photokit_format import read_photokit_metadata

runner = CliRunner()


@pytest.mark.parametrize(("key", "value"), [("z_dim", 0), ("w_dim", -4), ("mapping_layers", 0), ("z_dim", 1.5)])
def test_impossible_generator_metadata_is_refused_in_one_line(tmp_path, key, value):
    path = tmp_path / "g.safetensors"
    save_generator(build_tiny_generator(), path)
    meta = read_photokit_metadata(path)
    config = json.loads(meta["config"])
    config[key] = value
    meta["config"] = json.dumps(config)
    save_file(load_file(str(path)), str(path), metadata={k: str(v) for k, v in meta.items()})
    with pytest.raises(PhotokitError, match=key):
        load_generator(path)
    for command in (
        ["models", "install", "ffhq-256", "--from", str(path)],
        ["models", "convert", str(path), str(tmp_path / "out.safetensors")],
        ["models", "sample", "--generator", str(path), "--out", str(tmp_path / "s.png")],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (command, result.output)
        assert result.stderr.startswith("error: ") and key in result.stderr, result.stderr


def test_installing_a_random_weight_generator_warns(tmp_path):
    path = tmp_path / "tiny256.safetensors"
    save_generator(build_tiny_generator(resolution=256), path)
    result = runner.invoke(app, ["models", "install", "ffhq-256", "--from", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: ffhq-256 was made by photokit's random-weight builder" in result.stderr
    doc = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    entry = next(m for m in (doc if isinstance(doc, list) else doc["models"]) if m["name"] == "ffhq-256")
    assert entry["random_weights"] is True


def test_a_photo_too_large_for_its_scale_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from photokit.restore import options, pipeline
    from photokit.restore.options import EnhanceOptions
    from photokit.restore.pipeline import Enhancer
    from photokit.restore.priors import NoPeople, StaticPriors

    photo = tmp_path / "big.png"
    Image.fromarray(np.zeros((120, 160, 3), np.uint8)).save(photo)
    monkeypatch.setattr(options, "MAX_OUTPUT_PIXELS", 160 * 120 * 3)  # 2x is 4x the pixels: over the limit

    def no_decoding(path):
        raise AssertionError("the photo was decoded before its cost was checked")

    monkeypatch.setattr(pipeline, "load_photo", no_decoding)
    enhancer = Enhancer(EnhanceOptions(scale=2), StaticPriors(), NoPeople(), device="cpu")
    with pytest.raises(PhotokitError, match="320x240 px"):
        enhancer.render(photo)


def test_a_photo_with_broken_exif_is_read_by_enhance_as_scan_reads_it(tmp_path):
    import numpy as np
    from PIL import Image

    from photokit.library.images import probe_image
    from photokit.restore.output import load_photo

    path = tmp_path / "broken_exif.jpg"
    Image.fromarray(np.full((20, 30, 3), 120, np.uint8)).save(path, exif=b"Exif\x00\x00" + bytes(range(256)) * 2)
    info = probe_image(path)  # scan accepts it: EXIF is best effort
    photo = load_photo(path)  # and so does enhance
    assert (info.height, info.width) == photo.shape == (20, 30)
    assert photo.exif is None  # too damaged to write back into the output


def test_a_photo_with_damaged_exif_tags_is_scanned_without_python_warnings(tmp_path):
    """Pillow warns once per damaged EXIF tag; those warnings reached the user as raw Python output."""
    import os
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from tests.conftest import ROOT

    album = tmp_path / "album"
    album.mkdir()
    exif = Image.Exif()
    exif.update({0x010F: "Camera maker", 0x0110: "Model", 0x0132: "2001:02:03 04:05:06", 0x0112: 99})
    raw = bytearray(exif.tobytes())
    raw[20:40] = b"\xff" * 20  # tag entries that point past the end of the block
    Image.fromarray(np.full((20, 30, 3), 120, np.uint8)).save(album / "damaged.jpg", exif=bytes(raw))
    env = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "default"}
    result = subprocess.run(
        [sys.executable, "-m", "photokit", "scan", "--no-faces", str(album)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "1 new" in result.stdout + result.stderr
    assert "Warning" not in result.stderr, result.stderr
