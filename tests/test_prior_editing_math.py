"""Editing and sampling math on planted truths: personal directions, SeFa, the three policies, P0 samples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from photokit.prior import editing
from photokit.prior.alpha import min_dilation
from photokit.prior.directions import (
    DirectionCatalog,
    build_catalog,
    personal_direction,
    sefa,
    style_affine_weights,
)
from photokit.prior.editing import Policy
from photokit.prior.personal_sampling import codes_from_weights, sample_weights
from photokit.stylegan2.network import build_tiny_generator

W_DIM = 64


def planted_anchors(n=40, noise=0.2, seed=0):
    """Anchors w_i = base + t_i d + noise, with the attribute value t_i per anchor (degrees of yaw)."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(W_DIM, generator=g)
    d = d / d.norm()
    base = torch.randn(W_DIM, generator=g) * 2
    t = torch.rand(n, generator=g) * 40 - 20
    anchors = base + (t / 10).unsqueeze(1) * d + noise * torch.randn(n, W_DIM, generator=g)
    return anchors, t, d


def cosine(a, b) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double().flatten(), b.double().flatten(), dim=0))


def test_personal_direction_recovers_the_planted_one():
    anchors, t, d = planted_anchors()
    direction = personal_direction("yaw", anchors, t.tolist())
    assert direction.refused is None, direction.refused
    assert cosine(direction.vector, d) >= 0.9
    assert direction.detail["r2"] > 0.8 and direction.detail["anchors"] == 40
    # the unit: one amount = one degree of the fitted attribute; the planted slope is 10 deg per unit of d
    predicted_change = float(direction.vector @ d) * 10
    assert predicted_change == pytest.approx(1.0, rel=0.25)


def test_attribute_without_signal_or_spread_is_refused_with_the_reason():
    anchors, t, _ = planted_anchors()
    shuffled = t[torch.randperm(len(t), generator=torch.Generator().manual_seed(5))]
    noise = personal_direction("yaw", anchors, shuffled.tolist())
    assert noise.refused and "R^2" in noise.refused and noise.vector is None
    flat = personal_direction("smile", anchors, [50.0 + 0.01 * i for i in range(len(t))])
    assert flat.refused and "spread" in flat.refused
    few = personal_direction("years", anchors, [2000.0, 2010.0] + [None] * (len(t) - 2))
    assert few.refused and "2 of 40" in few.refused


def test_sefa_is_the_top_eigenvectors_of_the_stacked_affine_weights():
    G = build_tiny_generator(seed=7)
    rows = [p.detach().numpy() for n, p in G.synthesis.named_parameters() if n.endswith("affine.weight")]
    rows = [
        r
        for n, r in zip([n for n, _ in G.synthesis.named_parameters() if n.endswith("affine.weight")], rows)
        if "torgb" not in n
    ]
    a = np.concatenate(rows).astype(np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(a.T @ a)
    top = vectors[:, ::-1][:, :5].T
    ours, eig = sefa(style_affine_weights(G), 5)
    assert np.allclose(eig.numpy(), values[::-1][:5], rtol=1e-4)
    for mine, ref in zip(ours.numpy(), top):
        assert abs(float(mine @ ref)) == pytest.approx(1.0, abs=1e-4)  # equal up to sign


def edit_setup(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    anchors = torch.randn(n, W_DIM, generator=g)
    alpha = torch.full((4, n), 1.0 / n)  # the centre of P (4 layers)
    direction = torch.randn(W_DIM, generator=g)
    return anchors, alpha, direction


def test_gamma_is_the_papers_formula_and_the_hull_version_keeps_the_sum():
    anchors, _, n = edit_setup()
    paper = editing.span_coordinates(anchors, n)
    direct = torch.linalg.inv(anchors.double() @ anchors.double().T) @ anchors.double() @ n.double()
    assert torch.allclose(paper.double(), direct, atol=1e-6)
    hull = editing.hull_coordinates(anchors, n)
    assert abs(float(hull.sum())) < 1e-6
    # within the hull's directions it is still the least-squares projection: residual orthogonal to diffs
    residual = n.double() - hull.double() @ anchors.double()
    diffs = anchors.double()[1:] - anchors.double()[:1]
    assert float((diffs @ residual).abs().max()) < 1e-6


@pytest.mark.parametrize("amount", [0.5, 2.0, 8.0, -8.0])
def test_stop_never_needs_more_than_beta(amount):
    anchors, alpha, n = edit_setup()
    gamma = editing.hull_coordinates(anchors, n)
    beta = 0.02
    result, outcome = editing.resolve_edit(alpha, gamma, amount, beta, Policy.STOP, anchors)
    assert min_dilation(result) <= beta + 1e-6 and outcome.dilation_after <= beta + 1e-6
    assert torch.allclose(result.sum(dim=1), torch.ones(4), atol=1e-5)
    if outcome.dilation_needed > beta:
        assert outcome.action == "stopped" and abs(outcome.applied) < abs(amount)
        assert min_dilation(result) == pytest.approx(beta, abs=1e-5)  # it stops exactly at the border


def test_project_lands_inside_p_beta_and_is_the_closest_such_code():
    anchors, alpha, n = edit_setup()
    gamma = editing.hull_coordinates(anchors, n)
    beta = 0.02
    wanted = editing.apply_edit(alpha, gamma, 8.0)
    assert min_dilation(wanted) > beta  # the edit really leaves P_beta
    projected, outcome = editing.resolve_edit(alpha, gamma, 8.0, beta, Policy.PROJECT, anchors)
    assert outcome.action == "projected back" and min_dilation(projected) <= beta + 1e-9
    assert torch.allclose(projected.sum(dim=1), torch.ones(4), atol=1e-6)
    stopped, _ = editing.resolve_edit(alpha, gamma, 8.0, beta, Policy.STOP, anchors)
    # STOP's result is in P_beta too, so the projection is at least as close to the requested code
    assert editing.w_distance(projected, wanted, anchors) <= editing.w_distance(stopped, wanted, anchors) + 1e-6
    g = torch.Generator().manual_seed(3)
    for _ in range(20):  # and closer than random points of P_beta
        random_point = editing.project_dilated_simplex(torch.randn(4, anchors.shape[0], generator=g), beta)
        assert editing.w_distance(projected, wanted, anchors) <= editing.w_distance(random_point, wanted, anchors)


def test_continue_reports_a_dilation_that_grows_with_the_amount():
    anchors, alpha, n = edit_setup()
    gamma = editing.hull_coordinates(anchors, n)
    needed = []
    for amount in (1.0, 2.0, 4.0, 8.0, 16.0):
        result, outcome = editing.resolve_edit(alpha, gamma, amount, 0.02, Policy.CONTINUE, anchors)
        assert outcome.applied == amount and min_dilation(result) == pytest.approx(outcome.dilation_needed)
        needed.append(outcome.dilation_needed)
    assert all(b >= a for a, b in itertools.pairwise(needed)) and needed[-1] > needed[0] and needed[-1] > 0.02


def test_dilation_is_clamped_at_zero_unlike_the_authors_code():
    assert min_dilation(torch.tensor([[0.2, 0.3, 0.5]])) == 0.0


def test_samples_lie_in_the_convex_hull_and_repeat_with_the_seed():
    n = 9
    weights = sample_weights(n, 50, torch.Generator().manual_seed(4))
    assert (weights >= 0).all() and torch.allclose(weights.sum(dim=1), torch.ones(50, dtype=weights.dtype))
    assert ((weights > 0).sum(dim=1) == 3).all()  # three anchors per sample (B.1)
    again = sample_weights(n, 50, torch.Generator().manual_seed(4))
    assert torch.equal(weights, again)
    assert not torch.equal(weights, sample_weights(n, 50, torch.Generator().manual_seed(5)))
    anchors = torch.randn(n, W_DIM)
    codes = codes_from_weights(weights, anchors)
    assert torch.allclose(codes, weights.float() @ anchors, atol=1e-5)


def test_dilated_samples_go_below_zero_but_never_below_minus_beta():
    weights = sample_weights(9, 200, torch.Generator().manual_seed(4), beta=0.1)
    assert float(weights.min()) >= -0.1 - 1e-9 and float(weights.min()) < -0.01
    assert torch.allclose(weights.sum(dim=1), torch.ones(200, dtype=weights.dtype))


def test_catalog_refuses_unknown_names_listing_the_available_ones():
    anchors, t, _ = planted_anchors()
    measures = {"yaw": t.tolist(), "smile": [1.0] * len(t)}
    G = build_tiny_generator(w_dim=W_DIM, seed=2)
    files = {"my-smile": (np.ones((1, W_DIM), np.float32), "x.npy"), "bad": (np.ones(3, np.float32), "y.npy")}
    catalog = build_catalog(anchors, measures, G, files, num_ws=G.num_ws, sefa_count=3)
    assert isinstance(catalog, DirectionCatalog)
    names = [d.name for d in catalog.usable()]
    assert names == ["yaw", "sefa-0", "sefa-1", "sefa-2", "my-smile"]
    with pytest.raises(Exception) as info:
        catalog.get("grin")
    assert "unknown edit direction 'grin'" in str(info.value) and "sefa-0" in str(info.value)
    with pytest.raises(Exception, match="spread"):
        catalog.get("smile")
    with pytest.raises(Exception, match="shape"):
        catalog.get("bad")
