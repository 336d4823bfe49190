"""photokit's StyleGAN2 synthesis vs. NVIDIA's stylegan2-ada-pytorch, same weights, same process (issue 14).

NVIDIA's code (``../shared/reference/stylegan2-ada-pytorch``, benchmark-only: photokit never imports it)
builds an FFHQ-architecture generator with random weights; its ``state_dict()`` is loaded into photokit
through the normal checkpoint path, outputs are checked to agree, and then the two synthesis networks are
timed alternately (photokit, reference, photokit, ...), ``repeats`` times each, medians compared. Forward
is ``synthesis(ws)`` without gradients; forward+backward adds gradients to every synthesis parameter and to
``ws`` (one tuning step). Target: photokit >= 1.5x faster at 256 and 1024 px on the CPU. Wall and CPU
seconds (user + system of the process, both threads) are recorded with the load average, since other
processes share the machine; outputs and ws gradients are checked to agree first.
A third contender, photokit in bf16 (``SynthesisNetwork.precision = Precision.BF16``: bf16 autocast, on a
CPU with native bf16 only), is timed in the same alternation against the same fp32 reference, with its
accuracy against photokit's own fp32 on the same weights (output difference and PSNR, cosine and relative
error of the ws and weight gradients) and an end-to-end check: alpha+ projections of planted targets on
reduced 256 px generators, fp32 and bf16 from the same start, compared by PSNR against the planted truth.
On CUDA it also records autocast (fp16) figures; without a CUDA device that part says so.

    python -m benchmarks.run_all generator_reference
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from photokit.stylegan2.precision import resolve_precision
from photokit.stylegan2.vocab import Precision

REFERENCE = Path(os.environ.get("PHOTOKIT_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "reference"
REFERENCE = REFERENCE / "stylegan2-ada-pytorch"
TARGET = 1.5


def build_pair(resolution: int, device: torch.device):
    """(reference G, photokit G) with identical random weights, FFHQ channel formula, conv_clamp 256."""
    if str(REFERENCE) not in sys.path:
        sys.path.insert(0, str(REFERENCE))
    from training.networks import Generator as ReferenceGenerator

    from photokit.stylegan2.nvidia_state_dict import from_nvlabs_state_dict

    kwargs = {
        "z_dim": 512,
        "c_dim": 0,
        "w_dim": 512,
        "img_resolution": resolution,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 8},
        "synthesis_kwargs": {
            "channel_base": 32768 if resolution >= 512 else 16384,
            "channel_max": 512,
            "conv_clamp": 256,
            "num_fp16_res": 0,
        },
    }
    torch.manual_seed(resolution)
    reference = ReferenceGenerator(**kwargs).eval()
    ours = from_nvlabs_state_dict(reference.state_dict(), kwargs, "reference").eval()
    return reference.to(device), ours.to(device)


def _step(synthesis, ws: torch.Tensor, backward: bool, autocast: bool, device: torch.device) -> None:
    ctx = torch.autocast(device_type=device.type, dtype=torch.float16) if autocast else contextlib.nullcontext()
    if backward:
        w = ws.clone().requires_grad_(True)
        with ctx:
            img = synthesis(w, noise_mode="const")
        img.float().square().mean().backward()
        synthesis.zero_grad(set_to_none=True)
    else:
        with torch.no_grad(), ctx:
            synthesis(ws, noise_mode="const")


def _timed(synthesis, ws: torch.Tensor, backward: bool, autocast: bool, device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process: user + system, all threads) of one step."""
    from photokit.stylegan2.timing import synchronize

    synchronize(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    _step(synthesis, ws, backward, autocast, device)
    synchronize(device)
    return time.perf_counter() - started, time.process_time() - cpu_started


def _ws_gradient(synthesis, ws: torch.Tensor) -> torch.Tensor:
    w = ws.clone().requires_grad_(True)
    synthesis(w, noise_mode="const").square().mean().backward()
    synthesis.zero_grad(set_to_none=True)
    assert w.grad is not None
    return w.grad


def _agreement(reference, ours, ws: torch.Tensor) -> dict:
    """Largest output difference and largest ws-gradient difference (relative to the largest gradient)."""
    with torch.no_grad():
        out = (ours.synthesis(ws, noise_mode="const") - reference.synthesis(ws, noise_mode="const")).abs().max()
    grad_ref = _ws_gradient(reference.synthesis, ws)
    grad_diff = (_ws_gradient(ours.synthesis, ws) - grad_ref).abs().max() / grad_ref.abs().max()
    return {"max_abs_output_difference": float(out), "max_rel_ws_gradient_difference": float(grad_diff)}


def _gradients(synthesis, ws: torch.Tensor, precision: Precision) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(image, ws gradient, {parameter name: gradient}) of mean(image^2) in ``precision``."""
    synthesis.precision = precision
    w = ws.clone().requires_grad_(True)
    image = synthesis(w, noise_mode="const")
    image.square().mean().backward()
    grads = {name: p.grad.clone() for name, p in synthesis.named_parameters() if p.grad is not None}
    synthesis.zero_grad(set_to_none=True)
    synthesis.precision = Precision.FP32
    assert w.grad is not None
    return image.detach(), w.grad, grads


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| (L2 over all elements)."""
    return float((a.double() - b.double()).norm() / b.double().norm())


def bf16_accuracy(synthesis, ws: torch.Tensor) -> dict:
    """photokit bf16 against photokit fp32, same weights and ws: what the bf16 speed costs in accuracy.
    PSNR uses peak-to-peak 2 (images nominally in [-1, 1]; random weights overshoot, nothing is clamped)."""
    img32, gws32, grads32 = _gradients(synthesis, ws, Precision.FP32)
    img16, gws16, grads16 = _gradients(synthesis, ws, Precision.BF16)
    mse = float((img16 - img32).square().mean())
    relative = {name: _relative_error(grads16[name], g) for name, g in grads32.items() if g.norm() > 0}
    worst = max(relative, key=relative.__getitem__)
    return {
        "output_max_abs_difference": round(float((img16 - img32).abs().max()), 5),
        "output_psnr_db": round(10 * torch.log10(torch.tensor(4.0 / mse)).item(), 2),
        "fp32_output_range": [round(float(img32.min()), 3), round(float(img32.max()), 3)],
        "ws_gradient_cosine": round(_cosine(gws16, gws32), 6),
        "ws_gradient_relative_error": round(_relative_error(gws16, gws32), 5),
        "weight_gradient_min_cosine": round(min(_cosine(grads16[n], grads32[n]) for n in relative), 6),
        "weight_gradient_median_relative_error": round(statistics.median(relative.values()), 5),
        "weight_gradient_max_relative_error": {"parameter": worst, "value": round(relative[worst], 5)},
        "loss": "mean(image^2), gradients of every synthesis parameter and of ws",
    }


def _contenders(reference, ours, bf16: bool) -> dict[str, tuple[torch.nn.Module, Precision | None]]:
    """name -> (synthesis network, photokit precision to set before each call; None for the reference)."""
    out = {"photokit": (ours.synthesis, Precision.FP32), "reference": (reference.synthesis, None)}
    if bf16:
        out["photokit_bf16"] = (ours.synthesis, Precision.BF16)
    return out


def _row(med: dict[str, float], med_cpu: dict[str, float], name: str, batch: int) -> dict:
    return {
        f"{name}_ms_per_image": round(med[name] * 1000 / batch, 1),
        "speedup": round(med["reference"] / med[name], 3),
        f"{name}_cpu_s": round(med_cpu[name], 3),
        "cpu_speedup": round(med_cpu["reference"] / med_cpu[name], 3),
        "meets_target": med["reference"] / med[name] >= TARGET,
    }


def _time_mode(contenders: dict, ws: torch.Tensor, backward: bool, repeats: int, autocast: bool, device) -> dict:
    """Medians of alternating calls (photokit, reference[, photokit_bf16], photokit, ...), after one warm-up each."""
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for synthesis, precision in contenders.values():  # warm-up
        if precision is not None:
            synthesis.precision = precision
        _step(synthesis, ws, backward, autocast, device)
    for _ in range(repeats):
        for name, (synthesis, precision) in contenders.items():
            if precision is not None:
                synthesis.precision = precision
            seconds, cpu_seconds = _timed(synthesis, ws, backward, autocast, device)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    batch = ws.shape[0]
    row = {**_row(med, med_cpu, "photokit", batch), "reference_ms_per_image": round(med["reference"] * 1000 / batch, 1)}
    row["reference_cpu_s"] = round(med_cpu["reference"], 3)
    if "photokit_bf16" in contenders:
        row["bf16"] = _row(med, med_cpu, "photokit_bf16", batch)
    row["wall_s"] = {k: [round(t, 3) for t in v] for k, v in wall.items()}
    row["load_average_after"] = list(os.getloadavg())
    return row


def compare(resolution: int, batch: int, repeats: int, device: torch.device, autocast: bool = False) -> dict:
    reference, ours = build_pair(resolution, device)
    ws = ours.mapping(torch.randn(batch, 512, generator=torch.Generator().manual_seed(1)).to(device)).detach()
    bf16 = not autocast and resolve_precision(Precision.AUTO, device) is Precision.BF16
    out: dict = {"batch": batch, "repeats": repeats, **_agreement(reference, ours, ws)}
    if bf16:
        out["bf16_accuracy_vs_fp32"] = bf16_accuracy(ours.synthesis, ws)
    contenders = _contenders(reference, ours, bf16)
    for mode in ("forward", "forward_backward"):
        out[mode] = _time_mode(contenders, ws, mode == "forward_backward", repeats, autocast, device)
    ours.synthesis.precision = Precision.FP32
    return out


def bf16_projection(device: torch.device, quick: bool) -> dict:
    """End to end: alpha+ 4x super-resolution of planted targets (``bench_restore_quality``'s setting) with
    photokit's CPU default (Adam, 100 steps) and L-BFGS, fp32 and bf16 from the same start; PSNR against the
    planted truth (rendered in fp32), final reconstruction loss and CPU seconds of each."""
    from benchmarks.bench_restore_quality import plant, project, quality_loss, reduced_generator
    from photokit.prior.vocab import ProjectionOptimizer
    from photokit.restore.options import CPU_DEFAULT_STEPS, LBFGS_DEFAULT_STEPS
    from photokit.stylegan2.network import build_tiny_generator

    loss_fn, loss_name = quality_loss(device)
    schedules = {
        "adam": (ProjectionOptimizer.ADAM, CPU_DEFAULT_STEPS),
        "lbfgs": (ProjectionOptimizer.LBFGS, LBFGS_DEFAULT_STEPS),
    }
    rows: list[dict] = []
    gaps: dict[str, list[float]] = {name: [] for name in schedules}
    for g in range(1 if quick else 2):  # one planted target per generator: ~4 projections per precision
        G = (build_tiny_generator(32, seed=g) if quick else reduced_generator(256, 64, seed=g)).to(device)
        target = plant(G, 10 * g, device)
        print(f"bf16 projection: generator {g}, target {10 * g}", file=sys.stderr, flush=True)
        row: dict = {"generator_seed": g, "target_seed": 10 * g}
        for name, (optimizer, steps) in schedules.items():
            runs = {}
            for precision in (Precision.FP32, Precision.BF16):
                G.synthesis.precision = precision
                runs[str(precision)] = project(G, target, loss_fn, optimizer, steps)
            G.synthesis.precision = Precision.FP32
            gap = round(runs["fp32"]["psnr_db"] - runs["bf16"]["psnr_db"], 3)
            gaps[name].append(gap)
            row[name] = {**runs, "psnr_gap_db": gap}
        row["load_average"] = list(os.getloadavg())
        rows.append(row)
    return {
        "generators": "tiny 32 px" if quick else "256 px, NVIDIA formula capped at 64 channels, random weights",
        "task": "alpha+ 4x super-resolution of planted targets (benchmarks/bench_restore_quality.py)",
        "loss": loss_name,
        "rows": rows,
        "psnr_gap_db": {name: {"max": max(v), "min": min(v)} for name, v in gaps.items()},
        "gap": "fp32 PSNR minus bf16 PSNR against the planted truth (positive: bf16 worse)",
    }


def run(device: str = "cpu", quick: bool = False, projection: bool = True) -> dict:
    """All parts; ``BENCH_THREADS`` sets torch's CPU threads (default 2): on a machine shared with other
    jobs, one thread's CPU seconds are the steadiest comparison (two threads spin-wait on each other)."""
    from photokit.devices import describe_device, resolve_device

    if not REFERENCE.is_dir():
        return {"skipped": f"NVIDIA's reference code is absent ({REFERENCE})"}
    dev = resolve_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", min(2, os.cpu_count() or 1))))
    results: dict = {
        "device": describe_device(dev),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()),
        "method": "same process, same weights, alternating photokit/reference calls, median of repeats",
        "photokit_paths": "modulated conv per layer by size (fused_modconv=None); channels-last without autograd",
        "photokit_bf16": "SynthesisNetwork.precision = Precision.BF16 (bf16 autocast), timed against fp32 NVIDIA",
        "resolutions": {},
    }
    plan = {256: 5, 1024: 2} if not quick else {256: 2}
    for resolution, repeats in plan.items():
        results["resolutions"][str(resolution)] = compare(resolution, 1, repeats, dev)
    if dev.type == "cuda":
        results["autocast_fp16"] = {
            str(r): compare(r, 8 if r == 256 else 2, 5, dev, autocast=True) for r in (256, 1024)
        }
    else:
        results["gpu"] = "skipped: no CUDA device"
    if resolve_precision(Precision.AUTO, dev) is not Precision.BF16:
        results["bf16"] = f"skipped: no native bf16 on {describe_device(dev)}"
    elif projection:
        results["bf16_projection"] = bf16_projection(dev, quick)
    else:
        results["bf16_projection"] = "skipped: --no-projection"
    results["load_average_at_end"] = list(os.getloadavg())
    return results


if __name__ == "__main__":  # python -m benchmarks.bench_generator_reference [cpu] [--quick] [--no-projection]
    import json

    print(
        json.dumps(
            run(
                sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "cpu",
                quick="--quick" in sys.argv,
                projection="--no-projection" not in sys.argv,
            ),
            indent=2,
        )
    )
