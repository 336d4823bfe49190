"""StyleGAN2 synthesis speed: ms per image, forward and forward+backward, at 256 and 1024 px.

Random weights in the architectures of the real FFHQ generators (NVIDIA layouts from
``../shared/fixtures/stylegan2/state_dict_manifests.json``; without ../shared, the same architecture from
NVIDIA's channel formula). For each size it tries a few batch sizes and both modulated-conv paths
(grouped conv "fused", and shared-weight conv with activation scaling "unfused") and reports the fastest.
Forward+backward is one tuning step (gradients to every synthesis parameter and to ws), which is what
MyStyle's tuning and the projections pay per step. On CUDA it also measures torch.autocast (fp16).

    python -m benchmarks.run_all generator                   # CPU (about 1.5 min on 2 idle cores)
    python -m benchmarks.run_all generator --device cuda     # GPU, fp32 and autocast
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import torch

from photokit.devices import describe_device, resolve_device
from photokit.stylegan2.network import Generator, GeneratorConfig
from photokit.stylegan2.precision import native_bf16
from photokit.stylegan2.timing import time_step
from photokit.stylegan2.vocab import Precision

MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stylegan2" / "state_dict_manifests.json"
LAYOUTS = {256: "nvlabs_ffhq256_channel_base16384", 1024: "nvlabs_ffhq1024_channel_base32768"}


def ffhq_channel_base(resolution: int) -> int:
    return 32768 if resolution == 1024 else 16384


def timed_precisions(device: torch.device) -> list[Precision]:
    """fp32, and bf16 autocast where ``device`` computes it natively: what a benchmark times on it."""
    return [Precision.FP32] + ([Precision.BF16] if native_bf16(device) else [])


def ffhq_architecture(resolution: int) -> GeneratorConfig:
    """FFHQ's generator architecture from NVIDIA's channel formula: channels = min(channel_base / res, 512).
    The other benchmarks import it from here."""
    base = ffhq_channel_base(resolution)
    channels = {2**i: min(base // 2**i, 512) for i in range(2, resolution.bit_length())}
    return GeneratorConfig(resolution=resolution, channels=channels, source="nvlabs")


def architecture(resolution: int) -> tuple[GeneratorConfig, str]:
    """The real FFHQ generator's architecture, read from the manifest's tensor shapes when available."""
    if MANIFEST.is_file():
        from photokit.stylegan2.nvidia_state_dict import nvlabs_config

        manifest = json.loads(MANIFEST.read_text())[LAYOUTS[resolution]]
        shapes = {k: torch.empty(v, device="meta") for k, v in manifest.items()}
        return nvlabs_config(shapes, None, LAYOUTS[resolution]), f"manifest:{LAYOUTS[resolution]}"
    return ffhq_architecture(resolution), f"formula:channel_base={ffhq_channel_base(resolution)}"


def _measure(G: Generator, batch: int, backward: bool, device: torch.device, repeats: int, autocast: bool) -> float:
    """Seconds per image for one synthesis call (and backward) at ``batch``."""
    gen = torch.Generator().manual_seed(batch)
    ws = G.mapping(torch.randn(batch, G.z_dim, generator=gen).to(device)).detach()
    ctx = torch.autocast(device_type=device.type, dtype=torch.float16) if autocast else contextlib.nullcontext()

    def step() -> None:
        if backward:
            w = ws.clone().requires_grad_(True)
            with ctx:
                img = G.synthesis(w, noise_mode="const")
            img.float().square().mean().backward()
            G.synthesis.zero_grad(set_to_none=True)
        else:
            with torch.no_grad(), ctx:
                G.synthesis(ws, noise_mode="const")

    return time_step(step, device, repeats=repeats) / batch


def run(device: str = "cpu", quick: bool = False) -> dict:
    dev = resolve_device(device)
    on_gpu = dev.type == "cuda"
    plan = {256: (1, 2, 4), 1024: (1, 2)} if not on_gpu else {256: (1, 4, 8, 16, 32), 1024: (1, 2, 4, 8)}
    if quick:
        plan = {256: (1,)} if not on_gpu else {256: (1, 8), 1024: (1,)}
    precisions = ["fp32", "autocast_fp16"] if on_gpu else ["fp32"]
    results: dict = {
        "device": describe_device(dev),
        "torch_threads": torch.get_num_threads(),
        "quick": quick,
        # a busy machine inflates every figure: check this is near 0 before trusting them
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "method": "perf_counter around synthesis(ws, noise_mode='const') after one warm-up call, "
        "cuda synchronised; forward_backward = gradients to all synthesis parameters and ws",
        "resolutions": {},
    }
    for resolution, batches in plan.items():
        config, origin = architecture(resolution)
        torch.manual_seed(0)
        G = Generator(config).to(dev).eval()
        G.synthesis.requires_grad_(True)
        entry: dict = {
            "architecture": origin,
            "num_ws": G.num_ws,
            "synthesis_parameters": sum(p.numel() for p in G.synthesis.parameters()),
        }
        repeats = 1 if (resolution == 1024 and not on_gpu) or quick else 3
        # The grouped conv is the default; the unfused path is timed too on the larger batches.
        for precision in precisions:
            for mode in ("forward", "forward_backward"):
                timings: dict[str, dict[str, float | None]] = {}
                for batch in batches:
                    paths = ("fused",) if batch == 1 or (resolution == 1024 and not on_gpu) else ("fused", "unfused")
                    for path in paths:
                        G.synthesis.fused_modconv = path == "fused"
                        try:
                            seconds = _measure(G, batch, mode == "forward_backward", dev, repeats, precision != "fp32")
                        except torch.cuda.OutOfMemoryError:
                            timings.setdefault(str(batch), {})[path] = None
                            torch.cuda.empty_cache()
                            continue
                        timings.setdefault(str(batch), {})[path] = round(seconds * 1000, 2)
                G.synthesis.fused_modconv = True
                best = min(
                    ((ms, b, p) for b, d in timings.items() for p, ms in d.items() if ms is not None),
                    default=(None, None, None),
                )
                entry[f"{mode}_{precision}"] = {
                    "ms_per_image_by_batch": timings,
                    "best_ms_per_image": best[0],
                    "best_batch": int(best[1]) if best[1] else None,
                    "best_modconv": best[2],
                }
        results["resolutions"][str(resolution)] = entry
        del G
        if on_gpu:
            torch.cuda.empty_cache()
    return results


if __name__ == "__main__":
    import sys

    started = time.time()
    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "cpu", quick="--quick" in sys.argv), indent=2))
    print(f"{time.time() - started:.0f} s", file=sys.stderr)
