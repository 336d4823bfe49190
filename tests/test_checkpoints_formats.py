"""Loading every checkpoint layout, refusing broken files with one clear line, and photokit's own format."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.errors import PhotokitError
from photokit.stylegan2 import (
    generator_fingerprint,
    load_generator,
    read_photokit_metadata,
    save_generator,
)
from photokit.stylegan2.network import build_tiny_generator
from photokit.stylegan2.ops import fir_filter
from tests.conftest import shared_path

FIXTURES = ("nvlabs", "rosinality")


def _manifests() -> dict:
    return json.loads(shared_path("fixtures", "stylegan2", "state_dict_manifests.json").read_text())


def _random_state(manifest: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the manifest's shapes (float16 keeps 1024 px files small); real FIR filters."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in manifest.items():
        if key.endswith("resample_filter"):
            state[key] = fir_filter()
        elif key.endswith(("blur.kernel", "upsample.kernel")):
            state[key] = fir_filter() * 4
        else:
            state[key] = torch.randn(shape, generator=gen, dtype=torch.float32).to(torch.float16)
    return state


def _expected_channels(layout: str, manifest: dict) -> dict[int, int]:
    if layout.startswith("nvlabs"):
        return {
            int(k.split(".")[1][1:]): shape[0]
            for k, shape in manifest.items()
            if k.startswith("synthesis.b") and k.endswith(".conv1.weight")
        }
    channels = {4: manifest["input.input"][1]}
    for key, shape in manifest.items():
        if key.startswith("convs.") and key.endswith(".conv.weight") and int(key.split(".")[1]) % 2 == 0:
            channels[2 ** (int(key.split(".")[1]) // 2 + 3)] = shape[1]
    return channels


def _write_layout(layout: str, manifest: dict, path) -> None:
    state = _random_state(manifest)
    if layout.startswith("nvlabs"):
        torch.save({"G_ema_state_dict": state, "init_kwargs": {"z_dim": 512, "w_dim": 512, "c_dim": 0}}, path)
    else:
        torch.save({"g_ema": state, "latent_avg": torch.randn(512)}, path)


@pytest.mark.parametrize(
    "layout",
    [
        "nvlabs_ffhq1024_channel_base32768",
        "nvlabs_ffhq256_channel_base16384",
        "rosinality_ffhq1024_config_f",
        "rosinality_ffhq256_cm2",
        "rosinality_size64_cm2_fullchannels",
    ],
)
def test_full_size_layouts_load(layout, tmp_path):
    manifest = _manifests()[layout]
    path = tmp_path / f"{layout}.pt"
    _write_layout(layout, manifest, path)
    G = load_generator(path)
    channels = _expected_channels(layout, manifest)
    resolution = max(channels)
    assert G.resolution == resolution
    assert G.num_ws == {1024: 18, 256: 14, 64: 10}[resolution]
    assert G.config.channels == channels
    assert (G.w_dim, G.z_dim, G.config.mapping_layers) == (512, 512, 8)
    # Every tensor of the file landed somewhere: the generator's parameter count matches the manifest's
    # (minus the FIR filters, which photokit keeps as a fixed buffer).
    n_file = sum(math.prod(s) for k, s in manifest.items() if not k.endswith(("resample_filter", "kernel")))
    n_model = sum(t.numel() for t in G.state_dict().values())
    assert n_model == n_file + (512 if layout.startswith("rosinality") else 0)  # + latent_avg


def test_full_size_256_renders(tmp_path):
    layout = "nvlabs_ffhq256_channel_base16384"
    path = tmp_path / "g.pt"
    _write_layout(layout, _manifests()[layout], path)
    G = load_generator(path)
    with torch.no_grad():
        img = G.synthesis(G.mapping(torch.randn(1, 512)), noise_mode="const")
    assert img.shape == (1, 3, 256, 256) and torch.isfinite(img).all()


# ---- broken files ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nvlabs_state():
    return torch.load(shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt"), weights_only=True)


def _one_line_error(path, *fragments):
    with pytest.raises(PhotokitError) as info:
        load_generator(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_truncated_file(tmp_path):
    src = shared_path("fixtures", "stylegan2", "rosinality_tiny64.pt")
    path = tmp_path / "truncated.pt"
    path.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    _one_line_error(path, "truncated.pt", "corrupt or truncated")


def test_corrupted_file(tmp_path):
    data = bytearray(shared_path("fixtures", "stylegan2", "rosinality_tiny64.pt").read_bytes())
    data[-200:] = b"\x00" * 200  # wipes the zip's central directory
    path = tmp_path / "corrupt.pt"
    path.write_bytes(bytes(data))
    _one_line_error(path, "corrupt.pt", "corrupt or truncated")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "photo.jpg.pt"
    path.write_bytes(b"\xff\xd8\xff\xe0 not a model at all")
    _one_line_error(path, "photo.jpg.pt", "not a generator file")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _one_line_error(empty, "empty")
    _one_line_error(tmp_path / "absent.pt", "not found")


def test_missing_key(nvlabs_state, tmp_path):
    sd = dict(nvlabs_state["G_ema_state_dict"])
    del sd["synthesis.b32.conv0.affine.weight"]
    path = tmp_path / "missing.pt"
    torch.save({**nvlabs_state, "G_ema_state_dict": sd}, path)
    _one_line_error(path, "missing.pt", "synthesis.b32.conv0.affine.weight", "missing")


def test_wrong_shape(nvlabs_state, tmp_path):
    sd = dict(nvlabs_state["G_ema_state_dict"])
    sd["synthesis.b16.conv1.bias"] = torch.zeros(65)
    path = tmp_path / "shape.pt"
    torch.save({**nvlabs_state, "G_ema_state_dict": sd}, path)
    _one_line_error(path, "synthesis.b16.conv1.bias", "(65,)", "(64,)")


def test_nan_weights(nvlabs_state, tmp_path):
    sd = dict(nvlabs_state["G_ema_state_dict"])
    sd["mapping.fc3.weight"] = sd["mapping.fc3.weight"].clone()
    sd["mapping.fc3.weight"][0, 0] = float("nan")
    path = tmp_path / "nan.pt"
    torch.save({**nvlabs_state, "G_ema_state_dict": sd}, path)
    _one_line_error(path, "mapping.fc3.weight", "NaN")


def test_rosinality_missing_noise_and_wrong_filter(tmp_path):
    ckpt = torch.load(shared_path("fixtures", "stylegan2", "rosinality_tiny64.pt"), weights_only=True)
    sd = dict(ckpt["g_ema"])
    del sd["noises.noise_4"]
    torch.save({**ckpt, "g_ema": sd}, tmp_path / "a.pt")
    _one_line_error(tmp_path / "a.pt", "noises.noise_4")
    sd = dict(ckpt["g_ema"])
    sd["convs.2.conv.blur.kernel"] = torch.ones(4, 4)
    torch.save({**ckpt, "g_ema": sd}, tmp_path / "b.pt")
    _one_line_error(tmp_path / "b.pt", "convs.2.conv.blur.kernel", "[1,3,3,1]")


def test_unknown_dict(tmp_path):
    torch.save({"state_dict": {"conv.weight": torch.zeros(3)}}, tmp_path / "other.pt")
    _one_line_error(tmp_path / "other.pt", "not a StyleGAN2 checkpoint")


def test_cli_reports_one_line_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04garbage")
    result = CliRunner().invoke(app, ["models", "convert", str(bad), str(tmp_path / "out.safetensors")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out.safetensors").exists()


# ---- photokit format ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_conversion_round_trip_is_bit_exact(name, tmp_path):
    src = shared_path("fixtures", "stylegan2", f"{name}_tiny64.pt")
    golden = np.load(shared_path("fixtures", "stylegan2", f"{name}_tiny64_golden.npz"))
    out = tmp_path / f"{name}.safetensors"
    result = CliRunner().invoke(app, ["models", "convert", str(src), str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["source"] == name and info["resolution"] == 64 and info["num_ws"] == 10
    original, converted = load_generator(src), load_generator(out)
    assert converted.config == original.config
    assert generator_fingerprint(converted) == generator_fingerprint(original) == info["fingerprint"]
    z = torch.from_numpy(golden["z"])
    with torch.no_grad():
        for psi in (1.0, 0.7):
            ws_a, ws_b = original.mapping(z, truncation_psi=psi), converted.mapping(z, truncation_psi=psi)
            assert torch.equal(ws_a, ws_b)
            for mode in ("const", "none"):
                assert torch.equal(
                    original.synthesis(ws_a, noise_mode=mode), converted.synthesis(ws_b, noise_mode=mode)
                )
    assert read_photokit_metadata(out)["converted_from"] == src.name


def test_photokit_format_checks_its_metadata(tmp_path):
    from safetensors.torch import load_file, save_file

    G = build_tiny_generator(resolution=16, channels=8)
    path = save_generator(G, tmp_path / "tiny.safetensors")
    reloaded = load_generator(path)
    assert generator_fingerprint(reloaded) == generator_fingerprint(G)
    tensors, meta = load_file(str(path)), read_photokit_metadata(path)

    save_file(tensors, str(tmp_path / "nometa.safetensors"))
    _one_line_error(tmp_path / "nometa.safetensors", "not a photokit generator")

    config = json.loads(meta["config"])
    config["resolution"] = 32  # config and tensors disagree
    config["channels"]["32"] = 8
    save_file(tensors, str(tmp_path / "lying.safetensors"), metadata={**meta, "config": json.dumps(config)})
    _one_line_error(tmp_path / "lying.safetensors", "missing tensor")

    save_file(tensors, str(tmp_path / "future.safetensors"), metadata={**meta, "format_version": "99"})
    _one_line_error(tmp_path / "future.safetensors", "version")

    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) - 1000])
    _one_line_error(tmp_path / "cut.safetensors", "corrupt or truncated")

    flipped = bytearray(data)
    flipped[-3] ^= 0x40  # one bit of one weight: the file still parses
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    _one_line_error(tmp_path / "flipped.safetensors", "fingerprint")


def test_fingerprint_tracks_weights():
    a, b = build_tiny_generator(seed=0), build_tiny_generator(seed=0)
    assert generator_fingerprint(a) == generator_fingerprint(b)
    with torch.no_grad():
        b.synthesis.b8.conv1.bias[0] += 1e-3
    assert generator_fingerprint(a) != generator_fingerprint(b)


def test_load_generator_device_option(tmp_path):
    path = save_generator(build_tiny_generator(resolution=8, channels=4), tmp_path / "g.safetensors")
    G = load_generator(path, device="auto")
    assert not any(p.requires_grad for p in G.parameters()) and not G.training
    assert G.w_avg.device.type in ("cpu", "cuda", "mps")
    with pytest.raises(PhotokitError):
        load_generator(path, device="tpu")


def test_cli_sample_writes_png(tmp_path):
    path = save_generator(build_tiny_generator(resolution=16, channels=8), tmp_path / "g.safetensors")
    out = tmp_path / "samples.png"
    result = CliRunner().invoke(
        app, ["models", "sample", "--generator", str(path), "--out", str(out), "--count", "3", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    from PIL import Image

    image = np.asarray(Image.open(out))
    assert image.shape == (32, 32, 3) and image.std() > 5


def test_cli_sample_without_generator_says_how_to_install(tmp_path):
    result = CliRunner().invoke(app, ["models", "sample", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "photokit models install ffhq-256" in result.output
    assert not (tmp_path / "x.png").exists()


def test_copy_of_fixture_loads_regardless_of_name(tmp_path):
    """Formats are detected from content, not the file name."""
    src = shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt")
    shutil.copy(src, tmp_path / "weights.bin")
    assert load_generator(tmp_path / "weights.bin").config.source == "nvlabs"


def test_rosinality_training_checkpoint_with_args_loads(tmp_path):
    """rosinality's train.py saves g, d, optimisers and its argparse options next to g_ema."""
    import argparse

    ckpt = torch.load(shared_path("fixtures", "stylegan2", "rosinality_tiny64.pt"), weights_only=True)
    path = tmp_path / "550000.pt"
    torch.save(
        {
            "g": ckpt["g_ema"],
            "d": {"convs.0.0.weight": torch.zeros(2)},
            "g_ema": ckpt["g_ema"],
            "latent_avg": ckpt["latent_avg"],
            "args": argparse.Namespace(size=64, n_mlp=8),
            "ada_aug_p": 0.0,
        },
        path,
    )
    G = load_generator(path)
    assert G.config.source == "rosinality" and torch.equal(G.w_avg, ckpt["latent_avg"])


def test_inconsistent_shapes_are_one_line_errors(nvlabs_state, tmp_path):
    sd = dict(nvlabs_state["G_ema_state_dict"])
    sd["synthesis.b8.conv1.weight"] = torch.zeros(())  # a scalar where a 4-D weight belongs
    torch.save({**nvlabs_state, "G_ema_state_dict": sd}, tmp_path / "scalar.pt")
    _one_line_error(tmp_path / "scalar.pt", "scalar.pt")
    sd = dict(nvlabs_state["G_ema_state_dict"])
    sd["synthesis.b48.torgb.bias"] = torch.zeros(3)  # a block that is not a power of two
    torch.save({**nvlabs_state, "G_ema_state_dict": sd}, tmp_path / "b48.pt")
    _one_line_error(tmp_path / "b48.pt", "b48.pt", "power of two")


@pytest.mark.parametrize(
    "content",
    [
        {1: torch.zeros(1), "mapping.fc0.weight": torch.zeros(3, 3)},  # top-level state dict
        {"G_ema_state_dict": {1: torch.zeros(1), "synthesis.b4.const": torch.zeros(8, 4, 4)}},  # NVIDIA
        {"g_ema": {("style", 1): torch.zeros(1), "input.input": torch.zeros(1, 8, 4, 4)}},  # rosinality
    ],
    ids=["top-level", "nvlabs", "rosinality"],
)
def test_non_string_keys_are_a_one_line_checkpoint_error(tmp_path, content):
    from photokit.stylegan2 import CheckpointError, read_generator

    path = tmp_path / "odd.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match="odd.pt") as info:
        read_generator(path)
    assert "\n" not in str(info.value)


def test_cli_sample_refuses_to_overwrite_unless_forced(tmp_path):
    path = save_generator(build_tiny_generator(resolution=16, channels=8), tmp_path / "g.safetensors")
    out = tmp_path / "samples.png"
    out.write_bytes(b"my own picture")
    args = ["models", "sample", "--generator", str(path), "--out", str(out), "--count", "1", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "already exists" in result.stderr and "--force" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"my own picture"
    result = CliRunner().invoke(app, args + ["--force"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")
