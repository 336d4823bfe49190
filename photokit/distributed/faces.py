"""Face detection on Ray: one job per pending photo (``JobKind.FACE_DETECT``), workers that keep the
detector and dlib's models loaded, then one clustering pass on the submitting machine (it needs every
face at once). Redoing a photo after a worker died is safe: detection keeps the ids of faces it finds
again (``store_faces``)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import select

from photokit.db.models import Photo
from photokit.db.session import Database, create_db_engine
from photokit.db.vocab import FacesStatus, JobStatus
from photokit.distributed.workers import run_batch_on_workers, start_workers
from photokit.faces.pipeline import MAX_REPORTED_ERRORS, FaceRunSummary
from photokit.jobs.queue import ClaimedJob, JobKind, JobOutcome, enqueue
from photokit.reporting import NULL_REPORTER, Reporter


class FaceDetectHandler:
    def __init__(self, db_url: str, device: str, detector: str, descriptor: str) -> None:
        from photokit.faces.analyze import FaceAnalyzer, FaceConfig

        self.db = Database(engine=create_db_engine(db_url), url=db_url)
        self.detector = detector
        self.analyzer = FaceAnalyzer(FaceConfig(detector=detector, descriptor=descriptor), device=device)

    def __call__(self, job: ClaimedJob) -> JobOutcome:
        from photokit.faces.pipeline import PHOTO_ERRORS, detect_photo, record_photo_failure

        photo_id = int(job.subject.removeprefix("photo:"))
        with self.db.session() as session:
            photo = session.get(Photo, photo_id)
            if photo is None:
                return JobOutcome(JobStatus.SKIPPED, error=f"photo {photo_id} is no longer in the library")
            try:
                path, found, counts = detect_photo(session, photo, self.analyzer, self.detector)
            except PHOTO_ERRORS as exc:
                transient = record_photo_failure(photo, exc)
                return JobOutcome(JobStatus.FAILED, error=photo.faces_error, report={"transient": transient})
        return JobOutcome(JobStatus.DONE, output=path, report={"faces": found, **counts})


@dataclass
class FaceDetectFactory:
    db_url: str
    device: str
    detector: str
    descriptor: str

    def __call__(self) -> FaceDetectHandler:
        return FaceDetectHandler(self.db_url, self.device, self.detector, self.descriptor)


def detect_faces_on_ray(
    db,
    device: str,
    detector: str,
    workers: int,
    num_gpus: float = 0,
    reporter: Reporter = NULL_REPORTER,
    descriptor: str | None = None,
) -> FaceRunSummary:
    """Detect faces on every pending photo with Ray workers, then cluster; the same summary as
    ``process_pending_photos``'s. Faces left to describe after a switch of descriptor kinds are
    described here, on the submitting machine, before clustering."""
    from photokit.faces.assignment import cluster_faces
    from photokit.faces.pipeline import choose_descriptor

    kind, stale = choose_descriptor(db, descriptor)
    started = time.perf_counter()
    with db.session() as session:
        ids = list(
            session.scalars(select(Photo.id).where(Photo.faces_status == FacesStatus.PENDING).order_by(Photo.id))
        )
    summary = FaceRunSummary(photos=len(ids), detector=detector, device=device, workers=workers, descriptor=kind)
    if ids:
        key = "faces-" + hashlib.sha256(f"{detector}:{kind}:{ids}".encode()).hexdigest()[:26]
        options = {"detector": detector, "descriptor": kind}
        enqueue(db, JobKind.FACE_DETECT, key, [f"photo:{i}" for i in ids], options)
        factory = FaceDetectFactory(db.url, device, detector, kind)
        actors = start_workers(db.url, factory, workers, num_gpus=num_gpus)
        try:
            outcomes = run_batch_on_workers(
                db, key, actors, reporter, f"faces on {workers} Ray workers", total=len(ids)
            )  # fmt: skip
        finally:
            import ray

            for actor in actors:
                ray.kill(actor)
        for outcome in outcomes:
            if outcome["status"] == JobStatus.DONE.value:
                summary.done += 1
                for name in ("faces", "kept", "added", "removed"):
                    setattr(summary, name, getattr(summary, name) + outcome["report"][name])
            elif outcome["status"] == JobStatus.FAILED.value:
                if outcome["report"]["transient"]:
                    summary.retry_later += 1
                else:
                    summary.failed += 1
                if len(summary.errors) < MAX_REPORTED_ERRORS:
                    summary.errors.append({"photo_id": int(outcome["subject"][6:]), "error": outcome["error"]})
    if stale:
        summary.redescribed = _redescribe_here(db, device, detector, kind, reporter)
    cluster_started = time.perf_counter()
    summary.detect_seconds = round(cluster_started - started, 2)
    with db.session() as session:
        summary.clustering = cluster_faces(session)
    summary.cluster_seconds = round(time.perf_counter() - cluster_started, 2)
    summary.seconds = round(time.perf_counter() - started, 2)
    return summary


def _redescribe_here(db, device: str, detector: str, kind: str, reporter: Reporter):
    """Describe the faces of another kind again, in this process (the workers only detect new photos)."""
    from photokit.faces.analyze import FaceAnalyzer, FaceConfig
    from photokit.faces.descriptors import refresh_descriptors

    analyzer = FaceAnalyzer(FaceConfig(detector=detector, descriptor=kind), device=device)
    return refresh_descriptors(db, analyzer, reporter)
