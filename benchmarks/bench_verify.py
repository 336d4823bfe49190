"""Where the paste-back checks' thresholds come from (``photokit.restore.verify.VerifyConfig``).

On the labelled faces of ``../shared/data/faces/deepface`` (largest face of each photo, aligned to a
256 px FFHQ crop, with the person's other photos as references):

1. Consistency PSNR at the input's resolution (area downsampling x4/x8/x16) of
   - a Lanczos upscale of the degraded face (consistent by construction: the upper end),
   - another photo of the same person, aligned the same way (plausible, but not this photo),
   - a random-weight generator's output (what a broken or fake prior gives).
2. Identity drift: distance of the face to the nearest of the person's other photos, for the original
   crop and for the crop area-downsampled x2/x4/x8 and Lanczos-upscaled back (re-detected, re-aligned).
   The margin is the 95th percentile of (resampled - original).

    python -m benchmarks.run_all verify            # ~25 min on 2 shared CPU cores (--quick: 20 faces, ~9 min)
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from photokit.faces.align import align_face
from photokit.faces.cluster import pairwise_distances
from photokit.library.images import read_rgb
from photokit.restore.degrade import super_resolution, to_tensor
from photokit.restore.verify import analyzer_describe, consistency_psnr
from photokit.stylegan2.network import build_tiny_generator

DEEPFACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "deepface"
SIZE = 256


def _faces(analyzer, quick: bool) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(file, person, aligned 256 px crop float [0, 1], descriptor) of each labelled photo's largest face."""
    with open(DEEPFACE / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    if quick:
        rows = rows[:20]
    out = []
    for row in rows:
        faces = analyzer.analyze(read_rgb(str(DEEPFACE / row["file"])))
        if not faces:
            continue
        face = max(faces, key=lambda f: f.size_px)
        if face.embedding is None or face.alignment is None:
            continue
        crop = align_face(read_rgb(str(DEEPFACE / row["file"])), face.alignment, SIZE).astype(np.float32) / 255
        out.append((row["file"], row["identity"], crop, face.embedding))
    return out


def _quantiles(values: list[float]) -> dict:
    a = np.asarray(values, float)
    a = a[np.isfinite(a)]
    if len(a) == 0:
        return {"n": 0}
    return {
        "n": int(len(a)),
        "min": round(float(a.min()), 3),
        "p5": round(float(np.percentile(a, 5)), 3),
        "median": round(float(np.median(a)), 3),
        "p95": round(float(np.percentile(a, 95)), 3),
        "max": round(float(a.max()), 3),
    }


def _lanczos(crop: np.ndarray, low: int) -> np.ndarray:
    small = cv2.resize(crop, (low, low), interpolation=cv2.INTER_AREA)
    return np.clip(cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_LANCZOS4), 0, 1)


def consistency_study(faces, factors=(4, 8, 16)) -> dict:
    G = build_tiny_generator(resolution=SIZE, channels=16, seed=0)
    with torch.no_grad():
        fakes = G.synthesis(G.mapping(torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(0))))
    out = {}
    for f in factors:
        phi = super_resolution(SIZE, SIZE / f)
        lanczos, other, random_gen = [], [], []
        for i, (_, person, crop, _) in enumerate(faces):
            full = to_tensor(crop)
            observed = phi(full)
            lanczos.append(consistency_psnr(to_tensor(_lanczos(crop, phi.size)), observed, phi))
            for _, p2, crop2, _ in faces[i + 1 :]:
                if p2 == person:
                    other.append(consistency_psnr(to_tensor(crop2), observed, phi))
            random_gen.append(consistency_psnr(fakes[i % len(fakes)][None], observed, phi))
        out[f"x{f}"] = {
            "input_px": phi.size,
            "lanczos_psnr_db": _quantiles(lanczos),
            "other_photo_same_person_psnr_db": _quantiles(other),
            "random_generator_psnr_db": _quantiles(random_gen),
        }
    return out


def identity_study(faces, describe, factors=(2, 4, 8)) -> dict:
    embeddings = np.stack([f[3] for f in faces])
    persons = np.array([f[1] for f in faces])
    out: dict = {"drift_by_factor": {}}
    all_drift = []
    base = []
    for i, (_, person, crop, _) in enumerate(faces):
        others = (persons == person) & (np.arange(len(faces)) != i)
        if not others.any():
            continue
        refs = embeddings[others]
        own = describe(crop)
        if own is None:
            continue
        d0 = float(pairwise_distances(own[None], refs).min())
        base.append(d0)
        for f in factors:
            desc = describe(_lanczos(crop, SIZE // f))
            drift = float("nan") if desc is None else float(pairwise_distances(desc[None], refs).min()) - d0
            out["drift_by_factor"].setdefault(f"x{f}", []).append(drift)
            all_drift.append(drift)
    out["drift_by_factor"] = {
        k: {**_quantiles(v), "not_detected": int(np.isnan(v).sum())} for k, v in out["drift_by_factor"].items()
    }
    out["original_crop_to_nearest_other_photo"] = _quantiles(base)
    out["drift_all"] = _quantiles(all_drift)
    return out


def run(device: str = "cpu", quick: bool = False) -> dict:
    from photokit.faces.analyze import FaceAnalyzer

    if not DEEPFACE.is_dir():
        return {"skipped": f"{DEEPFACE} is absent"}
    analyzer = FaceAnalyzer(device=device)
    faces = _faces(analyzer, quick)
    return {
        "faces": len(faces),
        "load_average": list(os.getloadavg()),
        "note": "8 engineers share 2 CPU cores while this runs; timings are not the point here",
        "consistency": consistency_study(faces),
        "identity": identity_study(faces, analyzer_describe(analyzer)),
    }
