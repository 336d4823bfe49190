"""alpha / alpha+ space math (photokit.prior.alpha): the constraint, the penalties, the latent."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from photokit.prior import alpha as A


def test_init_is_centre_of_the_simplex():
    alpha, delta = A.init_alpha(8, 18)
    coeffs = A.alpha_plus(alpha, delta, beta=0.05)
    assert coeffs.shape == (18, 8)
    torch.testing.assert_close(coeffs, torch.full((18, 8), 1 / 8))


def test_regularised_layers_is_first_two_thirds():
    assert A.regularised_layers(18) == 12  # 1024 px, as in the paper
    assert A.regularised_layers(14) == 9  # 256 px


def test_softplus_shift_is_a_soft_floor_at_minus_beta():
    x = torch.tensor([-5.0, -0.2, 0.0, 0.3, 2.0])
    y = A.softplus_shift(x, beta=0.05, sharpness=100.0)
    assert bool((y >= -0.05).all()) and float(y[0]) < -0.049  # floored, not clipped elsewhere
    torch.testing.assert_close(y[-2:], x[-2:], atol=1e-4, rtol=0)  # identity well above the floor
    torch.testing.assert_close(A.softplus_shift(x, beta=None), x)


def test_sum_penalty_is_mean_of_squared_layer_excess():
    coeffs = torch.tensor([[0.5, 0.5], [1.0, 1.0], [0.0, 0.0]])
    assert float(A.sum_penalty(coeffs)) == pytest.approx((0 + 1 + 1) / 3)


def test_delta_penalty_counts_only_leading_layers():
    delta = torch.zeros(6, 3)
    delta[0] = torch.tensor([3.0, 4.0, 0.0])  # norm 5
    delta[5] = 100.0  # a free (unregularised) layer
    assert float(A.delta_penalty(delta, 4)) == pytest.approx(5.0, abs=1e-4)


def test_delta_penalty_smoothing_keeps_zero_at_zero():
    # The smoothing only rounds the kink: no constant floor that would swamp a small reconstruction term.
    assert float(A.delta_penalty(torch.zeros(6, 3), 4, smoothing=1e-2)) == 0.0
    delta = torch.zeros(6, 3)
    delta[1] = torch.tensor([0.0, 3.0, 4.0])
    assert float(A.delta_penalty(delta, 4, smoothing=1e-2)) == pytest.approx(5.0, abs=0.1)


def test_regularisation_uses_prenormalisation_sums():
    config = A.AlphaConfig()
    alpha = torch.full((4,), 0.5)  # sums to 2 before normalisation
    delta = torch.zeros(6, 4)
    reg = A.regularisation(alpha, delta, beta=0.05, config=config)
    assert float(reg) == pytest.approx(config.sum_weight * 1.0, rel=1e-3)


def test_latent_is_combination_of_anchors():
    anchors = torch.randn(3, 5)
    coeffs = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    ws = A.latent_from_alpha(coeffs, anchors)
    torch.testing.assert_close(ws[0], anchors[0])
    torch.testing.assert_close(ws[1], 0.2 * anchors[0] + 0.3 * anchors[1] + 0.5 * anchors[2])


def test_unconstrained_span_keeps_negative_weights_but_sums_to_one():
    alpha = torch.tensor([2.0, -3.0, 0.5])
    coeffs = A.alpha_plus(alpha, torch.zeros(2, 3), beta=None)
    torch.testing.assert_close(coeffs.sum(-1), torch.ones(2))
    assert float(coeffs.min()) < -1.0


def test_beta_defaults_follow_the_paper():
    config = A.AlphaConfig()
    assert config.beta_for("super_resolution") == 0.05
    assert config.beta_for("inpaint") == 0.02


@hsettings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 12),
    layers=st.integers(1, 18),
    beta=st.sampled_from([0.0, 0.02, 0.05, 0.3]),
    scale=st.floats(0.01, 50.0),
    seed=st.integers(0, 2**16),
)
def test_constraint_property_sums_to_one_and_floor_holds(n, layers, beta, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.randn(n, generator=gen) * scale
    delta = torch.randn(layers, n, generator=gen) * scale
    coeffs = A.alpha_plus(alpha, delta, beta)
    assert torch.isfinite(coeffs).all()
    torch.testing.assert_close(coeffs.sum(-1), torch.ones(layers), atol=1e-4, rtol=0)
    assert float(coeffs.min()) >= -beta - 1e-5
    assert A.min_dilation(coeffs) <= beta + 1e-5


def test_optimised_alpha_plus_stays_in_p_beta():
    """After gradient steps that push hard towards negative weights, the result is still in P_beta."""
    alpha, delta = A.init_alpha(5, 6)
    alpha.requires_grad_(True)
    delta.requires_grad_(True)
    opt = torch.optim.Adam([alpha, delta], lr=0.05)
    for _ in range(200):
        coeffs = A.alpha_plus(alpha, delta, 0.05)
        loss = coeffs[:, 0].sum() * -1 + coeffs[:, 1].sum()  # wants coefficient 1 very negative
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = A.alpha_plus(alpha, delta, 0.05).detach()
    torch.testing.assert_close(final.sum(-1), torch.ones(6), atol=1e-5, rtol=0)
    assert float(final.min()) >= -0.05 - 1e-6
    assert float(final[:, 1].max()) < 0  # it did go negative, down to the floor only
    assert not math.isnan(float(final.sum()))
