"""alpha / alpha+ space (MyStyle section 3.3): latent codes as constrained combinations of a person's anchors.

A person's prior is the dilated simplex P_beta spanned by their N anchors (W codes, shape (N, w_dim)):
coefficients that sum to 1 and are each >= -beta. alpha+ gives every generator layer its own
coefficients: ``alpha_plus[l] = constrain(alpha + delta[l])`` with a shared ``alpha`` (N,) and per-layer
offsets ``delta`` (num_ws, N); the latent is ``alpha_plus @ anchors`` (num_ws, w_dim).

Everything here is pure tensor math (no I/O, no generator) so tests can hit it directly.

Deliberate choices where the paper, the authors' code and the math disagree (see also
``../shared/papers/reference-facts.md``):

- **beta default.** The paper uses 0.05 for super-resolution and 0.02 for inpainting; the authors' code
  defaults to 0.03 for both. photokit follows the paper, per task.
- **Where the penalties look.** The paper's L_sum (eq. 6) is on the constrained coefficients; the
  authors' code computes it on the raw, pre-softplus values. photokit follows the paper: the sum
  penalty is on the constrained (post-softplus, pre-normalisation) coefficients, the value the
  normalisation would otherwise have to correct. The Delta regulariser (eq. 7) is on the raw offsets in both.
- **How "normalise to sum 1" keeps the -beta bound.** Dividing by the sum (the obvious reading) breaks
  ``alpha >= -beta`` whenever the sum is below 1, and flips signs when it is negative. photokit rescales
  in the shifted coordinates ``alpha + beta`` (all > 0 after the softplus), which lands exactly on
  P_beta, equals plain division when beta = 0 and is the identity when the sum already is 1.
  With ``beta=None`` (the unconstrained affine span) the sum is fixed by an additive shift instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from photokit.prior.vocab import ProjectionOptimizer


@dataclass(frozen=True)
class AlphaConfig:
    """Projection hyper-parameters. Defaults: MyStyle (Nitzan et al. 2022), sec. 3.3 and appendix B.3,
    and the authors' code (google/mystyle) for the optimiser settings the paper leaves out."""

    sharpness: float = 100.0  # s in eq. (5)
    sum_weight: float = 10.0  # weight of L_sum, eq. (6), averaged over layers
    reg_weight: float = 10.0  # lambda_reg of eq. (7)/(8)
    reg_layer_fraction: float = 2 / 3  # Delta is regularised on the first 12 of 18 layers at 1024 px
    optimizer: ProjectionOptimizer = ProjectionOptimizer.ADAM  # photokit's CPU default differs: restore/options.py
    lr: float = 5e-3  # Adam (0.9, 0.999), no schedule
    adam_betas: tuple[float, float] = (0.9, 0.999)
    steps: int = 1000
    mse_weight: float = 1.0  # lambda_L2 in eq. (1): loss = LPIPS + 1.0 x MSE
    beta_super_resolution: float = 0.05
    beta_inpainting: float = 0.02
    per_layer: bool = True  # alpha+ (True) or plain alpha (False: Delta stays 0)

    def beta_for(self, task: str) -> float:
        """The paper's beta for a task: 'inpaint' (0.02) or 'super_resolution' (0.05)."""
        return self.beta_inpainting if task == "inpaint" else self.beta_super_resolution


def regularised_layers(num_ws: int, fraction: float = 2 / 3) -> int:
    """How many leading layers have their Delta regularised (12 of 18 at 1024 px, 9 of 14 at 256 px)."""
    return int(math.floor(num_ws * fraction + 1e-9))


def init_alpha(num_anchors: int, num_ws: int, dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw parameters at the centre of P: alpha = 1/N everywhere (appendix B.3), Delta = 0."""
    alpha = torch.full((num_anchors,), 1.0 / num_anchors, dtype=dtype, device=device)
    delta = torch.zeros((num_ws, num_anchors), dtype=dtype, device=device)
    return alpha, delta


def softplus_shift(x: torch.Tensor, beta: float | None, sharpness: float = 100.0) -> torch.Tensor:
    """Eq. (5): ``softplus_s(x + beta) - beta``, a smooth floor at -beta. ``beta=None``: identity."""
    if beta is None:
        return x
    return F.softplus(x + beta, beta=sharpness) - beta


def normalise_rows(coeffs: torch.Tensor, beta: float | None) -> torch.Tensor:
    """Make every row (layer) sum to 1 while keeping each coefficient >= -beta (see module docstring)."""
    if beta is None:
        n = coeffs.shape[-1]
        return coeffs + (1.0 - coeffs.sum(dim=-1, keepdim=True)) / n
    shifted = (coeffs + beta).clamp_min(torch.finfo(coeffs.dtype).tiny)
    n = coeffs.shape[-1]
    return shifted * ((1.0 + n * beta) / shifted.sum(dim=-1, keepdim=True)) - beta


def constrained_coefficients(
    alpha: torch.Tensor, delta: torch.Tensor, beta: float | None, sharpness: float = 100.0
) -> torch.Tensor:
    """Per-layer coefficients before normalisation: softplus-shifted ``alpha + delta[l]``, (num_ws, N)."""
    return softplus_shift(alpha.unsqueeze(0) + delta, beta, sharpness)


def alpha_plus(alpha: torch.Tensor, delta: torch.Tensor, beta: float | None, sharpness: float = 100.0) -> torch.Tensor:
    """The alpha+ coefficients (num_ws, N): every row sums to 1 and no entry is below -beta."""
    return normalise_rows(constrained_coefficients(alpha, delta, beta, sharpness), beta)


def latent_from_alpha(coefficients: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """``alpha_plus @ anchors``: (num_ws, N) x (N, w_dim) -> ws (num_ws, w_dim)."""
    return coefficients @ anchors


def sum_penalty(coeffs: torch.Tensor) -> torch.Tensor:
    """Eq. (6) per layer, averaged over layers: mean_l (sum_i coeffs[l, i] - 1)^2."""
    return (coeffs.sum(dim=-1) - 1.0).pow(2).mean()


def delta_penalty(delta: torch.Tensor, num_regularised: int, smoothing: float = 1e-12) -> torch.Tensor:
    """Eq. (7): sum of per-layer L2 norms of Delta over the first ``num_regularised`` layers.

    The norm's gradient is undefined at 0 (where Delta starts); ``smoothing`` (added to the squared
    norm) keeps it finite. Quasi-Newton optimisers need a larger one: they stall at the kink. The
    smoothed norm's value at 0 is subtracted, so the penalty is 0 at Delta = 0 whatever the smoothing.
    """
    head = delta[:num_regularised]
    return ((head.pow(2).sum(dim=-1) + smoothing).sqrt() - math.sqrt(smoothing)).sum()


def regularisation(
    alpha: torch.Tensor, delta: torch.Tensor, beta: float | None, config: AlphaConfig, smoothing: float = 1e-12
) -> torch.Tensor:
    """sum_weight x L_sum(constrained, pre-normalisation) + reg_weight x L_reg(Delta), eq. (8) minus L_rec."""
    coeffs = constrained_coefficients(alpha, delta, beta, config.sharpness)
    total = config.sum_weight * sum_penalty(coeffs)
    if config.per_layer:
        total = total + config.reg_weight * delta_penalty(
            delta, regularised_layers(delta.shape[0], config.reg_layer_fraction), smoothing
        )
    return total


def min_dilation(coefficients: torch.Tensor) -> float:
    """The smallest beta whose P_beta contains these coefficients: |min(min_i alpha_i, 0)|."""
    return float(coefficients.min().clamp_max(0.0).abs())
