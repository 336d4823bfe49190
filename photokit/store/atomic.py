"""Atomic file writes: write to a temp file in the same folder, fsync, then rename.

A crash or Ctrl-C leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path next to ``target``; on success it is renamed over ``target``.

    ``suffix`` defaults to the target's own suffix, so libraries that pick a format from the
    file name (Pillow, cv2) still do the right thing.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.",
        suffix=(target.suffix if suffix is None else suffix) + ".part",
        dir=target.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    # Writers are handed a name that ends in the real suffix (some libraries insist on it).
    work_path = tmp_path.with_name(tmp_path.name[: -len(".part")])
    try:
        yield work_path
        if not work_path.exists():
            raise FileNotFoundError(f"nothing was written to {work_path}")
        with open(work_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(work_path, target)
    finally:
        for leftover in (work_path, tmp_path):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """``open()`` for writing that only replaces ``target`` once the block finished cleanly."""
    if "w" not in mode:
        raise ValueError("atomic_open is for writing")
    with atomic_path(target) as tmp, open(tmp, mode) as fh:
        yield fh
        fh.flush()


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_open(target, "w") as fh:
        fh.write(text)
