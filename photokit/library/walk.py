"""Finding the files under the folders a user scans.

Directory symlinks are followed, but every directory is entered once (by ``(st_dev, st_ino)``), so
symlink cycles cannot loop. Hidden and system folders (dot-folders, NAS thumbnails, recycle bins)
are skipped. Paths are canonical (symlinks resolved), so one file reached two ways is one location.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from photokit.errors import PhotokitError

# Folders that hold system or application data, never the user's photos (compared case-insensitively).
SYSTEM_DIR_NAMES = frozenset(
    name.casefold()
    for name in (
        "@eaDir",  # Synology thumbnails
        "@Recycle",
        "@Recently-Snapshot",
        "@__thumb",  # QNAP
        "#recycle",
        "#snapshot",  # Synology / Samba recycle bins
        "$RECYCLE.BIN",
        "RECYCLER",
        "System Volume Information",  # Windows
        "__MACOSX",  # macOS zip debris
        "lost+found",
    )
)
SYSTEM_FILE_NAMES = frozenset(name.casefold() for name in ("Thumbs.db", "desktop.ini", "Icon\r"))


def is_hidden_dir(name: str) -> bool:
    """Dot-folders (.git, .Trash-1000, .thumbnails, ...) and known system folders."""
    return name.startswith(".") or name.casefold() in SYSTEM_DIR_NAMES


def is_hidden_file(name: str) -> bool:
    """Dot-files (including macOS '._' resource forks) and OS bookkeeping files."""
    return name.startswith(".") or name.casefold() in SYSTEM_FILE_NAMES


@dataclass(frozen=True)
class FoundFile:
    path: str
    size: int
    mtime_ns: int


@dataclass
class WalkResult:
    files: list[FoundFile] = field(default_factory=list)
    # Canonical folders the walk fully covered: the roots plus the targets of followed symlinks.
    covered: list[str] = field(default_factory=list)
    # Folders that could not be listed: what was indexed under them must not be called missing.
    unreadable_dirs: list[str] = field(default_factory=list)

    def covers(self, path: str) -> bool:
        """True when the walk would have seen ``path`` had it existed."""
        if any(_is_under(path, d) for d in self.unreadable_dirs):
            return False
        for root in self.covered:
            if path == root:
                return True
            if _is_under(path, root):
                rel = path[len(root.rstrip(os.sep)) + 1 :].split(os.sep)
                if not any(is_hidden_dir(part) for part in rel[:-1]) and not is_hidden_file(rel[-1]):
                    return True
        return False


def _is_under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def resolve_roots(paths: list[str | os.PathLike]) -> list[Path]:
    """Canonical, existing roots (files or folders); a missing one is a user error."""
    if not paths:
        raise PhotokitError("no folder to scan was given")
    roots: list[Path] = []
    for raw in paths:
        if not str(raw).strip():  # Path("") would silently mean the current folder
            raise PhotokitError("an empty path was given: name a folder ('.' for the current folder)")
        path = Path(raw).expanduser()
        if not path.exists():
            raise PhotokitError(f"path not found: {raw}")
        resolved = path.resolve()
        if not (resolved.is_dir() or resolved.is_file()):
            raise PhotokitError(f"not a folder or a file: {raw}")
        if resolved not in roots:
            roots.append(resolved)
    return roots


def walk_roots(roots: list[Path], on_file: Callable[[int], None] | None = None) -> WalkResult:
    """Every regular file under ``roots`` (depth first, in name order), with its size and mtime."""
    walker = _Walker(on_file)
    for root in roots:
        walker.walk_root(str(root))
    return walker.result


class _Walker:
    """One walk's state: the files found so far, and the folders already visited (symlink cycles)."""

    def __init__(self, on_file: Callable[[int], None] | None) -> None:
        self.result = WalkResult()
        self.on_file = on_file
        self.visited_dirs: set[tuple[int, int]] = set()
        self.seen_files: set[str] = set()

    def add_file(self, path: str, st: os.stat_result) -> None:
        if path in self.seen_files:
            return
        self.seen_files.add(path)
        self.result.files.append(FoundFile(path, st.st_size, st.st_mtime_ns))
        if self.on_file is not None:
            self.on_file(len(self.result.files))

    def walk_root(self, root: str) -> None:
        try:
            st = os.stat(root)
        except OSError:
            self.result.unreadable_dirs.append(root)
            return
        self.result.covered.append(root)
        if stat.S_ISREG(st.st_mode):
            self.add_file(root, st)
            return
        if (st.st_dev, st.st_ino) in self.visited_dirs:
            return
        self.visited_dirs.add((st.st_dev, st.st_ino))
        stack = [root]
        while stack:
            stack.extend(reversed(self.list_folder(stack.pop())))

    def list_folder(self, folder: str) -> list[str]:
        """Add the folder's files; return its subfolders still to walk, in name order."""
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            self.result.unreadable_dirs.append(folder)
            return []
        subdirs: list[str] = []
        for entry in entries:
            try:
                if entry.is_dir():  # follows symlinks
                    subdir = self.new_subfolder(entry)
                    if subdir is not None:
                        subdirs.append(subdir)
                elif entry.is_file() and not is_hidden_file(entry.name):
                    path = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
                    self.add_file(path, entry.stat())
            except OSError:  # vanished meanwhile, or a dangling symlink
                continue
        return subdirs

    def new_subfolder(self, entry: os.DirEntry) -> str | None:
        """The folder to walk for ``entry``, or None when hidden or already visited (a cycle, or reached twice)."""
        if is_hidden_dir(entry.name):
            return None
        st = entry.stat()
        key = (st.st_dev, st.st_ino)
        if key in self.visited_dirs:
            return None
        self.visited_dirs.add(key)
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            self.result.covered.append(target)
            return target
        return entry.path
