"""Reading any StyleGAN2 generator file, whatever its format (detected from content, never the name):
photokit safetensors, rosinality or NVIDIA ``.pt`` state dicts (``torch.load(weights_only=True)``),
and NVIDIA network pickles through the restricted unpickler. The architecture is inferred from tensor
shapes and every tensor is checked; anything inconsistent is a one-line ``CheckpointError``."""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from photokit.errors import PhotokitError
from photokit.store.hashing import file_sha256
from photokit.stylegan2.base import is_test_generator
from photokit.stylegan2.network import Generator
from photokit.stylegan2.nvidia_pickle import load_network_pickle
from photokit.stylegan2.nvidia_state_dict import from_nvlabs_state_dict
from photokit.stylegan2.photokit_format import load_photokit_file, save_generator
from photokit.stylegan2.rosinality import from_rosinality_state_dict
from photokit.stylegan2.state import CheckpointError, generator_fingerprint, short_error

_ZIP_MAGIC = b"PK\x03\x04"
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch.save's pre-1.6 format


def _load_torch_file(path: Path) -> Generator:
    try:
        # rosinality's training checkpoints also hold their argparse options: plain attribute data.
        allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
        with allow([argparse.Namespace]) if allow else contextlib.nullcontext():
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {path.name}: it holds objects other than tensors and containers ({short_error(exc)})"
        ) from None
    except Exception as exc:
        raise CheckpointError(f"{path.name}: corrupt or truncated PyTorch file ({short_error(exc)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path.name}: expected a dict of tensors, found {type(obj).__name__}")
    _check_keys(obj, path)
    if "G_ema_state_dict" in obj:
        kwargs = obj.get("init_kwargs")
        return from_nvlabs_state_dict(
            _as_state(obj["G_ema_state_dict"], path), kwargs if isinstance(kwargs, dict) else None, path.name
        )
    if "g_ema" in obj:
        avg = obj.get("latent_avg")
        if avg is not None and not isinstance(avg, torch.Tensor):
            raise CheckpointError(f"{path.name}: 'latent_avg' is not a tensor")
        return from_rosinality_state_dict(_as_state(obj["g_ema"], path), avg, path.name)
    if "mapping.fc0.weight" in obj or "synthesis.b4.const" in obj:
        return from_nvlabs_state_dict(obj, None, path.name)
    if "style.1.weight" in obj or "input.input" in obj:
        return from_rosinality_state_dict(obj, None, path.name)
    keys = ", ".join(sorted(map(str, obj))[:5])
    raise CheckpointError(f"{path.name}: not a StyleGAN2 checkpoint (no 'g_ema' or 'G_ema_state_dict'; keys: {keys})")


def _as_state(obj: Any, path: Path) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path.name}: generator state is a {type(obj).__name__}, expected a dict of tensors")
    return _check_keys(obj, path)


def _check_keys(obj: dict, path: Path) -> dict:
    """State dicts are keyed by tensor names: any other key is a damaged or foreign file."""
    odd = next((k for k in obj if not isinstance(k, str)), None)
    if odd is not None:
        raise CheckpointError(f"{path.name}: not a StyleGAN2 checkpoint (key {odd!r} is not a tensor name)")
    return obj


def detect_format(path: Path) -> str:
    """'photokit' | 'torch' | 'pickle' from the first bytes; CheckpointError when it is none of them."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head:
        raise CheckpointError(f"{path.name}: file is empty")
    if head.startswith(_ZIP_MAGIC) or head.startswith(_TORCH_LEGACY_MAGIC):
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":
        return "photokit"
    if head[:1] == b"\x80":
        return "pickle"
    raise CheckpointError(f"{path.name}: not a generator file photokit knows (safetensors, PyTorch .pt or NVIDIA .pkl)")


_LOADERS: dict[str, Callable[[Path], Generator]] = {
    "photokit": load_photokit_file,
    "torch": _load_torch_file,
    "pickle": load_network_pickle,
}


def read_generator(path: str | os.PathLike) -> Generator:
    """Load any supported generator file onto the CPU (float32, eval mode, no gradients)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"generator file not found: {path}")
    try:
        G = _LOADERS[detect_format(path)](path)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, RuntimeError) as exc:  # malformed content
        raise CheckpointError(f"{path.name}: inconsistent StyleGAN2 checkpoint ({short_error(exc)})") from None
    return G.eval().requires_grad_(False)


def convert_generator(src: str | os.PathLike, dst: str | os.PathLike) -> dict[str, Any]:
    """Any supported format -> photokit's (atomically); returns what was converted."""
    src, dst = Path(src), Path(dst)
    fmt = detect_format(src) if src.is_file() else None
    G = read_generator(src)
    save_generator(G, dst, {"converted_from": src.name, "source_format": f"{fmt}/{G.config.source}"})
    return {
        "input": str(src),
        "output": str(dst),
        "source": G.config.source,
        "resolution": G.resolution,
        "num_ws": G.num_ws,
        "w_dim": G.w_dim,
        "fingerprint": generator_fingerprint(G),
        "sha256": file_sha256(dst),
        "bytes": dst.stat().st_size,
    }


class _GeneratorFiles:
    """What the model store needs to install and verify generator files (``store.models.GeneratorFiles``)."""

    def install(self, source: Path, target: Path, label: str, resolution: int | None, metadata: dict) -> dict:
        G = read_generator(source)
        if resolution is not None and G.resolution != resolution:
            raise PhotokitError(
                f"{Path(source).name} is a {G.resolution} px generator; {label} must be {resolution} px"
            )
        fingerprint = generator_fingerprint(G)
        save_generator(G, target, metadata)
        return {
            "resolution": G.resolution,
            "num_ws": G.num_ws,
            "w_dim": G.w_dim,
            "fingerprint": fingerprint,
            "layout": G.config.source,
            # Provenance, not a judgement of the pixels: photokit's own random-weight builder marks its files.
            "random_weights": is_test_generator(G),
        }

    def fingerprint(self, path: Path) -> str:
        return generator_fingerprint(read_generator(path))


GENERATOR_FILES = _GeneratorFiles()
