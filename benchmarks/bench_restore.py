"""Restoration cost and quality.

1. Seconds per face of an alpha+ projection (MyStyle's 1000 steps, 4x super-resolution, N = 8 anchors,
   LPIPS(AlexNet) + MSE) at 256 and 1024 px, with random weights in the real FFHQ architectures
   (NVIDIA's channel formula). On a CPU only a few steps are timed and the 1000-step figure is
   extrapolated (the report says so); LPIPS runs on a random backbone, which costs the same as the real one.
   Timed in fp32 and, where the device computes it natively (Ampere or later GPUs, AVX512-BF16 CPUs), in
   bf16 autocast (``enhance --precision bf16``).
2. Quality of 4x super-resolution of obama-1080p degraded to 240p, against Lanczos: PSNR over the face
   square and identity similarity (cosine of dlib 128-D embeddings to Obama's other photos). Only with a
   pretrained generator installed (``photokit models install``); otherwise recorded as skipped, with why.

    python -m benchmarks.run_all restore                 # CPU (about 3-6 min on 2 cores)
    python -m benchmarks.run_all restore --device cuda
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_generator import ffhq_architecture, timed_precisions
from photokit.devices import describe_device, resolve_device
from photokit.prior.alpha import AlphaConfig
from photokit.restore.degrade import super_resolution
from photokit.restore.project import AlphaProjection, SmallImageLoss
from photokit.stylegan2.losses import ReconstructionLoss, build_lpips
from photokit.stylegan2.network import Generator
from photokit.stylegan2.timing import synchronize
from photokit.stylegan2.vocab import Precision

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "face_recognition"
PAPER_STEPS = AlphaConfig.steps


def projection_cost(
    resolution: int, device: torch.device, timed_steps: int, precision: Precision = Precision.FP32
) -> dict:
    """Seconds per alpha+ projection step (Adam, the paper's) with the synthesis in ``precision``."""
    torch.manual_seed(0)
    G = Generator(ffhq_architecture(resolution)).to(device).eval().requires_grad_(False)
    G.synthesis.precision = precision
    with torch.no_grad():
        anchors = G.mapping(torch.randn(8, G.z_dim, device=device))[:, 0]
    degradation = super_resolution(resolution, resolution / 4)
    target = torch.rand(1, 3, degradation.size, degradation.size, device=device) * 2 - 1
    loss = SmallImageLoss(ReconstructionLoss(build_lpips("alex", device, allow_random_backbone=True)))
    projection = AlphaProjection(G, anchors, target, degradation, loss, beta=0.05)
    projection.step()  # warm-up (allocations, cuDNN autotuning)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(timed_steps):
        projection.step()
    synchronize(device)
    per_step = (time.perf_counter() - start) / timed_steps
    return {
        "resolution": resolution,
        "precision": str(precision),
        "num_ws": G.num_ws,
        "anchors": 8,
        "task": "4x super-resolution",
        "loss": "lpips(alex, random backbone: same cost)+mse",
        "timed_steps": timed_steps,
        "seconds_per_step": round(per_step, 4),
        "seconds_per_face_1000_steps": round(per_step * PAPER_STEPS, 1),
        "extrapolated": timed_steps < PAPER_STEPS,
    }


def sr_quality(device: torch.device, steps: int) -> dict:
    """4x SR of obama-1080p degraded to 240p vs Lanczos, when a pretrained generator is installed."""
    from photokit.settings import Settings

    if not SHARED.is_dir():
        return {"skipped": f"{SHARED} is absent"}
    from photokit.errors import MissingModelError
    from photokit.faces.analyze import FaceAnalyzer
    from photokit.restore.options import EnhanceOptions
    from photokit.restore.output import load_photo
    from photokit.restore.paste import lanczos_upscale
    from photokit.restore.pipeline import Enhancer
    from photokit.restore.priors import NoPeople, StaticPriors
    from photokit.stylegan2.base import resolve_base
    from photokit.stylegan2.losses import lpips_available

    settings = Settings.load()
    try:
        base = resolve_base(settings, device)
    except MissingModelError:
        return {
            "skipped": "no pretrained face generator installed (photokit models install ffhq-256 --from FILE); "
            "a random-weight generator would measure nothing"
        }
    if not base.pretrained:
        return {"skipped": base.warning()}
    import cv2

    truth = load_photo(SHARED / "obama-1080p.jpg").rgb
    low = cv2.resize(truth, (427, 240), interpolation=cv2.INTER_AREA)
    loss = "lpips" if lpips_available("alex") else "mse"
    enhancer = Enhancer(EnhanceOptions(scale=4, steps=steps, loss=loss), StaticPriors(base), NoPeople(), device=device)
    # The degraded input is a work file: it goes to a temporary folder, never into the user's photokit home.
    with tempfile.TemporaryDirectory(prefix="photokit-bench-restore-") as work:
        low_path = Path(work) / "obama-1080p-to-240p.png"
        cv2.imwrite(str(low_path), np.clip(np.rint(low[:, :, ::-1] * 255), 0, 255).astype(np.uint8))
        rendered = enhancer.render(low_path)
    out = rendered.image
    h, w = out.shape[:2]
    reference = cv2.resize(truth, (w, h), interpolation=cv2.INTER_AREA)
    lanczos = np.clip(lanczos_upscale(rendered.photo.rgb, 4), 0, 1)
    face = rendered.weight > 0.5
    analyzer = FaceAnalyzer(device=str(device))

    def psnr(a):
        return round(float(10 * np.log10(1.0 / np.mean((a[face] - reference[face]) ** 2))), 2)

    def identity(image):
        faces = analyzer.analyze(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8))
        if not faces or faces[0].embedding is None:
            return None
        e = faces[0].embedding / np.linalg.norm(faces[0].embedding)
        sims = []
        for name in ("obama.jpg", "obama2.jpg", "obama3.jpg"):
            ref = analyzer.analyze(load_photo(SHARED / name).rgb_uint8())
            if ref and ref[0].embedding is not None:
                sims.append(float(e @ (ref[0].embedding / np.linalg.norm(ref[0].embedding))))
        return round(float(np.mean(sims)), 4) if sims else None

    return {
        "generator": base.name,
        "prior": "generic W+ (no personal prior in the benchmark)",
        "loss": loss,
        "steps": steps,
        "face_pixels": int(face.sum()),
        "psnr_face_db": {"photokit": psnr(out), "lanczos": psnr(lanczos)},
        "identity_cosine_to_references": {"photokit": identity(out), "lanczos": identity(lanczos)},
        "seconds": rendered.report.seconds,
    }


def run(device: str = "cpu", quick: bool = False) -> dict:
    dev = resolve_device(device)
    on_cpu = dev.type == "cpu"
    results: dict = {"device": describe_device(dev), "projection": []}
    sizes = (256,) if quick else (256, 1024)
    for resolution in sizes:
        timed = (2 if quick else (5 if resolution == 256 else 2)) if on_cpu else (20 if quick else 100)
        for precision in timed_precisions(dev):  # fp32, and bf16 autocast where the device has it natively
            results["projection"].append(projection_cost(resolution, dev, timed, precision))
    results["sr_quality"] = (
        sr_quality(dev, steps=100 if on_cpu else PAPER_STEPS) if not quick else {"skipped": "quick run"}
    )
    results["method"] = (
        "alpha+ projection steps timed after one warm-up step with time.perf_counter "
        "(cuda/mps synchronised); seconds per face = seconds per step x 1000"
    )
    return results
