"""photokit's StyleGAN2 synthesis vs. NVIDIA's stylegan2-ada-pytorch, same weights, same process (issue 14).

NVIDIA's code (``../shared/reference/stylegan2-ada-pytorch``, benchmark-only: photokit never imports it)
builds an FFHQ-architecture generator with random weights; its ``state_dict()`` is loaded into photokit
through the normal checkpoint path, outputs are checked to agree, and then the two synthesis networks are
timed alternately (photokit, reference, photokit, ...), ``repeats`` times each, medians compared. Forward
is ``synthesis(ws)`` without gradients; forward+backward adds gradients to every synthesis parameter and to
``ws`` (one tuning step). Target: photokit >= 1.5x faster at 256 and 1024 px on the CPU. Wall and CPU
seconds (user + system of the process, both threads) are recorded with the load average, since other
processes share the machine; outputs and ws gradients are checked to agree first.
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


def compare(resolution: int, batch: int, repeats: int, device: torch.device, autocast: bool = False) -> dict:
    reference, ours = build_pair(resolution, device)
    ws = ours.mapping(torch.randn(batch, 512, generator=torch.Generator().manual_seed(1)).to(device)).detach()
    out: dict = {"batch": batch, "repeats": repeats, **_agreement(reference, ours, ws)}
    for mode in ("forward", "forward_backward"):
        backward = mode == "forward_backward"
        wall: dict[str, list[float]] = {"photokit": [], "reference": []}
        cpu: dict[str, list[float]] = {"photokit": [], "reference": []}
        for net in (ours, reference):  # warm-up
            _step(net.synthesis, ws, backward, autocast, device)
        for _ in range(repeats):
            for name, net in (("photokit", ours), ("reference", reference)):
                seconds, cpu_seconds = _timed(net.synthesis, ws, backward, autocast, device)
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
        med = {k: statistics.median(v) for k, v in wall.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        out[mode] = {
            "photokit_ms_per_image": round(med["photokit"] * 1000 / batch, 1),
            "reference_ms_per_image": round(med["reference"] * 1000 / batch, 1),
            "speedup": round(med["reference"] / med["photokit"], 3),
            "photokit_cpu_s": round(med_cpu["photokit"], 3),
            "reference_cpu_s": round(med_cpu["reference"], 3),
            "cpu_speedup": round(med_cpu["reference"] / med_cpu["photokit"], 3),
            "wall_s": {k: [round(t, 3) for t in v] for k, v in wall.items()},
            "meets_target": med["reference"] / med["photokit"] >= TARGET,
            "load_average_after": list(os.getloadavg()),
        }
    return out


def run(device: str = "cpu", quick: bool = False) -> dict:
    from photokit.devices import describe_device, resolve_device

    if not REFERENCE.is_dir():
        return {"skipped": f"NVIDIA's reference code is absent ({REFERENCE})"}
    dev = resolve_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    results: dict = {
        "device": describe_device(dev),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()),
        "method": "same process, same weights, alternating photokit/reference calls, median of repeats",
        "photokit_paths": "modulated conv per layer by size (fused_modconv=None); channels-last without autograd",
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
    results["load_average_at_end"] = list(os.getloadavg())
    return results


if __name__ == "__main__":
    import json

    print(
        json.dumps(
            run(
                sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "cpu",
                quick="--quick" in sys.argv,
            ),
            indent=2,
        )
    )
