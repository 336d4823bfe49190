"""Ctrl-C that waits for a consistent state: long jobs checkpoint and resume, so an update must never be
half-applied (weights stepped but the step counter not yet advanced) when the user interrupts."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """A Ctrl-C (SIGINT) received inside the block is raised as KeyboardInterrupt when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
