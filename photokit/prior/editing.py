"""Personalised semantic editing (MyStyle sec. 3.4, appendix B.4): a W direction, moved into alpha space.

A face projected into a person's alpha+ space has coefficients ``alpha`` (num_ws, N) over the anchors
``A`` (N, w_dim). An edit direction ``n`` (w_dim,) or (num_ws, w_dim) is

1. projected onto the anchors' span V and expressed in alpha coordinates: ``gamma = (A A^T)^-1 A n``
   (eq. 9's gamma; the paper writes anchors as columns of M, here they are rows of A);
2. applied as ``alpha_edit = alpha + theta * gamma`` on every layer (eq. 9);
3. checked: the dilation it needs is ``|min(min_i alpha_i, 0)|`` (sec. 3.4; the authors' code forgets
   the clamp at 0, so an edit deep inside the hull reads as needing dilation), against the allowed beta;
4. resolved by a policy when it needs more than beta (B.4): STOP where the line leaves P_beta, CONTINUE
   regardless, or PROJECT back: per layer ``min ||alpha A - w_edit||^2`` s.t. ``sum(alpha) = 1``,
   ``alpha >= -beta``.

Deliberate difference from the paper: ``gamma`` from (A A^T)^-1 A n generally changes ``sum(alpha)``
(whenever n̂ has a component along the anchors' mean), so the edited code leaves the affine hull where
P_beta lives and the dilation test cannot see it. photokit's default (``within_hull=True``) projects n
onto the directions *inside* the hull (the span of the differences w_i - w_0), so ``sum(gamma) = 0`` and
every edited alpha still sums to 1. ``span_coordinates`` is the paper's formula, kept for comparison.

Pure tensor math: no generator, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from photokit.prior.alpha import min_dilation
from photokit.prior.vocab import EditPolicy

# The B.4 experiment edits with beta = 0.02 (and inverts with PTI); photokit's default for editing.
EDIT_BETA = 0.02


def span_coordinates(anchors: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """The paper's gamma = (A A^T)^-1 A n: alpha coordinates of n's projection onto span(anchors).

    ``anchors`` (N, w_dim); ``direction`` (w_dim,) -> (N,) or (num_ws, w_dim) -> (num_ws, N). A pseudo-inverse
    stands in for the inverse when anchors are linearly dependent (appendix B.5).
    """
    a = anchors.double()
    gram_inv = torch.linalg.pinv(a @ a.T, hermitian=True)
    return (direction.double() @ a.T @ gram_inv).to(anchors.dtype)


def hull_coordinates(anchors: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """gamma with sum(gamma) = 0 per layer: n projected onto span{w_i - w_0}, least squares, as alpha coordinates."""
    a = anchors.double()
    diffs = a[1:] - a[:1]  # (N-1, w_dim)
    if diffs.shape[0] == 0:
        return torch.zeros(direction.shape[:-1] + (1,), dtype=anchors.dtype)
    coeffs = direction.double() @ diffs.T @ torch.linalg.pinv(diffs @ diffs.T, hermitian=True)  # (..., N-1)
    first = -coeffs.sum(dim=-1, keepdim=True)
    return torch.cat([first, coeffs], dim=-1).to(anchors.dtype)


def direction_coordinates(anchors: torch.Tensor, direction: torch.Tensor, within_hull: bool = True) -> torch.Tensor:
    """gamma for ``direction``: inside the hull's affine span (default) or the paper's linear span."""
    return hull_coordinates(anchors, direction) if within_hull else span_coordinates(anchors, direction)


def kept_fraction(anchors: torch.Tensor, direction: torch.Tensor, gamma: torch.Tensor) -> float:
    """||n̂|| / ||n||: how much of a direction the person's anchors can express (1 = all of it)."""
    projected = gamma.to(anchors.dtype) @ anchors
    norm = float(direction.norm())
    return float(projected.norm()) / norm if norm > 0 else 0.0


def per_layer(gamma: torch.Tensor, num_ws: int) -> torch.Tensor:
    """(N,) -> (num_ws, N): a single-layer direction applies to every layer."""
    return gamma.unsqueeze(0).expand(num_ws, -1) if gamma.dim() == 1 else gamma


def apply_edit(alpha: torch.Tensor, gamma: torch.Tensor, amount: float) -> torch.Tensor:
    """Eq. (9) in alpha coordinates: alpha + theta * gamma, per layer."""
    return alpha + amount * per_layer(gamma, alpha.shape[0]).to(alpha)


def largest_safe_amount(alpha: torch.Tensor, gamma: torch.Tensor, amount: float, beta: float) -> float:
    """The part of ``amount`` (same sign, |t| <= |amount|) that keeps every coefficient >= -beta.

    Each coefficient moving down, ``alpha_i + t g_i`` with ``t g_i < 0``, reaches -beta at
    ``t = (alpha_i + beta) / -g_i``; the edit stops at the first one. A start already below -beta
    (numerically) stops at 0.
    """
    g = per_layer(gamma, alpha.shape[0]).to(alpha) * (1.0 if amount >= 0 else -1.0)
    falling = g < 0
    if not bool(falling.any()):
        return float(amount)
    room = ((alpha + beta).clamp_min(0.0)[falling] / -g[falling]).min()
    return float(min(abs(amount), float(room))) * (1.0 if amount >= 0 else -1.0)


def project_simplex(x: torch.Tensor, total: float = 1.0) -> torch.Tensor:
    """Euclidean projection of each row onto {v >= 0, sum v = total} (sort-based; Held et al. 1974)."""
    n = x.shape[-1]
    u, _ = torch.sort(x, dim=-1, descending=True)
    css = u.cumsum(dim=-1) - total
    k = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    support = (u - css / k) > 0
    rho = support.to(torch.int64).cumsum(dim=-1).argmax(dim=-1, keepdim=True)  # last True index
    theta = css.gather(-1, rho) / (rho + 1).to(x.dtype)
    return (x - theta).clamp_min(0.0)


def project_dilated_simplex(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Euclidean projection of each row onto A_beta = {sum = 1, alpha >= -beta} (eq. 2): a simplex shifted by -beta."""
    n = x.shape[-1]
    return project_simplex(x + beta, total=1.0 + n * beta) - beta


def project_to_hull(
    target: torch.Tensor, anchors: torch.Tensor, beta: float, iterations: int = 2000, tol: float = 1e-10
) -> torch.Tensor:
    """B.4's PROJECT: per layer, ``argmin ||alpha A - target_l A||^2`` over alpha in A_beta.

    ``target`` (num_ws, N) are the (out-of-bounds) coefficients of the edited code. A convex quadratic
    program, solved by accelerated projected gradient (FISTA) with the exact projection above; the metric
    is the anchors' Gram matrix, so the distance is measured in W, as the paper asks. The step comes from
    the Gram matrix restricted to the plane sum = 1 (real anchors share a large common part, w_avg, whose
    eigenvalue would otherwise make the step tiny and the solver crawl).
    """
    a = anchors.double()
    gram = a @ a.T
    n = gram.shape[0]
    centre = torch.eye(n, dtype=gram.dtype) - 1.0 / n
    step = 1.0 / max(float(torch.linalg.eigvalsh(centre @ gram @ centre).max()), 1e-12)
    t_goal = target.double()
    x = project_dilated_simplex(t_goal, beta)
    y, t = x.clone(), 1.0
    for _ in range(iterations):
        grad = (y - t_goal) @ gram
        x_next = project_dilated_simplex(y - step * grad, beta)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y = x_next + ((t - 1) / t_next) * (x_next - x)
        moved = float((x_next - x).abs().max())
        x, t = x_next, t_next
        if moved < tol:
            break
    return x.to(target.dtype)


def w_distance(alpha: torch.Tensor, target: torch.Tensor, anchors: torch.Tensor) -> float:
    """||alpha A - target A|| over all layers: how far a resolved edit is from the requested one, in W."""
    return float(((alpha - target).double() @ anchors.double()).norm())


@dataclass(frozen=True)
class EditOutcome:
    """One edit after its policy: what was asked, what it needed, what was done."""

    requested: float
    applied: float  # the amount actually travelled along the direction (STOP may cut it)
    dilation_needed: float  # min dilation of alpha + requested * gamma
    dilation_after: float  # min dilation of the result
    action: str  # 'within beta', 'stopped', 'continued past beta', 'projected back'
    off_line: float = 0.0  # W distance between the result and the straight-line edit (PROJECT)


def resolve_edit(
    alpha: torch.Tensor, gamma: torch.Tensor, amount: float, beta: float, policy: EditPolicy, anchors: torch.Tensor
) -> tuple[torch.Tensor, EditOutcome]:
    """Apply one edit to ``alpha`` (num_ws, N) under ``policy``; the new coefficients and what happened."""
    wanted = apply_edit(alpha, gamma, amount)
    needed = min_dilation(wanted)
    if needed <= beta + 1e-9 or policy is EditPolicy.CONTINUE:
        action = "within beta" if needed <= beta + 1e-9 else "continued past beta"
        return wanted, EditOutcome(amount, amount, needed, needed, action)
    if policy is EditPolicy.STOP:
        safe = largest_safe_amount(alpha, gamma, amount, beta)
        result = apply_edit(alpha, gamma, safe)
        return result, EditOutcome(amount, safe, needed, min_dilation(result), "stopped")
    result = project_to_hull(wanted, anchors, beta)
    outcome = EditOutcome(
        amount, amount, needed, min_dilation(result), "projected back", w_distance(result, wanted, anchors)
    )
    return result, outcome
