"""The generator reproduces what the reference implementations computed from the shared fixtures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from photokit.stylegan2 import load_generator
from tests.conftest import shared_path

TOL = 1e-4


def _fixture(name: str):
    G = load_generator(shared_path("fixtures", "stylegan2", f"{name}_tiny64.pt"))
    golden = np.load(shared_path("fixtures", "stylegan2", f"{name}_tiny64_golden.npz"))
    return G, {k: torch.from_numpy(golden[k]) for k in golden.files}


def _max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def nvlabs():
    return _fixture("nvlabs")


@pytest.fixture(scope="module")
def rosinality():
    return _fixture("rosinality")


@pytest.mark.parametrize("fused", [True, False])
def test_nvlabs_goldens(nvlabs, fused):
    G, g = nvlabs
    G.synthesis.fused_modconv = fused
    assert (G.num_ws, G.resolution, G.w_dim, G.z_dim) == (10, 64, 512, 512)
    with torch.no_grad():
        ws = G.mapping(g["z"], truncation_psi=1.0)
        ws07 = G.mapping(g["z"], truncation_psi=0.7)
        assert _max_err(ws, g["w"]) <= TOL
        assert _max_err(ws07, g["w_trunc07"]) <= TOL
        assert _max_err(G.synthesis(g["w"], noise_mode="const"), g["img"]) <= TOL
        assert _max_err(G.synthesis(g["w_trunc07"], noise_mode="const"), g["img_trunc07"]) <= TOL
        assert _max_err(G.synthesis(g["w"], noise_mode="none"), g["img_noise_none"]) <= TOL
        # The chain from z, as a user would call it.
        assert _max_err(G(g["z"], truncation_psi=0.7), g["img_trunc07"]) <= TOL
    G.synthesis.fused_modconv = True


@pytest.mark.parametrize("fused", [True, False])
def test_rosinality_goldens(rosinality, fused):
    G, g = rosinality
    G.synthesis.fused_modconv = fused
    assert (G.num_ws, G.resolution) == (10, 64)
    assert G.config.channels == {4: 64, 8: 64, 16: 64, 32: 64, 64: 32}  # read from shapes, not a table
    with torch.no_grad():
        ws = G.mapping(g["z"])
        assert _max_err(ws[:, 0], g["w"]) <= TOL
        assert torch.equal(ws, ws[:, :1].expand_as(ws))  # one w broadcast to every layer
        assert _max_err(G.w_avg, g["latent_avg"]) == 0
        assert _max_err(G.synthesis(ws), g["img"]) <= TOL
        assert _max_err(G.synthesis(G.mapping(g["z"], truncation_psi=0.7)), g["img_trunc07"]) <= TOL
        assert _max_err(G.synthesis(g["wplus"]), g["img_wplus"]) <= TOL
    G.synthesis.fused_modconv = True


def test_noise_matters_in_fixtures(nvlabs):
    """The goldens would not catch dropped noise if the fixture's noise strengths were zero."""
    G, g = nvlabs
    with torch.no_grad():
        const, none = G.synthesis(g["w"], noise_mode="const"), G.synthesis(g["w"], noise_mode="none")
        r1, r2 = G.synthesis(g["w"], noise_mode="random"), G.synthesis(g["w"], noise_mode="random")
    assert _max_err(const, none) > 100 * TOL
    assert _max_err(r1, r2) > 100 * TOL
