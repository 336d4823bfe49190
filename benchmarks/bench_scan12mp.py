"""Face scanning on 12-megapixel JPEGs: photos per second, reduced-size decoding vs. full decode (issue 14).

Builds 4000x3000 JPEGs (quality 90) by enlarging photos of ../shared/data/faces onto textured canvases
(one to three per canvas, faces 150-1200 px wide) and runs the face analysis two ways, alternating photo
by photo in the same process:

* ``full``: the whole photo decoded at full size, then analysed (what scanning did before);
* ``reduced``: ``PhotoPixels`` — JPEG draft decoding for the detection copy, landmarks and descriptors on a
  crop from the smallest decode where the face is >= ``FaceConfig.face_px`` wide (what scanning does now).

A third way, ``reduced_mtcnn_all_threads``, runs MTCNN on all of torch's threads, as scanning did before
MTCNN got one thread (``FaceConfig.mtcnn_threads``). Then the reduced way runs again in 2 worker processes
of one thread each, as ``scan --ray`` workers would: that is the photos/s on 2 cores.

It reports photos/s and CPU seconds per photo of each way and how the faces compare: the same faces found (boxes matched at IoU > 0.5),
descriptor distances (dlib's same-person threshold is 0.6) and landmark differences relative to the face
size. Target: >= 2 photos/s on 2 cores with the same faces found (<= 1 CPU-s per photo).

    python -m benchmarks.run_all scan12mp
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(os.environ.get("PHOTOKIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SOURCES = (
    "deepface/img1.jpg",
    "deepface/img2.jpg",
    "face_recognition/obama.jpg",
    "face_recognition/biden.jpg",
    "deepface/img5.jpg",
    "face_recognition/two_people.jpg",
    "deepface/img10.jpg",
    "deepface/couple.jpg",
)
SIZE = (4000, 3000)


def make_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` 12 MP JPEGs each holding one to three enlarged shared photos."""
    rng = np.random.default_rng(seed)
    sources = [Image.open(SHARED / "data" / "faces" / name).convert("RGB") for name in SOURCES]
    y, x = np.mgrid[0 : SIZE[1] : 8, 0 : SIZE[0] : 8].astype(np.float32)
    paths = []
    for i in range(count):
        a, b = rng.uniform(0.002, 0.01, size=2)
        base = np.stack([np.sin(x * a + i), np.cos(y * b), np.sin((x + y) * a * b * 50)], axis=-1) * 0.3 + 0.5
        canvas = Image.fromarray((base * 255).astype(np.uint8)).resize(SIZE, Image.BILINEAR)
        slots = int(rng.integers(1, 4))
        for slot in range(slots):
            src = sources[int(rng.integers(len(sources)))]
            width = int(rng.uniform(600, 1300))  # pasted photo width: its faces end up ~150-1200 px wide
            height = round(src.height * width / src.width)
            pasted = src.resize((width, height), Image.LANCZOS)
            left = slot * SIZE[0] // slots + int(rng.integers(0, max(1, SIZE[0] // slots - width)))
            top = int(rng.integers(0, max(1, SIZE[1] - height)))
            canvas.paste(pasted, (left, top))
        path = folder / f"IMG_{i:04d}.jpg"
        canvas.save(path, quality=90)
        paths.append(path)
    return paths


def compare(full: list, reduced: list) -> dict:
    """Match faces by box IoU and measure how far the reduced-decode measurements are from full decode."""
    from photokit.faces.quality import box_iou

    matched, distances, landmark_err = 0, [], []
    for face in full:
        best = max(reduced, key=lambda r: box_iou(face.box, r.box), default=None)
        if best is None or box_iou(face.box, best.box) <= 0.5:
            continue
        matched += 1
        if face.embedding is not None and best.embedding is not None:
            distances.append(float(np.linalg.norm(face.embedding - best.embedding)))
        landmark_err.append(float(np.abs(face.landmarks68 - best.landmarks68).mean() / max(face.size_px, 1.0)))
    return {"full": len(full), "reduced": len(reduced), "matched": matched, "d": distances, "lm": landmark_err}


def _analyze_timed(analyzer, load_photo, path) -> tuple[list, float, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    faces = analyzer.analyze(load_photo(path))
    return faces, time.perf_counter() - started, time.process_time() - cpu_started


def _side_by_side(paths: list[Path], device: str) -> tuple[dict, dict, list]:
    """Every way on every photo, alternating photo by photo: wall and CPU seconds, and the face comparison."""
    from photokit.faces.analyze import FaceAnalyzer, FaceConfig
    from photokit.library.images import read_rgb
    from photokit.library.pixels import PhotoPixels

    analyzer = FaceAnalyzer(FaceConfig(), device=device)
    ways = {
        "full": (analyzer, read_rgb),
        "reduced": (analyzer, PhotoPixels.open),
        # as scanning ran before: MTCNN on all of torch's threads (2 here)
        "reduced_mtcnn_all_threads": (FaceAnalyzer(FaceConfig(mtcnn_threads=0), device=device), PhotoPixels.open),
    }
    analyzer.analyze(PhotoPixels.open(paths[0]))  # warm-up: first-call allocations
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    stats = []
    for path in paths:
        results = {}
        for way, (way_analyzer, load_photo) in ways.items():
            results[way], wall, cpu_s = _analyze_timed(way_analyzer, load_photo, path)
            seconds[way].append(wall)
            cpu[way].append(cpu_s)
        stats.append(compare(results["full"], results["reduced"]))
    return seconds, cpu, stats


_worker_analyzer = None


def _worker_start(device: str) -> None:
    global _worker_analyzer
    import torch

    from photokit.faces.analyze import FaceAnalyzer, FaceConfig

    torch.set_num_threads(1)
    _worker_analyzer = FaceAnalyzer(FaceConfig(), device=device)


def _worker_photo(path: Path) -> tuple[float, float, float, int]:
    """(start, end) as wall-clock time (comparable across processes), CPU seconds, faces found."""
    from photokit.library.pixels import PhotoPixels

    started, cpu_started = time.time(), time.process_time()
    faces = _worker_analyzer.analyze(PhotoPixels.open(path))  # type: ignore[union-attr]
    return started, time.time(), time.process_time() - cpu_started, len(faces)


def _in_worker_processes(paths: list[Path], device: str, workers: int = 2) -> dict:
    """Photos/s with ``workers`` processes of one thread each (what ``scan --ray`` workers do), timed from the
    first photo started to the last finished, models loaded and warmed up beforehand."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers, initializer=_worker_start, initargs=(device,)) as pool:
        pool.map(_worker_photo, paths[:workers], chunksize=1)  # warm-up (at least one photo per worker)
        timings = pool.map(_worker_photo, paths, chunksize=1)
    span = max(t[1] for t in timings) - min(t[0] for t in timings)
    return {
        "workers": workers,
        "photos_per_s": round(len(paths) / span, 2),
        "cpu_s_per_photo_mean": round(statistics.mean(t[2] for t in timings), 3),
        "faces": sum(t[3] for t in timings),
    }


def run(device: str = "cpu", quick: bool = False) -> dict:
    import torch

    if not (SHARED / "data" / "faces").is_dir():
        return {"skipped": f"../shared is absent ({SHARED}): the benchmark pastes its face photos"}
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    load = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(Path(tmp), 4 if quick else 12)
        seconds, cpu, stats = _side_by_side(paths, device)
        load_parallel = list(os.getloadavg())
        parallel = _in_worker_processes(paths, device) if device == "cpu" else None
    distances = [d for s in stats for d in s["d"]]
    landmark_err = [e for s in stats for e in s["lm"]]
    return {
        "photos": len(paths),
        "photo_size": f"{SIZE[0]}x{SIZE[1]} JPEG q90",
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load,
        "load_average_at_end": list(os.getloadavg()),
        "method": "same process, the ways alternating photo by photo; models loaded beforehand. full: full "
        "decode; reduced: reduced decodes (the default); reduced_mtcnn_all_threads: reduced with MTCNN on all "
        "of torch's threads (before). CPU seconds count all threads of the process: steadier than wall time "
        "on a shared machine",
        "photos_per_s": {k: round(len(v) / sum(v), 2) for k, v in seconds.items()},
        "median_s_per_photo": {k: round(statistics.median(v), 3) for k, v in seconds.items()},
        "median_cpu_s_per_photo": {k: round(statistics.median(v), 3) for k, v in cpu.items()},
        "mean_cpu_s_per_photo": {k: round(statistics.mean(v), 3) for k, v in cpu.items()},
        "speedup": round(sum(seconds["full"]) / sum(seconds["reduced"]), 2),
        "cpu_speedup": round(sum(cpu["full"]) / sum(cpu["reduced"]), 2),
        "cpu_speedup_one_mtcnn_thread": round(sum(cpu["reduced_mtcnn_all_threads"]) / sum(cpu["reduced"]), 2),
        "two_worker_processes": parallel,
        "load_average_before_worker_processes": load_parallel,
        "faces_full_decode": sum(s["full"] for s in stats),
        "faces_reduced_decode": sum(s["reduced"] for s in stats),
        "faces_matched": sum(s["matched"] for s in stats),
        "same_faces_found": all(s["full"] == s["reduced"] == s["matched"] for s in stats),
        "descriptor_distance_max": round(max(distances), 4) if distances else None,
        "descriptor_distance_median": round(statistics.median(distances), 4) if distances else None,
        "landmark_error_mean_over_face_size": round(statistics.mean(landmark_err), 5) if landmark_err else None,
        "meets_target_2_photos_per_s": bool(parallel and parallel["photos_per_s"] >= 2.0),
        "cpu_s_per_photo_within_2_core_budget": sum(cpu["reduced"]) / len(paths) <= 1.0,
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
