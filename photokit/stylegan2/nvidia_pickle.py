"""NVIDIA network pickles (``ffhq.pkl``) read without trusting them.

Each network in such a pickle is a call to ``torch_utils.persistence._reconstruct_persistent_obj(meta)``
whose ``meta['module_src']`` NVIDIA's loader executes; photokit never does. ``_SafeUnpickler`` rebuilds
tensors and containers only, and the parameter and buffer tree is taken out of ``meta['state']``.
Torch storages nested in the pickle are read with ``weights_only=True``."""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import torch

from photokit.stylegan2.network import Generator
from photokit.stylegan2.nvidia_state_dict import from_nvlabs_state_dict
from photokit.stylegan2.state import CheckpointError, short_error


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
        raise UnsafePickleError(f"a tensor storage holds objects other than tensors ({short_error(exc)})") from None


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


_DTYPES = {
    name: getattr(torch, name)
    for name in ("float16", "float32", "float64", "bfloat16", "uint8", "int8", "int16", "int32", "int64", "bool")
}

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
_INERT_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


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


def load_network_pickle(path: Path) -> Generator:
    try:
        with open(path, "rb") as fh:
            obj = safe_unpickle(fh)
    except UnsafePickleError as exc:
        raise CheckpointError(f"refusing to load {path.name}: {short_error(exc)}") from None
    except Exception as exc:  # truncated or damaged data makes pickle fail in many ways
        raise CheckpointError(
            f"{path.name}: corrupt or truncated pickle ({short_error(exc) or 'unexpected end of file'})"
        ) from None
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
