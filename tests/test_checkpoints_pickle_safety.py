"""NVIDIA network pickles are read without running anything they contain."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from photokit.errors import PhotokitError
from photokit.stylegan2 import generator_fingerprint, load_generator
from tests.conftest import shared_path

_BUFFERS = ("w_avg", "resample_filter", "noise_const")


class _Call:
    """Pickles as ``func(*args)``: how an attacker (or NVIDIA's persistence module) writes a reduction."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("payload", ["os.system", "subprocess.call", "builtins.exec", "builtins.eval"])
def test_malicious_pickle_is_refused_and_runs_nothing(payload, tmp_path):
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    func, args = {
        "os.system": (os.system, (command,)),
        "subprocess.call": (subprocess.call, (["touch", str(marker)],)),
        "builtins.exec": (exec, (f"open({str(marker)!r}, 'w').close()",)),
        "builtins.eval": (eval, (f"open({str(marker)!r}, 'w').close()",)),
    }[payload]
    path = tmp_path / "ffhq.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Call(func, *args)}, protocol=4))
    with pytest.raises(PhotokitError) as info:
        load_generator(path)
    assert "refusing" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_malicious_torch_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": _Call(os.system, f"touch {marker}")}, path)
    with pytest.raises(PhotokitError, match="refusing"):
        load_generator(path)
    assert not marker.exists()


# ---- a synthetic NVIDIA network pickle, built from the documented layout -----------------------------


def _fake_nvidia_modules(monkeypatch):
    """Stand-ins for NVIDIA's ``torch_utils.persistence`` and ``dnnlib.util`` so plain pickle can write the layout."""
    persistence = types.ModuleType("torch_utils.persistence")
    torch_utils = types.ModuleType("torch_utils")
    dnnlib = types.ModuleType("dnnlib")
    dnnlib_util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # what NVIDIA's loader calls: it would exec(meta['module_src'])
        raise AssertionError("never called while writing")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class EasyDict(dict):
        pass

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"
    dnnlib_util.EasyDict = EasyDict
    torch_utils.persistence, dnnlib.util = persistence, dnnlib_util
    for name, module in [
        ("torch_utils", torch_utils),
        ("torch_utils.persistence", persistence),
        ("dnnlib", dnnlib),
        ("dnnlib.util", dnnlib_util),
    ]:
        monkeypatch.setitem(sys.modules, name, module)
    return _reconstruct_persistent_obj, EasyDict


def _network_record(reconstruct, class_name: str, state_dict: dict, marker, extra_state=None, conv_clamp=None) -> _Call:
    """One persistent object per module, nested through ``_modules`` like a real G_ema (whose layers
    keep their own ``conv_clamp`` attribute, and whose top level keeps ``_init_kwargs``)."""
    params, buffers, children = collections.OrderedDict(), collections.OrderedDict(), collections.OrderedDict()
    groups: dict[str, dict] = collections.OrderedDict()
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        if rest:
            groups.setdefault(head, collections.OrderedDict())[rest] = value
        elif key in _BUFFERS:
            buffers[key] = value.clone()
        else:
            params[key] = torch.nn.Parameter(value.clone())
    for head, sub in groups.items():
        layer_state = {"conv_clamp": conv_clamp} if head in ("conv0", "conv1", "torgb") else None
        children[head] = _network_record(reconstruct, head, sub, marker, layer_state, conv_clamp)
    state = {
        "training": False,
        "_parameters": params,
        "_buffers": buffers,
        "_non_persistent_buffers_set": set(),
        "_modules": children,
        "_forward_hooks": collections.OrderedDict(),
        **(extra_state or {}),
    }
    meta = {
        "type": "class",
        "version": 6,
        "class_name": f"training.networks.{class_name}",
        "state": state,
        "module_src": f"open({str(marker)!r}, 'w').write('module_src was executed')\n",
    }
    return _Call(reconstruct, meta)


def test_synthetic_nvidia_network_pickle_loads_and_matches_goldens(monkeypatch, tmp_path):
    marker = tmp_path / "module_src_ran"
    reconstruct, EasyDict = _fake_nvidia_modules(monkeypatch)
    fixture = torch.load(shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt"), weights_only=True)
    kwargs = fixture["init_kwargs"]
    init_kwargs = {
        **kwargs,
        "mapping_kwargs": EasyDict(kwargs["mapping_kwargs"]),
        "synthesis_kwargs": EasyDict(kwargs["synthesis_kwargs"]),
    }
    g_ema = _network_record(
        reconstruct, "Generator", fixture["G_ema_state_dict"], marker, {"_init_kwargs": init_kwargs}
    )
    discriminator = _network_record(reconstruct, "Discriminator", {"b4.fc.weight": torch.randn(4, 4)}, marker)
    data = {
        "G": g_ema,
        "D": discriminator,
        "G_ema": g_ema,
        "augment_pipe": torch.nn.Linear(2, 2),  # plain module
        "training_set_kwargs": EasyDict(path="~/datasets/ffhq.zip", resolution=64, max_size=70000),
    }
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))  # plain pickle, as NVIDIA's training loop writes it
    monkeypatch.undo()  # the loader must not need NVIDIA's modules

    G = load_generator(path)
    assert not marker.exists()
    assert G.config.source == "nvlabs" and G.num_ws == 10
    reference = load_generator(shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt"))
    assert generator_fingerprint(G) == generator_fingerprint(reference)
    golden = np.load(shared_path("fixtures", "stylegan2", "nvlabs_tiny64_golden.npz"))
    with torch.no_grad():
        img = G.synthesis(G.mapping(torch.from_numpy(golden["z"]), truncation_psi=0.7))
    assert (img - torch.from_numpy(golden["img_trunc07"])).abs().max().item() <= 1e-4


def test_pickle_without_g_ema_and_truncated_pickle(monkeypatch, tmp_path):
    reconstruct, _ = _fake_nvidia_modules(monkeypatch)
    fixture = torch.load(shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt"), weights_only=True)
    record = _network_record(reconstruct, "Generator", fixture["G_ema_state_dict"], tmp_path / "m")
    no_ema = pickle.dumps({"G": record}, protocol=4)
    full = pickle.dumps({"G_ema": record}, protocol=4)
    monkeypatch.undo()
    (tmp_path / "a.pkl").write_bytes(no_ema)
    with pytest.raises(PhotokitError, match="no 'G_ema'"):
        load_generator(tmp_path / "a.pkl")
    (tmp_path / "b.pkl").write_bytes(full[: len(full) // 3])
    with pytest.raises(PhotokitError, match="corrupt or truncated"):
        load_generator(tmp_path / "b.pkl")


def test_pickled_conv_clamp_is_used(monkeypatch, tmp_path):
    """NVIDIA's fp16 configs (ffhq.pkl) clamp every conv output at 256: read from the layers' own records."""
    reconstruct, _ = _fake_nvidia_modules(monkeypatch)
    fixture = torch.load(shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt"), weights_only=True)
    record = _network_record(
        reconstruct,
        "Generator",
        fixture["G_ema_state_dict"],
        tmp_path / "m",
        {"_init_kwargs": {"z_dim": 512, "w_dim": 512}},
        conv_clamp=256,
    )
    data = pickle.dumps({"G_ema": record}, protocol=4)
    monkeypatch.undo()
    (tmp_path / "clamped.pkl").write_bytes(data)
    G = load_generator(tmp_path / "clamped.pkl")
    assert G.config.conv_clamp == 256.0
    assert G.synthesis.b64.conv1.conv_clamp == 256.0 and G.synthesis.b8.torgb.conv_clamp == 256.0
