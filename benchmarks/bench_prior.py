"""Personal-prior cost: seconds per anchor for W inversion and for tuning, and bytes per stored prior.

Random-weight StyleGAN2 generators with FFHQ's architecture (NVIDIA's channel formula) at 256 and 1024 px.
Costs do not depend on the weights, so these stand for the real models. Losses are the product's: LPIPS-VGG
at 256 px for inversion, LPIPS-AlexNet + MSE at full resolution for tuning (LPIPS built on a random backbone
here because the ImageNet weights cannot be installed in this environment; same compute).

Nothing runs to completion: each figure times a few real steps (one warm-up step first) and extrapolates
to the schedules, so the full CPU run stays within minutes. The JSON says so (``method``).

- inversion seconds per anchor = (s per step at batch B) x 450 steps / B (PTI's schedule; and the fast preset's)
- tuning seconds per anchor = (s per step at batch 1) x 350 epochs (one step per anchor per epoch, MyStyle)
  -- MyStyle reports about 48-50 s per anchor on a V100.
- bytes: the real safetensors files photokit writes (fp16 delta vs fp16 low-rank factors).
- timings in fp32 and, where the device computes it natively, bf16 autocast (photokit's ``--precision
  bf16``): on a GPU, the per-anchor figures at 1024 px in both arithmetics.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.bench_generator import ffhq_architecture, timed_precisions
from photokit.prior.adapters import FullDelta, LowRankAdapters, RankRule, stored_bytes
from photokit.prior.projector import ProjectorConfig, inversion_step_probe
from photokit.prior.schedule import PRESET_SCHEDULES, fast_tuning
from photokit.prior.storage import save_safetensors
from photokit.prior.tuning import TuningConfig, tuning_step_probe
from photokit.stylegan2.losses import make_reconstruction_loss
from photokit.stylegan2.network import Generator
from photokit.stylegan2.timing import time_step
from photokit.stylegan2.vocab import Precision


def _file_bytes(tensors: dict[str, torch.Tensor]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.safetensors"
        save_safetensors(path, tensors, {"format": "bench"})
        return path.stat().st_size


def stage_timings(
    G: Generator,
    targets: torch.Tensor,
    anchors: torch.Tensor,
    inv_loss: torch.nn.Module,
    tun_loss: torch.nn.Module,
    precision: Precision,
    repeats: int,
    timed_rank: int | None,
) -> dict:
    """Seconds per inversion step (a batch of ``len(targets)``) and per tuning step (all weights, and rank
    ``timed_rank`` adapters), in ``precision``, timed over ``repeats`` steps; extrapolated per anchor."""
    device, batch = targets.device, len(targets)
    projector, tuning = ProjectorConfig(precision=precision), TuningConfig(precision=precision)
    inv_s = time_step(inversion_step_probe(G, targets, inv_loss, projector), device, repeats)
    fast = PRESET_SCHEDULES["fast"]
    out: dict = {
        "inversion": {
            "batch": batch,
            "s_per_step": round(inv_s, 4),
            "s_per_anchor_paper_450_steps": round(inv_s * projector.steps / batch, 2),
            "s_per_anchor_fast_preset_steps": round(inv_s * fast["invert_steps"] / batch, 2),
        },
        "tuning": {},
    }
    for rank in (None, timed_rank) if timed_rank else (None,):  # None: all weights
        cfg = replace(tuning, adapter_rank=rank)
        s = time_step(tuning_step_probe(G, anchors, targets, tun_loss, cfg), device, repeats)
        out["tuning"]["full" if rank is None else f"lowrank_r{rank}"] = {
            "s_per_step": round(s, 4),
            "s_per_anchor_paper_350_epochs": round(s * tuning.epochs, 2),
            "s_per_anchor_fast_preset_epochs": round(s * fast["epochs"], 2),
        }
    return out


def stored_sizes(G: Generator, ranks: tuple[int, ...]) -> dict:
    """Bytes of the files a prior stores: a full delta, rank-R adapters, and the fast preset's."""
    out = {}
    rules = {"full": None, **{f"lowrank_r{r}": RankRule(rank=r) for r in ranks}}
    rules["fast_preset"] = fast_tuning(TuningConfig()).rank_rule()  # ranks that follow the width, up to a cap
    for key, rule in rules.items():
        tunable = LowRankAdapters(G.synthesis, rule) if rule else FullDelta(G.synthesis)
        stored = tunable.stored_tensors(torch.float16)
        out[key] = {"tensor_bytes": stored_bytes(stored), "file_bytes": _file_bytes(stored)}
        if key == "fast_preset":
            out[key]["rule"] = str(rule)
    for value in out.values():
        value["x_smaller_than_full"] = round(out["full"]["file_bytes"] / value["file_bytes"], 1)
    return out


def measure(
    resolution: int,
    device: torch.device,
    repeats: int,
    invert_batch: int,
    ranks: tuple[int, ...],
    timed_rank: int | None = 4,
) -> dict:
    """Timings in each precision the device runs natively (fp32; bf16 autocast where native: Ampere or later
    GPUs, CPUs with AVX512-BF16/AMX) for full tuning and one adapter rank (``timed_rank``); stored bytes for
    every rank."""
    torch.manual_seed(0)
    t0 = time.perf_counter()
    G = Generator(ffhq_architecture(resolution)).to(device).eval().requires_grad_(False)
    build_s = time.perf_counter() - t0
    inv_loss = make_reconstruction_loss("lpips", "vgg", device, 0.0, allow_random_backbone=True)
    tun_loss = make_reconstruction_loss("lpips", "alex", device, 1.0, allow_random_backbone=True)
    targets = torch.rand(invert_batch, 3, resolution, resolution, device=device) * 2 - 1
    anchors = G.w_avg.to(device).reshape(1, -1).repeat(invert_batch, 1)
    timings = {
        str(p): stage_timings(G, targets, anchors, inv_loss, tun_loss, p, repeats, timed_rank)
        for p in timed_precisions(device)
    }
    return {
        "resolution": resolution,
        "num_ws": G.num_ws,
        "synthesis_params": sum(p.numel() for p in G.synthesis.parameters()),
        "generator_build_s": round(build_s, 2),
        "timings": timings,
        "bytes": stored_sizes(G, ranks),
    }


def run(device: str = "cpu", quick: bool = False) -> dict:
    from photokit.devices import describe_device, resolve_device

    dev = resolve_device(device)
    gpu = dev.type == "cuda"
    sizes = (256,) if quick else (256, 1024)
    repeats = 5 if gpu and not quick else 1
    invert_batch = 8 if gpu else 1
    started = time.perf_counter()
    results = {
        str(r): measure(
            r, dev, repeats, invert_batch, ranks=(4,) if quick else (1, 4, 16), timed_rank=None if quick else 4
        )
        for r in sizes
    }
    timing = f"{repeats} timed step(s) after one warm-up step"
    return {
        "device": describe_device(dev),
        "method": (
            f"each figure times {timing} and extrapolates to the schedule (450 inversion steps; "
            "350 tuning epochs = one step per anchor per epoch); nothing runs to completion; "
            "random-weight FFHQ-architecture generators; LPIPS on a random backbone (same compute)"
        ),
        "mystyle_reference": "about 48-50 s per anchor for tuning on one V100 (paper, B.3)",
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "cpu", "--quick" in sys.argv), indent=2))
