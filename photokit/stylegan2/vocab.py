"""The generator layer's closed vocabularies, importable without loading torch (the CLI's option types)."""

from __future__ import annotations

from enum import StrEnum


class LossKind(StrEnum):
    """The reconstruction loss of inversion, tuning and restoration."""

    LPIPS = "lpips"  # LPIPS + lambda_L2 x MSE, the paper's
    MSE = "mse"  # MSE alone: explicitly degraded, for machines without the LPIPS backbone
