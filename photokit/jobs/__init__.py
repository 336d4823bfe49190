"""Jobs that many workers share: rows of the library database claimed with a lease (``queue``)."""

from photokit.jobs.queue import (
    ClaimedJob,
    Heartbeat,
    JobKind,
    JobOutcome,
    JobStatus,
    claim,
    claim_next,
    enqueue,
    finish,
    heartbeat,
    release,
    run_job,
    status_counts,
)

__all__ = [
    "ClaimedJob",
    "Heartbeat",
    "JobKind",
    "JobOutcome",
    "JobStatus",
    "claim",
    "claim_next",
    "enqueue",
    "finish",
    "heartbeat",
    "release",
    "run_job",
    "status_counts",
]
