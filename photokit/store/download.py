"""Resumable HTTP(S) downloads, reporting bytes as progress (stdlib ``urllib``; no extra dependency).

A download is written to a ``.part`` file that survives interruption; running the same install again
asks the server for the rest with an HTTP ``Range`` request. The caller checks the checksum and moves
the finished file into place atomically, so the model store never holds half a file.
"""

from __future__ import annotations

import http.client
import re
import urllib.error
import urllib.request
from pathlib import Path

from photokit import __version__
from photokit.errors import PhotokitError
from photokit.reporting import NULL_REPORTER, Reporter, reported_task

CHUNK = 1 << 16


class DownloadInterrupted(PhotokitError):
    """The connection broke; the partial file is kept so the next attempt resumes."""


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": f"photokit/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _resume_point(
    response, url: str, start: int, expected_size: int | None, partial: Path
) -> tuple[int, str, int | None]:
    """(first byte, file mode, total size or None) from the server's answer: 206 continues the partial
    file, 200 (the server ignored Range, or nothing to resume) starts over."""
    if response.status == 206:
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != start:
            raise PhotokitError(f"download of {url} failed: the server answered a resume request with a wrong range")
        total = int(match.group(3)) if match.group(3) != "*" else None
        mode = "ab"
    else:
        start, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
    if expected_size is not None and total is not None and total != expected_size:
        partial.unlink(missing_ok=True)
        raise PhotokitError(f"download of {url} failed: the server's file is {total} bytes, expected {expected_size}")
    return start, mode, total


def _copy_body(
    response, partial: Path, mode: str, url: str, start: int, total: int | None, reporter: Reporter, label: str
) -> None:
    """Append the response body to ``partial``, reporting bytes; a broken transfer keeps what arrived."""
    done = start
    with reported_task(reporter, f"download {url}", label, total, start) as task, open(partial, mode) as fh:
        try:
            while block := response.read(CHUNK):
                fh.write(block)
                done += len(block)
                reporter.task_advanced(task, len(block))
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            fh.flush()
            raise DownloadInterrupted(
                f"download of {url} interrupted after {done} of {total or '?'} bytes ({exc.__class__.__name__}); "
                f"run the same command again to resume"
            ) from None


def download(
    url: str,
    partial: Path,
    expected_size: int | None = None,
    reporter: Reporter = NULL_REPORTER,
    timeout: float = 60.0,
    label: str | None = None,
) -> Path:
    """Download ``url`` into ``partial`` (resuming what is there); returns ``partial`` once complete.

    Raises ``DownloadInterrupted`` (partial kept) when the transfer stops early, and ``PhotokitError``
    (partial removed) when the server's file has the wrong size.
    """
    if not url.startswith(("http://", "https://")):
        raise PhotokitError(f"unsupported URL '{url}': use http:// or https://")
    start = partial.stat().st_size if partial.exists() else 0
    if expected_size is not None and start > expected_size:
        partial.unlink()
        start = 0
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:
            match = re.match(r"bytes \*/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
            if match and int(match.group(1)) == start and expected_size in (None, start):
                return partial  # nothing left to fetch: the previous attempt got everything
            partial.unlink(missing_ok=True)  # the server's file is not what we have half of: start over
            return download(url, partial, expected_size, reporter, timeout, label)
        raise PhotokitError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadInterrupted(
            f"cannot reach {url} ({reason}); check the network and run the same command again"
        ) from None

    partial.parent.mkdir(parents=True, exist_ok=True)
    with response:
        start, mode, total = _resume_point(response, url, start, expected_size, partial)
        _copy_body(response, partial, mode, url, start, total, reporter, label or Path(url).name)
    final = partial.stat().st_size
    if total is not None and final < total:
        raise DownloadInterrupted(
            f"download of {url} stopped after {final} of {total} bytes; run the same command again to resume"
        )
    if (total is not None and final > total) or (expected_size is not None and final != expected_size):
        partial.unlink(missing_ok=True)
        raise PhotokitError(f"download of {url} failed: got {final} bytes, expected {expected_size or total}")
    return partial
