"""Restoration quality per unit of time: photokit's CPU schedules against the paper's 1000 Adam steps.

1. Quality (issue 14, target 2): alpha+ 4x super-resolution of planted targets. A planted target is an
   image the generator itself renders from a point in the alpha+ space of 8 random anchors (inside
   P_0.05), area-downsampled 4x; the ground truth is the clean render. Two families (``TargetFamily``):
   in-prior targets follow the model eq. (7) encodes (no per-layer offsets in the regularised layers)
   and judge the bar; off-prior ones (offsets in every layer) are reported. For every random-weight
   generator (3), family and target (3): PSNR against the ground truth, seconds, CPU seconds and
   generator evaluations of (a) 1000 Adam steps (the paper's schedule), (b) Adam's CPU step count (100:
   the first 100 of (a)), (c) L-BFGS (<= 250 steps, stopped on a flat objective), (d) the CPU default,
   Gauss-Newton (``photokit.restore.gauss_newton``, 104 steps). The bar: (d) within 0.5 dB of (a), or
   above it, on every in-prior target. 1000 full-width 256 px steps cost ~10 min each on 2
   cores, so these generators are smaller (``QualitySize``: full 256 px with channels capped at 64,
   medium 128 px / 32, quick 32 px / 32): the comparison is of optimisers in the same latent space, not
   of a face model. Random weights: nothing here is a restoration.
2. Time: the CPU default (Gauss-Newton), L-BFGS and Adam once each, with the full-width FFHQ 256 px
   architecture and LPIPS(AlexNet) + MSE (a random backbone costs the same as the real one): wall
   seconds, CPU seconds (process time) and
   CPU seconds / threads, the wall time on an idle machine. Skipped with ``--quick``.

    python -m benchmarks.run_all restore_quality           # ~2 h on 2 idle cores
    python -m benchmarks.run_all restore_quality --quick   # ~5 min
    python -m benchmarks.bench_restore_quality time        # part 2 alone, JSON on stdout
    python -m benchmarks.bench_restore_quality quality --size medium --family in_prior [--generator 0]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import torch

from benchmarks.bench_generator import ffhq_architecture, ffhq_channel_base
from photokit.devices import describe_device, resolve_device
from photokit.prior import alpha as alpha_space
from photokit.prior.alpha import AlphaConfig
from photokit.prior.vocab import ProjectionOptimizer
from photokit.restore.degrade import Degradation, super_resolution
from photokit.restore.optimize import EarlyStop
from photokit.restore.options import CPU_DEFAULT_STEPS, GAUSS_NEWTON_DEFAULT_STEPS, LBFGS_DEFAULT_STEPS, EnhanceOptions
from photokit.restore.project import AlphaProjection, LossFn, SmallImageLoss
from photokit.stylegan2.losses import ReconstructionLoss, build_lpips, lpips_available
from photokit.stylegan2.network import Generator, GeneratorConfig, build_tiny_generator

PAPER_STEPS = AlphaConfig.steps
ANCHORS = 8
BETA = AlphaConfig.beta_super_resolution
QUALITY_BAR_DB = 0.5


class TargetFamily(StrEnum):
    """Where a planted target's per-layer offsets Delta lie, relative to the prior eq. (7) encodes."""

    IN_PRIOR = "in_prior"  # Delta = 0 in the regularised layers, 0.05 x N(0,1) in the free ones: the bar's
    OFF_PRIOR = "off_prior"  # Delta = 0.05 x N(0,1) in every layer, against eq. (7): reported, not judged


@dataclass(frozen=True)
class QualitySize:
    """The generators the optimisers are compared on (random weights, NVIDIA's channel formula, capped)."""

    resolution: int
    channel_max: int

    def describe(self) -> str:
        return f"{self.resolution} px, channels capped at {self.channel_max}"


QUICK_SIZE = QualitySize(32, 32)  # build_tiny_generator: 8x8 inputs after 4x, hugely ill-posed
MEDIUM_SIZE = QualitySize(128, 32)  # 32x32 inputs; in-prior rows: ~12 min in 3 one-thread processes, load 9
FULL_SIZE = QualitySize(256, 64)


@dataclass(frozen=True)
class Planted:
    anchors: torch.Tensor  # (N, w_dim)
    truth: torch.Tensor  # (1, 3, R, R) the clean render
    observed: torch.Tensor  # (1, 3, R/4, R/4)
    degradation: Degradation


def reduced_generator(resolution: int, channel_max: int, seed: int) -> Generator:
    """NVIDIA's channel formula at ``resolution``, capped at ``channel_max``, random weights."""
    base = ffhq_channel_base(resolution)
    channels = {2**i: min(base // 2**i, channel_max) for i in range(2, resolution.bit_length())}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Generator(GeneratorConfig(resolution=resolution, channels=channels)).eval().requires_grad_(False)


def planted_offsets(num_ws: int, family: TargetFamily, gen: torch.Generator) -> torch.Tensor:
    """A target's Delta (num_ws, ANCHORS): 0.05 x N(0,1), zeroed in eq. (7)'s layers for ``IN_PRIOR``."""
    delta = 0.05 * torch.randn(num_ws, ANCHORS, generator=gen)
    if family == TargetFamily.IN_PRIOR:
        delta[: alpha_space.regularised_layers(num_ws, AlphaConfig.reg_layer_fraction)] = 0.0
    return delta


def plant(G: Generator, seed: int, device: torch.device, family: TargetFamily = TargetFamily.IN_PRIOR) -> Planted:
    """A target inside P_beta of fresh random anchors, degraded by 4x area downsampling."""
    gen = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        anchors = G.mapping(torch.randn(ANCHORS, G.z_dim, generator=gen).to(device))[:, 0]
        raw = 1 / ANCHORS + 0.3 * torch.randn(ANCHORS, generator=gen)
        delta = planted_offsets(G.num_ws, family, gen)
        coefficients = alpha_space.alpha_plus(raw, delta, BETA).to(device)
        truth = G.synthesis((coefficients @ anchors)[None], noise_mode="const")
    degradation = super_resolution(G.resolution, G.resolution / 4)
    return Planted(anchors, truth, degradation(truth), degradation)


def psnr(image: torch.Tensor, truth: torch.Tensor) -> float:
    """PSNR in dB over [-1, 1] images (peak-to-peak 2)."""
    mse = (image.clamp(-1, 1) - truth.clamp(-1, 1)).pow(2).mean()
    return float(10 * torch.log10(4.0 / mse))


def projection_for(G: Generator, target: Planted, loss_fn: LossFn, optimizer: ProjectionOptimizer) -> AlphaProjection:
    early = EarlyStop() if optimizer == ProjectionOptimizer.LBFGS else None
    config = AlphaConfig(optimizer=optimizer)
    return AlphaProjection(G, target.anchors, target.observed, target.degradation, loss_fn, BETA, config, early)


def measure(projection: AlphaProjection, target: Planted, steps: int) -> dict:
    """``steps`` more steps of ``projection``; PSNR against the planted truth and the cost so far."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = projection.run(steps)
    with torch.no_grad():  # eq. (8) with the paper's 1e-12 smoothing, so both optimisers' end points compare
        penalty = float(alpha_space.regularisation(projection.alpha, projection.delta, BETA, projection.config))
    return {
        "optimizer": str(projection.optimizer),
        "max_steps": steps,
        "steps": result.steps,
        "evaluations": result.evaluations,
        "forward_passes": result.forward_passes,
        "psnr_db": round(psnr(result.image, target.truth), 3),
        "reconstruction_loss": result.reconstruction_loss,
        "objective_eq8": result.reconstruction_loss + penalty,
        "seconds": round(time.perf_counter() - wall, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
    }


def project(G: Generator, target: Planted, loss_fn: LossFn, optimizer: ProjectionOptimizer, steps: int) -> dict:
    """One projection; PSNR against the planted truth and its cost."""
    return measure(projection_for(G, target, loss_fn, optimizer), target, steps)


def adam_runs(G: Generator, target: Planted, loss_fn: LossFn) -> tuple[dict, dict]:
    """The CPU default and the paper's schedule from one run: Adam has no schedule, so the first 100 of
    1000 steps are the 100-step run. The second row's seconds and evaluations are the whole 1000 steps'."""
    projection = projection_for(G, target, loss_fn, ProjectionOptimizer.ADAM)
    short = measure(projection, target, CPU_DEFAULT_STEPS)
    rest = measure(projection, target, PAPER_STEPS - CPU_DEFAULT_STEPS)
    paper = {
        **rest,
        "max_steps": PAPER_STEPS,
        "steps": projection.steps_done,
        "seconds": round(short["seconds"] + rest["seconds"], 2),
        "cpu_seconds": round(short["cpu_seconds"] + rest["cpu_seconds"], 2),
    }
    return short, paper


def quality_loss(device: torch.device) -> tuple[LossFn, str]:
    """LPIPS(AlexNet) + MSE when the real backbone is installed; MSE otherwise (a random AlexNet is no
    perceptual metric, and the optimisers are compared on the same objective either way)."""
    if lpips_available("alex"):
        return SmallImageLoss(ReconstructionLoss(build_lpips("alex", device))), "lpips(alex)+mse"
    return ReconstructionLoss(None), "mse (LPIPS AlexNet weights not installed)"


def compare(G: Generator, target: Planted, loss_fn: LossFn) -> dict:
    short, paper = adam_runs(G, target, loss_fn)
    runs = {
        "adam_paper": paper,
        "adam_cpu_default": short,
        "lbfgs": project(G, target, loss_fn, ProjectionOptimizer.LBFGS, LBFGS_DEFAULT_STEPS),
        "gauss_newton": project(G, target, loss_fn, ProjectionOptimizer.GAUSS_NEWTON, GAUSS_NEWTON_DEFAULT_STEPS),
    }
    for name in ("lbfgs", "gauss_newton", "adam_cpu_default"):
        runs[f"{name}_gap_db"] = round(runs["adam_paper"]["psnr_db"] - runs[name]["psnr_db"], 3)
    return runs


def quality_generator(size: QualitySize, seed: int) -> Generator:
    """The quick size is the tests' tiny generator (w_dim 64); the others follow NVIDIA's formula."""
    if size == QUICK_SIZE:
        return build_tiny_generator(size.resolution, seed=seed)
    return reduced_generator(size.resolution, size.channel_max, seed)


def gap_summary(rows: list[dict], family: TargetFamily) -> dict:
    """Per family: L-BFGS's and the 100-step default's gaps to 1000 Adam steps (dB; positive = worse)."""
    mine = [row for row in rows if row["family"] == family]
    if not mine:
        return {"skipped": "not run"}
    summary: dict = {"targets": len(mine)}
    for key in ("gauss_newton_gap_db", "lbfgs_gap_db", "adam_cpu_default_gap_db"):
        gaps = [row[key] for row in mine]
        summary[key] = {"min": min(gaps), "max": max(gaps), "mean": round(sum(gaps) / len(gaps), 3)}
    summary["gauss_newton_meets_bar"] = summary["gauss_newton_gap_db"]["max"] <= QUALITY_BAR_DB
    return summary


def quality(
    device: torch.device,
    size: QualitySize,
    families: tuple[TargetFamily, ...] = tuple(TargetFamily),
    generator_seeds: tuple[int, ...] = (0, 1, 2),
    targets: int = 3,
    on_row: Callable[[dict], None] | None = None,
) -> dict:
    """3 generators x 3 targets per family; the bar is judged on the in-prior family."""
    loss_fn, loss_name = quality_loss(device)
    rows = []
    for g in generator_seeds:
        G = quality_generator(size, g).to(device)
        for family in families:
            for t in range(targets):
                target = plant(G, 10 * g + t, device, family)
                row = {"family": str(family), "generator_seed": g, "target_seed": 10 * g + t}
                rows.append({**row, **compare(G, target, loss_fn), "load_average": list(os.getloadavg())})
                if on_row is not None:
                    on_row(rows[-1])
    summaries = {str(family): gap_summary(rows, family) for family in TargetFamily}
    return {
        "generators": size.describe() + (" (tiny test generator, w_dim 64)" if size == QUICK_SIZE else ""),
        "weights": "random (not a face model: no output here is a restoration)",
        "task": "4x super-resolution (area), beta 0.05, 8 random anchors per target",
        "families": {
            TargetFamily.IN_PRIOR.value: "Delta = 0 in eq. (7)'s regularised layers, 0.05 x N(0,1) in the free ones",
            TargetFamily.OFF_PRIOR.value: "Delta = 0.05 x N(0,1) in every layer (off the prior eq. 7 encodes)",
        },
        "loss": loss_name,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "summary": summaries,
        "gauss_newton_meets_bar": summaries[TargetFamily.IN_PRIOR.value].get("gauss_newton_meets_bar", False),
        "bar": f"the CPU default's (Gauss-Newton) PSNR within {QUALITY_BAR_DB} dB of {PAPER_STEPS} Adam steps on every in-prior target",
    }


def full_width_time(device: torch.device) -> dict:
    """The CPU default (Gauss-Newton, fp32), then plain L-BFGS and Adam in the precision 'auto' picks for it
    here (with that precision's default step count), once each at the full-width FFHQ 256 px architecture."""
    torch.manual_seed(0)
    G = Generator(ffhq_architecture(256)).to(device).eval().requires_grad_(False)
    target = plant(G, 0, device)
    loss_fn = SmallImageLoss(ReconstructionLoss(build_lpips("alex", device, allow_random_backbone=True)))
    row = _timed_default(G, target, loss_fn, device, EnhanceOptions())
    row["lbfgs"] = _timed_default(G, target, loss_fn, device, EnhanceOptions(optimizer=ProjectionOptimizer.LBFGS))
    row["adam_cpu_default"] = _timed_default(
        G, target, loss_fn, device, EnhanceOptions(optimizer=ProjectionOptimizer.ADAM)
    )
    return row


def _timed_default(
    G: Generator, target: Planted, loss_fn: LossFn, device: torch.device, options: EnhanceOptions
) -> dict:
    G.synthesis.precision = options.precision_for(device)
    row = project(G, target, loss_fn, options.optimizer_for(device), options.steps_for(device))
    return _timed(row) | {"precision": str(G.synthesis.precision)}


def _timed(row: dict) -> dict:
    row.pop("psnr_db")  # a random full-width generator's PSNR says nothing the quality rows do not
    threads = torch.get_num_threads()
    return row | {
        "architecture": "FFHQ 256 px, full width (random weights)",
        "loss": "lpips(alex, random backbone: same cost)+mse",
        "torch_threads": threads,
        "idle_wall_estimate_seconds": round(row["cpu_seconds"] / max(1, threads), 1),
        "load_average": list(os.getloadavg()),
    }


def run(device: str = "cpu", quick: bool = False) -> dict:
    dev = resolve_device(device)
    results: dict = {"device": describe_device(dev), "load_average_start": list(os.getloadavg())}
    results["quality"] = quality(dev, QUICK_SIZE if quick else FULL_SIZE)
    results["time"] = {"skipped": "quick run"} if quick else full_width_time(dev)
    results["method"] = (
        "each projection timed once with time.perf_counter (wall) and time.process_time (CPU of this process); "
        "on a machine shared with other work, CPU seconds / threads estimates the idle wall time"
    )
    return results


SIZES = {"quick": QUICK_SIZE, "medium": MEDIUM_SIZE, "full": FULL_SIZE}


def main() -> None:
    """One part alone, JSON on stdout; ``--generator`` runs one generator's rows (to spread over processes)."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("part", choices=["time", "quality"])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--family", choices=[f.value for f in TargetFamily], action="append")
    parser.add_argument("--generator", type=int, choices=range(3), action="append")
    parser.add_argument("--targets", type=int, choices=range(1, 4), default=3, help="per generator and family")
    args = parser.parse_args()
    families = tuple(TargetFamily(f) for f in args.family or TargetFamily)
    cpu = resolve_device("cpu")
    doc = {"part": args.part, "load_average_start": list(os.getloadavg()), "torch_threads": torch.get_num_threads()}
    if args.part == "time":
        doc["results"] = full_width_time(cpu)
    else:
        seeds = tuple(args.generator or range(3))
        doc["results"] = quality(
            cpu, SIZES[args.size], families, seeds, args.targets, lambda row: print(json.dumps(row), file=sys.stderr)
        )
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
