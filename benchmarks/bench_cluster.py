"""Distributed work: album restoration on 1 vs 2 local Ray workers, and job-claim latency on PostgreSQL.

1. Throughput: the same album (photos of ../shared/data/faces/face_recognition, each with a face) restored
   by 1 Ray worker and by 2, one after the other in one run, over a throwaway PostgreSQL server; the
   ratio is 2-worker / 1-worker photos per second. Each worker uses one CPU thread and a tiny random
   generator (128 px, a few projection steps): this measures the job machinery's scaling, not restoration
   quality. Reported both with worker start-up (loading the detector and generator: a user waits for it)
   and in steady state (first photo done to last).
2. Claim latency: 10,000 jobs queued on PostgreSQL (2,000 with --quick); one worker claims and finishes
   jobs; median and 95th percentile milliseconds per claim at the start and near the end of the queue.

    python -m benchmarks.run_all cluster            # about 3-5 min on 2 idle cores
    python -m benchmarks.run_all cluster --quick

On a machine shared with other work the figures are noisy: the load average is recorded next to them.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from photokit.db.models import EnhanceJob
from photokit.distributed.album import EnhanceHandler, restore_album_on_ray
from photokit.jobs import JobKind, JobStatus, claim, enqueue, finish
from photokit.reporting import RecordingReporter
from photokit.restore.batch import queue_album
from photokit.restore.options import EnhanceOptions

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "faces" / "face_recognition"
PHOTOS = ["obama_small.jpg", "obama-240p.jpg", "biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg"]


def _options(out_dir: Path, steps: int) -> EnhanceOptions:
    return EnhanceOptions(scale=2, steps=steps, loss="mse", out_dir=out_dir)


@dataclass
class TinyGeneratorFactory:
    """Built inside each Ray worker: a tiny random generator, one torch thread (one CPU per worker)."""

    out_dir: Path
    steps: int
    targets: dict[str, str]

    def __call__(self) -> EnhanceHandler:
        import torch

        from photokit.restore.pipeline import Enhancer
        from photokit.restore.priors import NoPeople, StaticPriors
        from photokit.stylegan2.base import BaseGenerator
        from photokit.stylegan2.network import build_tiny_generator

        torch.set_num_threads(1)
        priors = StaticPriors(BaseGenerator(build_tiny_generator(resolution=128, seed=5), "tiny", pretrained=False))
        enhancer = Enhancer(_options(self.out_dir, self.steps), priors, NoPeople(), device="cpu")
        return EnhanceHandler(enhancer, self.targets)


class TimingReporter(RecordingReporter):
    """Remembers when each photo finished, to tell worker start-up from steady-state throughput."""

    def __init__(self) -> None:
        super().__init__()
        self.finished_at: list[float] = []

    def task_advanced(self, key: str, advance: float = 1, status: str | None = None) -> None:
        super().task_advanced(key, advance, status)
        self.finished_at.append(time.perf_counter())


def _album(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        shutil.copy(SHARED / PHOTOS[i % len(PHOTOS)], folder / f"photo{i + 1:03d}.jpg")
    return folder


def restoration_throughput(server, work: Path, photos: int, steps: int) -> dict:
    import ray

    from photokit.db import open_database
    from photokit.settings import Settings

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        album = _album(work / "Album", photos)
        runs = {}
        for workers in (1, 2):
            db = open_database(Settings.load(home=work / f"home{workers}", db_url=server.create_database()))
            out = work / f"out{workers}"
            options = _options(out, steps)
            plan = queue_album(db, [album], options)
            reporter = TimingReporter()
            started = time.perf_counter()
            summary = restore_album_on_ray(
                db, plan, options, TinyGeneratorFactory(out, steps, plan.targets), workers, reporter=reporter
            )
            seconds = time.perf_counter() - started
            assert len(summary.done) == photos, summary.to_json()
            # Steady state: from the first photo done to the last (models loaded, every worker busy).
            times = reporter.finished_at
            steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
            runs[workers] = {
                "seconds": round(seconds, 2),
                "photos_per_s": round(photos / seconds, 4),
                "first_photo_after_s": round(times[0] - started, 2),
                "steady_photos_per_s": None if steady is None else round(steady, 4),
            }
            db.dispose()
    finally:
        ray.shutdown()
    return {
        "photos": photos,
        "projection_steps": steps,
        "generator": "tiny random (128 px): measures scaling, not quality",
        "one_worker": runs[1],
        "two_workers": runs[2],
        "speedup_2_vs_1": round(runs[2]["photos_per_s"] / runs[1]["photos_per_s"], 3),
        "steady_speedup_2_vs_1": (
            round(runs[2]["steady_photos_per_s"] / runs[1]["steady_photos_per_s"], 3)
            if runs[1]["steady_photos_per_s"] and runs[2]["steady_photos_per_s"]
            else None
        ),
    }


def _claim_ms(db, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        job = claim(db, "bench", "bench-worker", lease_s=600)
        times.append((time.perf_counter() - started) * 1000)
        finish(db, job.id, "bench-worker", JobStatus.DONE)
    return times


def _summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "claims": len(times),
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def claim_latency(server, jobs: int, timed: int = 300) -> dict:
    from photokit.db import open_database
    from photokit.settings import Settings

    db = open_database(Settings.load(db_url=server.create_database()))
    started = time.perf_counter()
    enqueue(db, JobKind.ENHANCE, "bench", [f"/photos/{i:06d}.jpg" for i in range(jobs)])
    enqueue_s = time.perf_counter() - started
    first = _claim_ms(db, timed)
    with db.session() as session:  # jump to the end of the queue: all but the last `timed` jobs are done
        skipped = select(EnhanceJob.id).where(EnhanceJob.status == "queued").order_by(EnhanceJob.id)
        session.execute(
            update(EnhanceJob).where(EnhanceJob.id.in_(skipped.limit(jobs - 2 * timed))).values(status="done")
        )
    last = _claim_ms(db, timed)
    db.dispose()
    return {
        "queued_jobs": jobs,
        "enqueue_seconds": round(enqueue_s, 2),
        "at_start_of_queue": _summary(first),
        "near_end_of_queue": _summary(last),
    }


def run(device: str = "cpu", quick: bool = False) -> dict:
    from tests.pg_server import PostgresServer

    load_before = os.getloadavg()
    with PostgresServer() as server, tempfile.TemporaryDirectory(prefix="bench_cluster_") as tmp:
        latency = claim_latency(server, 2_000 if quick else 10_000)
        throughput = restoration_throughput(server, Path(tmp), photos=6 if quick else 12, steps=5 if quick else 20)
    return {
        "claim_latency_postgres": latency,
        "restoration_1_vs_2_ray_workers": throughput,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "note": "2 CPU cores shared with other work while measured: see the load averages",
    }
