"""Who may talk to the gallery and which files it may send.

- Access token (like Jupyter's): ``?token=`` on the first visit sets an HttpOnly, SameSite=Strict cookie;
  every other request needs that cookie. Without it: 401 and a page that says nothing about the library.
- CSRF: state-changing requests are POST and carry ``csrf`` (form field or ``X-CSRF-Token`` header), an
  HMAC of the access token that pages embed; a cross-site page can neither read it nor send the cookie.
- Host header: only the address the server was started on (stops DNS-rebinding pages from reading it).
- Files: only a library photo's recorded location inside a scanned folder (symlinks resolved), a restored
  output recorded in the database, or the gallery's own cache. No request names a path.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from photokit.db.models import PhotoLocation, ScanRun

COOKIE = "photokit_token"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(access_token: str) -> str:
    return hmac.new(access_token.encode(), b"photokit-csrf", hashlib.sha256).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def host_allowed(host_header: str | None, allowed: frozenset[str]) -> bool:
    """``Host: name[:port]`` names one of the addresses this server answers to."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8765
        host = host[: host.find("]") + 1] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host in allowed


def library_roots(session: Session) -> list[Path]:
    """Every folder the user ever scanned, symlinks resolved."""
    roots: set[str] = set()
    for run_roots in session.scalars(select(ScanRun.roots)):
        roots.update(str(r) for r in run_roots or [])
    return [Path(os.path.realpath(r)) for r in sorted(roots)]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def in_library(session: Session, path: Path) -> bool:
    """``path`` (symlinks resolved) lies inside a folder the user scanned."""
    real = Path(os.path.realpath(path))
    return any(_inside(real, root) for root in library_roots(session))


def clean_recorded_path(raw: str | None) -> Path | None:
    """A path from the database, if it is absolute and free of ``..`` (never trusted blindly either)."""
    if not raw or "\x00" in raw:
        return None
    path = Path(raw)
    if not path.is_absolute() or ".." in path.parts:
        return None
    return path


def library_photo_file(session: Session, photo_id: int) -> Path | None:
    """The readable file of a library photo: a present location, resolved, inside a scanned folder."""
    roots = library_roots(session)
    locations = session.scalars(
        select(PhotoLocation.path).where(PhotoLocation.photo_id == photo_id, PhotoLocation.status == "present")
    ).all()
    for raw in locations:
        path = clean_recorded_path(raw)
        if path is None:
            continue
        real = Path(os.path.realpath(path))
        if real.is_file() and any(_inside(real, root) for root in roots):
            return real
    return None


def recorded_output_file(raw: str | None) -> Path | None:
    """A file the database recorded (a restoration's input or output): that very file, not a symlink that
    now points somewhere else."""
    path = clean_recorded_path(raw)
    if path is None or path.is_symlink() or not path.is_file():
        return None
    return path
