"""The generator layer's closed vocabularies, importable without loading torch (the CLI's option types)."""

from __future__ import annotations

from enum import StrEnum


class LossKind(StrEnum):
    """The reconstruction loss of inversion, tuning and restoration."""

    LPIPS = "lpips"  # LPIPS + lambda_L2 x MSE, the paper's
    MSE = "mse"  # MSE alone: explicitly degraded, for machines without the LPIPS backbone


class Precision(StrEnum):
    """The arithmetic of the synthesis network's convolutions and matmuls (see ``photokit.stylegan2.precision``)."""

    FP32 = "fp32"  # float32 throughout: reproduces the reference implementations
    BF16 = "bf16"  # bfloat16 autocast: convolutions and matmuls in bf16, parameters, gradients and output fp32
    AUTO = "auto"  # bf16 on a CPU with native bf16 instructions (AVX512-BF16, AMX), fp32 elsewhere
