"""Jobs that many workers share: rows of the library database claimed with a lease (``queue``)."""

from photokit.jobs.queue import (
    ClaimedJob,
    Heartbeat,
    JobKind,
    JobStatus,
    claim,
    enqueue,
    finish,
    heartbeat,
    release,
    status_counts,
)

__all__ = [
    "ClaimedJob",
    "Heartbeat",
    "JobKind",
    "JobStatus",
    "claim",
    "enqueue",
    "finish",
    "heartbeat",
    "release",
    "status_counts",
]
