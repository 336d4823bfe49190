"""photokit's own generator format: safetensors weights with the ``GeneratorConfig`` and the
fingerprint as JSON in the metadata (no pickle anywhere)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from photokit.store.atomic import atomic_path
from photokit.stylegan2.network import Generator, GeneratorConfig
from photokit.stylegan2.state import CheckpointError, generator_fingerprint, generator_from_state, short_error

PHOTOKIT_FORMAT = "photokit.stylegan2"
PHOTOKIT_FORMAT_VERSION = "1"


def save_generator(G: Generator, path: str | os.PathLike, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``G`` atomically as safetensors with its config (and fingerprint) in the metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in G.state_dict().items()}
    metadata = {
        **(extra_metadata or {}),
        "format": PHOTOKIT_FORMAT,
        "format_version": PHOTOKIT_FORMAT_VERSION,
        "config": json.dumps(G.config.to_json(), sort_keys=True),
        "fingerprint": generator_fingerprint(G),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_photokit_metadata(path: str | os.PathLike) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:
        raise CheckpointError(
            f"{Path(path).name}: corrupt or truncated safetensors file ({short_error(exc)})"
        ) from None


def load_photokit_file(path: Path) -> Generator:
    from safetensors.torch import load_file

    meta = read_photokit_metadata(path)
    if meta.get("format") != PHOTOKIT_FORMAT:
        raise CheckpointError(
            f"{path.name}: safetensors file is not a photokit generator (no '{PHOTOKIT_FORMAT}' metadata)"
        )
    if meta.get("format_version") != PHOTOKIT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path.name}: photokit generator format version {meta.get('format_version')!r} "
            f"is not supported (this photokit reads {PHOTOKIT_FORMAT_VERSION})"
        )
    try:
        config = GeneratorConfig.from_json(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path.name}: invalid generator config in metadata ({short_error(exc)})") from None
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path.name}: corrupt or truncated safetensors file ({short_error(exc)})") from None
    G = generator_from_state(config, state, path.name)
    if meta.get("fingerprint") and generator_fingerprint(G) != meta["fingerprint"]:
        raise CheckpointError(f"{path.name}: weights do not match the fingerprint stored in the file (damaged file)")
    return G
