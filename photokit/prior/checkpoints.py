"""Reading StyleGAN2 checkpoints without trusting them, and photokit's own generator format.

Formats (detected from the file's content, never its name):
- photokit: safetensors weights; the ``GeneratorConfig`` as JSON in the safetensors metadata.
- rosinality ``.pt`` (``{'g_ema': state_dict, 'latent_avg': (512,)}``, e.g. ``stylegan2-ffhq-config-f.pt``).
- NVIDIA state dict ``.pt`` (``{'G_ema_state_dict': ..., 'init_kwargs': ...}``).
- NVIDIA network pickle ``.pkl`` (``ffhq.pkl``): read by ``_SafeUnpickler``, which rebuilds tensors and
  containers only. Each network in such a pickle is a call to ``torch_utils.persistence.
  _reconstruct_persistent_obj(meta)`` whose ``meta['module_src']`` NVIDIA's loader executes; photokit never
  does: it takes the parameter and buffer tree out of ``meta['state']``.
``.pt`` files go through ``torch.load(weights_only=True)``; the torch storages nested in a pickle are
also read with ``weights_only=True``.

The architecture is inferred from tensor shapes (resolution, channels per block, mapping depth,
w_dim), then every tensor is checked against the architecture; anything inconsistent is a one-line
``PhotokitError`` that names the file and the problem.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch

from photokit.errors import PhotokitError
from photokit.prior.stylegan2 import Generator, GeneratorConfig, block_resolutions, estimate_w_avg, fir_filter
from photokit.store.atomic import atomic_path
from photokit.store.hashing import file_sha256  # noqa: F401 - part of this module's API

PHOTOKIT_FORMAT = "photokit.stylegan2"
PHOTOKIT_FORMAT_VERSION = "1"
_ZIP_MAGIC = b"PK\x03\x04"
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch.save's pre-1.6 format


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return (first[:160] + "...") if len(first) > 160 else first


class CheckpointError(PhotokitError):
    """A generator file that cannot be loaded: corrupt, truncated, unsafe, or not a StyleGAN2."""


# ---------------------------------------------------------------------------------------------------
# Identity of a generator


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


# ---------------------------------------------------------------------------------------------------
# Building a generator from a photokit-layout state dict


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
        raise CheckpointError(f"{source}: missing tensor '{missing[0]}'"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
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


def _check_filter(kernel: torch.Tensor, gain: float, name: str, source: str) -> None:
    """Both references store their FIR filter; photokit only implements [1,3,3,1], so check it is that."""
    if tuple(kernel.shape) != (4, 4) or not torch.allclose(kernel.float(), fir_filter() * gain, atol=1e-6):
        raise CheckpointError(f"{source}: '{name}' is not the [1,3,3,1] filter StyleGAN2 uses (unsupported variant)")


def _need(sd: dict[str, Any], key: str, source: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"{source}: missing tensor '{key}'")
    value = sd[key]
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{source}: '{key}' is not a tensor")
    return value


# ---------------------------------------------------------------------------------------------------
# NVIDIA stylegan2-ada-pytorch layout


def _nvlabs_config(sd: dict[str, Any], init_kwargs: dict | None, source: str) -> GeneratorConfig:
    if any(k.startswith("mapping.embed") for k in sd):
        raise CheckpointError(f"{source}: class-conditional generators (c_dim > 0) are not supported")
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"synthesis\.b(\d+)\.", k))})
    if not blocks:
        raise CheckpointError(f"{source}: no synthesis blocks (synthesis.b4...) found: not a StyleGAN2 generator")
    resolution = blocks[-1]
    if resolution & (resolution - 1) or blocks != block_resolutions(resolution):
        raise CheckpointError(f"{source}: synthesis blocks {blocks} are not 4, 8, ..., a power of two")
    channels = {res: int(_need(sd, f"synthesis.b{res}.conv1.weight", source).shape[0]) for res in blocks}
    layers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"mapping\.fc(\d+)\.weight$", k))})
    if not layers or layers != list(range(len(layers))):
        raise CheckpointError(f"{source}: mapping layers {layers} are not fc0..fcN")
    fc0 = _need(sd, "mapping.fc0.weight", source)
    if fc0.ndim != 2:
        raise CheckpointError(f"{source}: 'mapping.fc0.weight' has shape {tuple(fc0.shape)}, expected 2-D")
    kwargs = dict(init_kwargs or {})
    mapping_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    synthesis_kwargs = dict(kwargs.get("synthesis_kwargs") or {})
    if int(kwargs.get("c_dim", 0) or 0):
        raise CheckpointError(f"{source}: class-conditional generators (c_dim > 0) are not supported")
    if synthesis_kwargs.get("architecture", "skip") != "skip":
        raise CheckpointError(f"{source}: synthesis architecture {synthesis_kwargs['architecture']!r} is not supported (only 'skip')")
    clamp = synthesis_kwargs.get("conv_clamp")
    if clamp is not None and (isinstance(clamp, bool) or not isinstance(clamp, (int, float)) or clamp <= 0):
        raise CheckpointError(f"{source}: invalid conv_clamp {clamp!r} in the generator's settings")
    return GeneratorConfig(
        z_dim=int(fc0.shape[1]), w_dim=int(fc0.shape[0]), resolution=resolution, mapping_layers=len(layers),
        channels=channels, img_channels=int(_need(sd, f"synthesis.b{resolution}.torgb.weight", source).shape[0]),
        mapping_lr_multiplier=float(mapping_kwargs.get("lr_multiplier", 0.01)),
        conv_clamp=None if clamp is None else float(clamp), fan_in_before_demod=False, source="nvlabs",
    )


def from_nvlabs_state_dict(sd: dict[str, Any], init_kwargs: dict | None = None, source: str = "checkpoint") -> Generator:
    """NVIDIA's ``G_ema.state_dict()``; ``init_kwargs`` (if known) supplies conv_clamp and lr multiplier."""
    config = _nvlabs_config(sd, init_kwargs, source)
    state: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith("resample_filter"):
            _check_filter(_need(sd, key, source), 1.0, key, source)
            continue
        state[key] = value
    return generator_from_state(config, state, source)


# ---------------------------------------------------------------------------------------------------
# rosinality stylegan2-pytorch layout


def from_rosinality_state_dict(sd: dict[str, Any], latent_avg: torch.Tensor | None = None,
                               source: str = "checkpoint") -> Generator:
    """rosinality's ``g_ema`` state dict and ``latent_avg`` mapped onto photokit's module names."""
    n_mlp = len({k for k in sd if re.match(r"style\.\d+\.weight$", k)})
    if n_mlp == 0:
        raise CheckpointError(f"{source}: no mapping layers (style.1.weight ...) found: not a rosinality StyleGAN2")
    n_rgbs = len({m.group(1) for k in sd if (m := re.match(r"to_rgbs\.(\d+)\.", k))})
    resolution = 2 ** (n_rgbs + 2)
    blocks = block_resolutions(resolution)
    const = _need(sd, "input.input", source)
    if const.ndim != 4:
        raise CheckpointError(f"{source}: tensor 'input.input' has shape {tuple(const.shape)}, expected (1, C, 4, 4)")
    channels = {4: int(const.shape[1])}
    for i, res in enumerate(blocks[1:]):
        w = _need(sd, f"convs.{2 * i}.conv.weight", source)
        if w.ndim != 5:
            raise CheckpointError(f"{source}: tensor 'convs.{2 * i}.conv.weight' has shape {tuple(w.shape)}, expected 5-D")
        channels[res] = int(w.shape[1])
    style1 = _need(sd, "style.1.weight", source)
    if style1.ndim != 2:
        raise CheckpointError(f"{source}: tensor 'style.1.weight' has shape {tuple(style1.shape)}, expected 2-D")
    config = GeneratorConfig(z_dim=int(style1.shape[1]), w_dim=int(style1.shape[0]), resolution=resolution,
                             mapping_layers=n_mlp, channels=channels,
                             img_channels=int(_need(sd, "to_rgb1.conv.weight", source).shape[1]),
                             fan_in_before_demod=True, source="rosinality")

    used: set[str] = set()

    def take(key: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        t = _need(sd, key, source)
        used.add(key)
        if shape is not None:
            if t.numel() != math.prod(shape):
                raise CheckpointError(f"{source}: tensor '{key}' has shape {tuple(t.shape)}, expected {tuple(shape)}")
            t = t.reshape(shape)
        return t

    state: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        state[f"mapping.fc{i}.weight"] = take(f"style.{i + 1}.weight")
        state[f"mapping.fc{i}.bias"] = take(f"style.{i + 1}.bias")

    def styled_conv(dst: str, src: str, noise: str, res: int, c_in: int, c_out: int) -> None:
        state[f"{dst}.weight"] = take(f"{src}.conv.weight", (c_out, c_in, 3, 3))
        state[f"{dst}.affine.weight"] = take(f"{src}.conv.modulation.weight")
        state[f"{dst}.affine.bias"] = take(f"{src}.conv.modulation.bias")
        state[f"{dst}.bias"] = take(f"{src}.activate.bias")
        state[f"{dst}.noise_strength"] = take(f"{src}.noise.weight", ())
        state[f"{dst}.noise_const"] = take(f"noises.{noise}", (res, res))

    def to_rgb(dst: str, src: str, c_in: int) -> None:
        state[f"{dst}.weight"] = take(f"{src}.conv.weight", (config.img_channels, c_in, 1, 1))
        state[f"{dst}.affine.weight"] = take(f"{src}.conv.modulation.weight")
        state[f"{dst}.affine.bias"] = take(f"{src}.conv.modulation.bias")
        state[f"{dst}.bias"] = take(f"{src}.bias", (config.img_channels,))

    state["synthesis.b4.const"] = take("input.input", (channels[4], 4, 4))
    styled_conv("synthesis.b4.conv1", "conv1", "noise_0", 4, channels[4], channels[4])
    to_rgb("synthesis.b4.torgb", "to_rgb1", channels[4])
    for i, res in enumerate(blocks[1:]):
        c_in, c_out = channels[res // 2], channels[res]
        styled_conv(f"synthesis.b{res}.conv0", f"convs.{2 * i}", f"noise_{2 * i + 1}", res, c_in, c_out)
        styled_conv(f"synthesis.b{res}.conv1", f"convs.{2 * i + 1}", f"noise_{2 * i + 2}", res, c_out, c_out)
        to_rgb(f"synthesis.b{res}.torgb", f"to_rgbs.{i}", c_out)
        _check_filter(take(f"convs.{2 * i}.conv.blur.kernel"), 4.0, f"convs.{2 * i}.conv.blur.kernel", source)
        _check_filter(take(f"to_rgbs.{i}.upsample.kernel"), 4.0, f"to_rgbs.{i}.upsample.kernel", source)
    unexpected = sorted(set(sd) - used)
    if unexpected:
        raise CheckpointError(f"{source}: unexpected tensor '{unexpected[0]}' for a {resolution} px rosinality generator")

    if latent_avg is not None:
        state["mapping.w_avg"] = latent_avg.reshape(-1) if latent_avg.numel() == config.w_dim else latent_avg
        return generator_from_state(config, state, source)
    # No latent_avg saved: estimate it as rosinality's own ``mean_latent`` does, from random z.
    state["mapping.w_avg"] = torch.zeros(config.w_dim)
    G = generator_from_state(config, state, source)
    G.mapping.w_avg.copy_(estimate_w_avg(G))
    return G


# ---------------------------------------------------------------------------------------------------
# photokit format


def save_generator(G: Generator, path: str | os.PathLike, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``G`` atomically as safetensors with its config (and fingerprint) in the metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in G.state_dict().items()}
    metadata = {**(extra_metadata or {}), "format": PHOTOKIT_FORMAT, "format_version": PHOTOKIT_FORMAT_VERSION,
                "config": json.dumps(G.config.to_json(), sort_keys=True), "fingerprint": generator_fingerprint(G)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_photokit_metadata(path: str | os.PathLike) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:
        raise CheckpointError(f"{Path(path).name}: corrupt or truncated safetensors file ({_short(exc)})") from None


def _load_photokit(path: Path) -> Generator:
    from safetensors.torch import load_file

    meta = read_photokit_metadata(path)
    if meta.get("format") != PHOTOKIT_FORMAT:
        raise CheckpointError(f"{path.name}: safetensors file is not a photokit generator (no '{PHOTOKIT_FORMAT}' metadata)")
    if meta.get("format_version") != PHOTOKIT_FORMAT_VERSION:
        raise CheckpointError(f"{path.name}: photokit generator format version {meta.get('format_version')!r} "
                              f"is not supported (this photokit reads {PHOTOKIT_FORMAT_VERSION})")
    try:
        config = GeneratorConfig.from_json(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path.name}: invalid generator config in metadata ({_short(exc)})") from None
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path.name}: corrupt or truncated safetensors file ({_short(exc)})") from None
    G = generator_from_state(config, state, path.name)
    if meta.get("fingerprint") and generator_fingerprint(G) != meta["fingerprint"]:
        raise CheckpointError(f"{path.name}: weights do not match the fingerprint stored in the file (damaged file)")
    return G


# ---------------------------------------------------------------------------------------------------
# Restricted unpickler for NVIDIA network pickles


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something other than tensors, containers and NVIDIA's network records."""


class PersistentObject:
    """Stand-in for an object NVIDIA pickled with ``torch_utils.persistence``: its class name and state, inert."""

    def __init__(self, meta: Any) -> None:
        if not isinstance(meta, dict) or "state" not in meta:
            raise UnsafePickleError("persistent object without a 'state'")
        self.class_name = str(meta.get("class_name", "?"))
        self.state = meta["state"]
        self.version = meta.get("version")
        # meta['module_src'] is deliberately dropped: it is code, and photokit never runs it.


class _InertDict(dict):
    """Stand-in for dict subclasses such as ``dnnlib.EasyDict``: plain data, attributes ignored."""

    def __setstate__(self, state: Any) -> None:
        pass


class _ModuleRecord:
    """Stand-in for a plain ``torch.nn`` module inside a network pickle: keeps its ``__dict__`` as data."""

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


class _InertObject:
    """Stand-in for data-only classes of NVIDIA's training code that a G_ema never needs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _storage_from_bytes(data: bytes) -> Any:
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("tensor storage is not bytes")
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused something inside the storage bytes
        raise UnsafePickleError(f"a tensor storage holds objects other than tensors ({_short(exc)})") from None


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafePickleError("tensor built from something that is not a storage")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, False, collections.OrderedDict())


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("parameter built from something that is not a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_parameter) or new_type not in (torch.Tensor, torch.nn.Parameter):
        raise UnsafePickleError("tensor subclass rebuild is not allowed")
    return func(*args)


_DTYPES = {name: getattr(torch, name) for name in (
    "float16", "float32", "float64", "bfloat16", "uint8", "int8", "int16", "int32", "int64", "bool")}

_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentObject,
    ("dnnlib.util", "EasyDict"): _InertDict,
    ("dnnlib", "EasyDict"): _InertDict,
}
# NVIDIA's own training packages: classes there are data holders we never instantiate for real.
_INERT_PREFIXES = ("dnnlib.", "torch_utils.", "training.")
# numpy data that may sit in the training options of a pickle; never needed for G_ema, kept inert.
_INERT_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                  ("numpy", "ndarray"), ("numpy", "dtype")}


class _SafeUnpickler(pickle.Unpickler):
    """Rebuilds tensors, containers and NVIDIA's persistent-object records; refuses any other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if (module.startswith(_INERT_PREFIXES) and name[:1].isupper()) or (module, name) in _INERT_GLOBALS:
            return _InertObject
        if module.startswith("torch.nn.modules.") and name[:1].isupper():
            return _ModuleRecord
        raise UnsafePickleError(f"it references {module}.{name}, which is not a tensor or container")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("it uses persistent ids (not a plain network pickle)")


def safe_unpickle(data: bytes | BinaryIO) -> Any:
    """Unpickle with ``_SafeUnpickler`` (bytes or a binary file)."""
    fh = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return _SafeUnpickler(fh).load()


def _module_tree(obj: Any, prefix: str, out: dict[str, torch.Tensor], source: str, depth: int = 0) -> None:
    """Flatten a pickled ``nn.Module`` record (``_parameters``/``_buffers``/``_modules``) into a state dict."""
    if depth > 32:
        raise CheckpointError(f"{source}: module tree too deep")
    state = getattr(obj, "state", None) if isinstance(obj, (PersistentObject, _ModuleRecord)) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: '{prefix or 'G_ema'}' is not a network record")
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, tensor in (state.get(group) or {}).items():
            if tensor is None or name in skip:
                continue
            if not isinstance(tensor, torch.Tensor):
                raise CheckpointError(f"{source}: '{prefix}{name}' is not a tensor")
            out[prefix + name] = tensor
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _module_tree(child, f"{prefix}{name}.", out, source, depth + 1)


def _load_network_pickle(path: Path) -> Generator:
    try:
        with open(path, "rb") as fh:
            obj = safe_unpickle(fh)
    except UnsafePickleError as exc:
        raise CheckpointError(f"refusing to load {path.name}: {_short(exc)}") from None
    except Exception as exc:  # truncated or damaged data makes pickle fail in many ways
        raise CheckpointError(f"{path.name}: corrupt or truncated pickle ({_short(exc) or 'unexpected end of file'})") from None
    if not isinstance(obj, dict) or "G_ema" not in obj:
        raise CheckpointError(f"{path.name}: network pickle has no 'G_ema' generator")
    g_ema = obj["G_ema"]
    if not isinstance(g_ema, PersistentObject):
        raise CheckpointError(f"{path.name}: 'G_ema' is not an NVIDIA persistent network record")
    sd: dict[str, torch.Tensor] = {}
    _module_tree(g_ema, "", sd, path.name)
    return from_nvlabs_state_dict(sd, _pickled_init_kwargs(g_ema), path.name)


def _pickled_init_kwargs(g_ema: PersistentObject) -> dict | None:
    """The constructor arguments NVIDIA's persistence keeps (``_init_kwargs``), with the conv clamp the
    layers actually use (a layer's own ``conv_clamp`` attribute) when the record has it."""
    state = g_ema.state if isinstance(g_ema.state, dict) else {}
    kwargs = state.get("_init_kwargs", state.get("init_kwargs"))
    kwargs = dict(kwargs) if isinstance(kwargs, dict) else {}
    try:
        layer = state["_modules"]["synthesis"].state["_modules"]["b4"].state["_modules"]["conv1"].state
    except (KeyError, AttributeError, TypeError):
        layer = {}
    if isinstance(layer, dict) and "conv_clamp" in layer:
        kwargs["synthesis_kwargs"] = {**dict(kwargs.get("synthesis_kwargs") or {}), "conv_clamp": layer["conv_clamp"]}
    return kwargs


# ---------------------------------------------------------------------------------------------------
# Entry point


def _load_torch_file(path: Path) -> Generator:
    try:
        # rosinality's training checkpoints also hold their argparse options: plain attribute data.
        allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
        with allow([argparse.Namespace]) if allow else contextlib.nullcontext():
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"refusing to load {path.name}: it holds objects other than tensors and "
                              f"containers ({_short(exc)})") from None
    except Exception as exc:
        raise CheckpointError(f"{path.name}: corrupt or truncated PyTorch file ({_short(exc)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path.name}: expected a dict of tensors, found {type(obj).__name__}")
    _check_keys(obj, path)
    if "G_ema_state_dict" in obj:
        kwargs = obj.get("init_kwargs")
        return from_nvlabs_state_dict(_as_state(obj["G_ema_state_dict"], path), kwargs if isinstance(kwargs, dict) else None, path.name)
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
    "photokit": _load_photokit,
    "torch": _load_torch_file,
    "pickle": lambda p: _load_network_pickle(p),
}


def read_generator(path: str | os.PathLike) -> Generator:
    """Load any supported generator file onto the CPU (float32, eval mode, no gradients)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"generator file not found: {path}")
    try:
        G = _LOADERS[detect_format(path)](path)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, RuntimeError) as exc:  # malformed content
        raise CheckpointError(f"{path.name}: inconsistent StyleGAN2 checkpoint ({_short(exc)})") from None
    return G.eval().requires_grad_(False)


def convert_generator(src: str | os.PathLike, dst: str | os.PathLike) -> dict[str, Any]:
    """Any supported format -> photokit's (atomically); returns what was converted."""
    src, dst = Path(src), Path(dst)
    fmt = detect_format(src) if src.is_file() else None
    G = read_generator(src)
    save_generator(G, dst, {"converted_from": src.name, "source_format": f"{fmt}/{G.config.source}"})
    return {"input": str(src), "output": str(dst), "source": G.config.source, "resolution": G.resolution,
            "num_ws": G.num_ws, "w_dim": G.w_dim, "fingerprint": generator_fingerprint(G),
            "sha256": file_sha256(dst), "bytes": dst.stat().st_size}


class _GeneratorFiles:
    """What the model store needs to install and verify generator files (``store.models.GeneratorFiles``)."""

    def install(self, source: Path, target: Path, label: str, resolution: int | None, metadata: dict) -> dict:
        G = read_generator(source)
        if resolution is not None and G.resolution != resolution:
            raise PhotokitError(f"{Path(source).name} is a {G.resolution} px generator; {label} must be {resolution} px")
        fingerprint = generator_fingerprint(G)
        save_generator(G, target, metadata)
        return {"resolution": G.resolution, "num_ws": G.num_ws, "w_dim": G.w_dim, "fingerprint": fingerprint,
                "layout": G.config.source}

    def fingerprint(self, path: Path) -> str:
        return generator_fingerprint(read_generator(path))


GENERATOR_FILES = _GeneratorFiles()
