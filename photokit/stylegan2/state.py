"""What every checkpoint reader shares: the error type, a generator's identity, and loading a
photokit-layout state dict after checking every tensor against the architecture."""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from photokit.errors import PhotokitError
from photokit.stylegan2.network import Generator, GeneratorConfig
from photokit.stylegan2.ops import fir_filter


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return (first[:160] + "...") if len(first) > 160 else first


class CheckpointError(PhotokitError):
    """A generator file that cannot be loaded: corrupt, truncated, unsafe, or not a StyleGAN2."""


def generator_fingerprint(G: Generator) -> str:
    """SHA-256 over every tensor (name, dtype, shape, bytes) in sorted name order: a generator's identity.

    Two files holding the same weights (e.g. ``ffhq.pkl`` and its photokit conversion) get the same
    fingerprint, so a personal prior can check that it was tuned from the base generator it is used with.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(G.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _empty_generator(config: GeneratorConfig) -> Generator:
    """A generator with uninitialised weights (no time spent on random init of a 1024 px model)."""
    with torch.device("meta"):
        G = Generator(config)
    G = G.to_empty(device="cpu")
    G.synthesis.resample_filter.copy_(fir_filter())
    return G


def generator_from_state(config: GeneratorConfig, state: dict[str, torch.Tensor], source: str) -> Generator:
    """Check every tensor name and shape against ``config``, then load them. ``source`` names the file."""
    G = _empty_generator(config)
    expected = G.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(
            f"{source}: missing tensor '{missing[0]}'" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise CheckpointError(f"{source}: unexpected tensor '{unexpected[0]}' for this architecture")
    for name, ref in expected.items():
        t = state[name]
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{source}: '{name}' is not a tensor")
        if tuple(t.shape) != tuple(ref.shape):
            raise CheckpointError(f"{source}: tensor '{name}' has shape {tuple(t.shape)}, expected {tuple(ref.shape)}")
        if not t.is_floating_point():
            raise CheckpointError(f"{source}: tensor '{name}' has dtype {t.dtype}, expected floating point")
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{source}: tensor '{name}' contains NaN or infinite values")
    G.load_state_dict({k: state[k].to(torch.float32) for k in expected}, strict=True)
    return G


def check_filter(kernel: torch.Tensor, gain: float, name: str, source: str) -> None:
    """Both references store their FIR filter; photokit only implements [1,3,3,1], so check it is that."""
    if tuple(kernel.shape) != (4, 4) or not torch.allclose(kernel.float(), fir_filter() * gain, atol=1e-6):
        raise CheckpointError(f"{source}: '{name}' is not the [1,3,3,1] filter StyleGAN2 uses (unsupported variant)")


def need_tensor(sd: dict[str, Any], key: str, source: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"{source}: missing tensor '{key}'")
    value = sd[key]
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{source}: '{key}' is not a tensor")
    return value
