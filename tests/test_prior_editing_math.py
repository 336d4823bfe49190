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
from photokit.prior.personal_sampling import codes_from_weights, sample_weights
from photokit.prior.vocab import EditPolicy
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
    result, outcome = editing.resolve_edit(alpha, gamma, amount, beta, EditPolicy.STOP, anchors)
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
    projected, outcome = editing.resolve_edit(alpha, gamma, 8.0, beta, EditPolicy.PROJECT, anchors)
    assert outcome.action == "projected back" and min_dilation(projected) <= beta + 1e-9
    assert torch.allclose(projected.sum(dim=1), torch.ones(4), atol=1e-6)
    stopped, _ = editing.resolve_edit(alpha, gamma, 8.0, beta, EditPolicy.STOP, anchors)
    # STOP's result is in P_beta too, so the projection is at least as close to the requested code
    assert editing.w_distance(projected, wanted, anchors) <= editing.w_distance(stopped, wanted, anchors) + 1e-6
    g = torch.Generator().manual_seed(3)
    for _ in range(20):  # and closer than random points of P_beta
        random_point = editing.project_dilated_simplex(torch.randn(4, anchors.shape[0], generator=g), beta)
        assert editing.w_distance(projected, wanted, anchors) <= editing.w_distance(random_point, wanted, anchors)


def exact_hull_projection(target: np.ndarray, a: np.ndarray, beta: float) -> float:
    """The QP's optimum by brute force over active sets: for every set S of coefficients held at -beta,
    the best of the others under sum = 1 (a KKT linear system); the least objective over feasible ones."""
    n = a.shape[0]
    gram, rhs = a @ a.T, a @ target
    best = np.inf
    for mask in itertools.product([False, True], repeat=n):
        held = np.array(mask)
        free = ~held
        if not free.any():
            continue
        k = int(free.sum())
        x = np.full(n, -beta)
        # minimise |x a - target|^2 over x[free] with sum(x) = 1: [2G_ff 1; 1^T 0][x_f; mu] = [2(r_f - G_fh x_h); s]
        kkt = np.zeros((k + 1, k + 1))
        kkt[:k, :k] = 2 * gram[np.ix_(free, free)]
        kkt[:k, k] = kkt[k, :k] = 1
        b = np.concatenate([2 * (rhs[free] - gram[np.ix_(free, held)] @ x[held]), [1 - x[held].sum()]])
        x[free] = np.linalg.lstsq(kkt, b, rcond=None)[0][:k]
        if (x >= -beta - 1e-9).all():
            best = min(best, float(np.sum((x @ a - target) ** 2)))
    return best


def test_project_is_the_exact_optimum_on_anchors_with_a_common_part():
    g = torch.Generator().manual_seed(8)
    anchors = 5.0 * torch.randn(W_DIM, generator=g) + 0.5 * torch.randn(7, W_DIM, generator=g)  # like w_avg + x
    alpha = torch.full((2, 7), 1.0 / 7)
    gamma = editing.hull_coordinates(anchors, torch.randn(2, W_DIM, generator=g))
    beta = 0.05
    wanted = editing.apply_edit(alpha, gamma, 6.0)
    assert min_dilation(wanted) > 0.5  # far outside P_beta
    ours = editing.project_to_hull(wanted, anchors, beta)
    a = anchors.double().numpy()
    for layer in range(2):
        target = wanted[layer].double().numpy() @ a
        optimum = exact_hull_projection(target, a, beta)
        mine = float(np.sum((ours[layer].double().numpy() @ a - target) ** 2))
        assert mine == pytest.approx(optimum, rel=1e-4, abs=1e-6)


def test_continue_reports_a_dilation_that_grows_with_the_amount():
    anchors, alpha, n = edit_setup()
    gamma = editing.hull_coordinates(anchors, n)
    needed = []
    for amount in (1.0, 2.0, 4.0, 8.0, 16.0):
        result, outcome = editing.resolve_edit(alpha, gamma, amount, 0.02, EditPolicy.CONTINUE, anchors)
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


def rough_face(mouth_open: float = 0.0, mouth_width: float = 1.0, eye_open: float = 1.0) -> np.ndarray:
    """68 iBUG-ordered landmarks of a schematic frontal face (unit: eye distance 1)."""
    lm = np.zeros((68, 2))
    jaw = np.linspace(np.pi, 0, 17)
    lm[0:17] = np.c_[np.cos(jaw) * 1.0, 0.2 + np.sin(jaw) * 1.3]
    lm[17:27] = np.c_[np.linspace(-0.8, 0.8, 10), np.full(10, -0.35)]
    lm[27:31] = np.c_[np.zeros(4), np.linspace(0.0, 0.55, 4)]
    lm[31:36] = np.c_[np.linspace(-0.2, 0.2, 5), np.full(5, 0.62)]
    for start, cx in ((36, -0.5), (42, 0.5)):
        t = np.linspace(0, 2 * np.pi, 7)[:-1]
        lm[start : start + 6] = np.c_[cx - 0.15 * np.cos(t), -0.06 * eye_open * np.sin(t)]
    t = np.linspace(0, 2 * np.pi, 13)[:-1]
    lm[48:60] = np.c_[-0.4 * mouth_width * np.cos(t), 0.95 - (0.12 + mouth_open / 2) * np.sin(t)]
    t = np.linspace(0, 2 * np.pi, 9)[:-1]
    lm[60:68] = np.c_[-0.3 * mouth_width * np.cos(t), 0.95 - (mouth_open / 2) * np.sin(t)]
    return lm


def test_landmark_measures_respond_to_what_they_name_and_ignore_scale_and_rotation():
    from photokit.prior.attributes import landmark_measures

    base = landmark_measures(rough_face())
    assert abs(base["yaw"]) < 1 and base["mouth"] < 1
    assert landmark_measures(rough_face(mouth_width=1.2))["smile"] > base["smile"] + 10
    assert landmark_measures(rough_face(mouth_open=0.2))["mouth"] > base["mouth"] + 10
    assert landmark_measures(rough_face(eye_open=0.3))["eyes"] < base["eyes"] - 5
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = landmark_measures(3.0 * rough_face() @ rot.T + np.array([100.0, 40.0]))
    for name, value in base.items():
        assert moved[name] == pytest.approx(value, abs=1e-6), name
    nose_down = rough_face()
    nose_down[30, 1] += 0.3
    assert landmark_measures(nose_down)["pitch"] > base["pitch"] + 5
