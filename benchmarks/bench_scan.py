"""Library scan speed: first scan vs. re-scan of an unchanged library (``--no-faces`` semantics).

Generates N small photo-like images (mixed JPEG/PNG, no faces) in a temp folder, then times
``scan_library`` twice on a fresh database. Target: re-scan >= 20x faster than the first scan.
The scan is CPU/disk work only; ``device`` is accepted for the common interface and not used.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

TARGET_SPEEDUP = 20.0


def generate_library(root: Path, count: int, seed: int = 0) -> int:
    """``count`` distinct 256x192 images in 20 folders, 2/3 JPEG and 1/3 PNG; returns total bytes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:192, 0:256].astype(np.float32)
    total = 0
    for i in range(count):
        folder = root / f"{2000 + i % 20}" / f"event_{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.uniform(0.01, 0.08, size=3)
        base = np.stack([np.sin(x * a + i), np.cos(y * b - i), np.sin((x + y) * c)], axis=-1)
        pixels = ((base * 0.4 + 0.5) * 255 + rng.normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)
        if i % 3 == 2:
            path = folder / f"IMG_{i:05d}.png"
            Image.fromarray(pixels).save(path, format="PNG", compress_level=1)
        else:
            path = folder / f"IMG_{i:05d}.jpg"
            Image.fromarray(pixels).save(path, format="JPEG", quality=90)
        total += path.stat().st_size
    return total


def run(device: str = "cpu", quick: bool = False) -> dict:
    from photokit.db import open_database
    from photokit.library.scan import scan_library
    from photokit.settings import Settings

    count = 200 if quick else 2000
    with tempfile.TemporaryDirectory(prefix="photokit_bench_scan_") as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        total_bytes = generate_library(tmp_path / "library", count)
        generate_s = time.perf_counter() - started
        settings = Settings.load(home=tmp_path / "home", models=tmp_path / "models")
        db = open_database(settings)
        try:
            t0 = time.perf_counter()
            first = scan_library(db, [tmp_path / "library"])
            first_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = scan_library(db, [tmp_path / "library"])
            rescan_s = time.perf_counter() - t0
        finally:
            db.dispose()
    if first.new != count or again.unchanged != count:
        raise RuntimeError(
            f"scan miscounted: first new={first.new}, re-scan unchanged={again.unchanged}, expected {count}"
        )
    speedup = first_s / rescan_s
    return {
        "images": count,
        "library_mb": round(total_bytes / 2**20, 1),
        "generate_s": round(generate_s, 2),
        "first_scan_s": round(first_s, 3),
        "first_scan_photos_per_s": round(count / first_s, 1),
        "rescan_s": round(rescan_s, 3),
        "rescan_photos_per_s": round(count / rescan_s, 1),
        "speedup": round(speedup, 1),
        "target_speedup": TARGET_SPEEDUP,
        "meets_target": speedup >= TARGET_SPEEDUP,
        "measured": "scan_library() wall time on a fresh SQLite database, progress off, same process; "
        "the re-scan follows immediately (files in the OS page cache)",
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
