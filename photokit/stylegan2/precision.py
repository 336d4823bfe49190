"""Reduced-precision synthesis: bfloat16 autocast around the synthesis network.

bf16 keeps float32's exponent range and 8 of its 24 mantissa bits, so nothing overflows and no loss
scaling is needed; on a CPU with native bf16 dot products (AVX512-BF16 or AMX) oneDNN's bf16 convolutions
run about twice as fast as fp32 and every elementwise pass moves half the bytes. Parameters, their
gradients and the synthesised image stay float32; only what autocast lowers (convolutions, matmuls) and
the activations between them are bf16. What that costs in accuracy against fp32 is measured by
``benchmarks/bench_generator_reference.py`` and bounded in ``tests/test_stylegan2_precision.py``: image
PSNR ~37-39 dB against fp32, gradients within a few percent. Adam-driven optimisation reaches the same
reconstruction in bf16; L-BFGS does not (its line search compares objective values more finely than bf16
resolves them, and it stalls), so callers running L-BFGS should keep fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from photokit.errors import PhotokitError
from photokit.stylegan2.vocab import Precision


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CPU with AVX512-BF16/AMX (as oneDNN reports), or a CUDA GPU
    with bf16 support (Ampere or later)."""
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return False


def resolve_precision(precision: Precision | str, device: torch.device) -> Precision:
    """FP32 or BF16 for ``device``. AUTO picks bf16 only on a CPU that computes it natively: emulated bf16 is
    slower than fp32, and on GPUs fp16 autocast is the usual choice. Explicit BF16 on a device without bf16
    autocast (MPS) is a ValueError."""
    precision = Precision(precision)
    if precision is Precision.AUTO:
        return Precision.BF16 if device.type == "cpu" and native_bf16(device) else Precision.FP32
    if precision is Precision.BF16 and device.type not in ("cpu", "cuda"):
        raise ValueError(f"precision bf16 is not supported on {device.type}: use fp32")
    return precision


def checked_precision(value: str) -> Precision:
    """A user's ``--precision`` as the enum; an unknown value is a one-line PhotokitError."""
    if value not in {p.value for p in Precision}:
        raise PhotokitError(f"unknown precision {value!r} (use {', '.join(p.value for p in Precision)})")
    return Precision(value)


def device_precision(precision: Precision | str, device: torch.device) -> Precision:
    """``resolve_precision`` for a user's choice: what ``device`` cannot run is a one-line PhotokitError."""
    try:
        return resolve_precision(checked_precision(precision), device)
    except ValueError as error:
        raise PhotokitError(str(error)) from None


@contextlib.contextmanager
def autocast_for(precision: Precision | str, device: torch.device) -> Iterator[Precision]:
    """Run the body in ``precision`` on ``device`` (bf16 autocast or nothing); yields the resolved precision."""
    resolved = resolve_precision(precision, device)
    if resolved is Precision.BF16:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield resolved
    else:
        yield resolved


@contextlib.contextmanager
def synthesis_precision(G: torch.nn.Module, precision: Precision | str) -> Iterator[Precision]:
    """Run ``G``'s synthesis network in ``precision`` (resolved for its device) for the body, then restore
    what it had: an optimisation loop can take its steps in bf16 and still measure its result in fp32."""
    synthesis = G.synthesis
    device = next(synthesis.parameters()).device
    before, synthesis.precision = synthesis.precision, resolve_precision(precision, device)
    try:
        yield synthesis.precision
    finally:
        synthesis.precision = before
