"""The model store: which catalog models are installed, installing (file or URL), verifying, removing.

Generators are converted to photokit's format (safetensors + JSON config) when installed: loading them
later is fast and never involves a pickle. LPIPS backbones and facenet weights are copied, unchanged,
to where torchvision / facenet-pytorch look for them. ``installed.json`` in the store records each
install (source, sizes, SHA-256) so ``models verify`` can tell when a file changed.
Just over 400 lines: one store class whose install, verify and remove share the same records.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from photokit.errors import MissingModelError, PhotokitError, Remedy
from photokit.reporting import NULL_REPORTER, Reporter
from photokit.settings import Settings
from photokit.store.atomic import atomic_path, atomic_write_text
from photokit.store.catalog import (
    CATALOG,
    GENERATOR,
    GENERATOR_PREFERENCE,
    IN_STORE,
    TORCH_CHECKPOINTS,
    TORCH_HUB,
    CatalogEntry,
    catalog_entry,
)
from photokit.store.directions import (
    DIRECTION,
    check_name,
    direction_entry,
    install_direction,
    installed_directions,
    is_direction_file,
    read_direction,
)
from photokit.store.download import download
from photokit.store.hashing import file_sha256

RECORDS_FILE = "installed.json"


class GeneratorFiles(Protocol):
    """Reading, checking and converting generator checkpoints. The prior layer provides it
    (``photokit.stylegan2.GENERATOR_FILES``), so the store stays beneath the generator layer."""

    def install(self, source: Path, target: Path, label: str, resolution: int | None, metadata: dict) -> dict:
        """Read ``source`` safely, check it, write it to ``target`` in photokit's format; describe it."""

    def fingerprint(self, path: Path) -> str:
        """The identity of the weights in an installed generator file."""


def torch_home() -> Path:
    """``$TORCH_HOME`` as torch resolves it (``torch.hub.get_dir()`` is ``<torch home>/hub``).

    Listing models must not import torch (~2 s): until something imports it, nothing can have called
    ``torch.hub.set_dir``, so torch's own environment rule gives the same answer.
    """
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir()).parent
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch"))))


@dataclass
class ModelStatus:
    entry: CatalogEntry
    installed: bool
    path: Path
    bytes: int | None = None
    sha256: str | None = None
    record: dict | None = None
    changed: bool = False  # the file is not the one recorded at install (``models verify`` says more)

    @property
    def name(self) -> str:
        return self.entry.name

    def to_json(self) -> dict[str, Any]:
        data = self.entry.to_json()
        data.update(
            {
                "installed": self.installed,
                "path": str(self.path),
                "bytes": self.bytes,
                "sha256": self.sha256,
                "changed": self.changed,
            }
        )
        if self.record:
            data["installed_from"] = self.record.get("source")
            data["source_sha256"] = self.record.get("source_sha256")
            for key in ("resolution", "num_ws", "fingerprint", "random_weights"):
                if key in self.record:
                    data[key] = self.record[key]
        return data


class ModelStore:
    def __init__(
        self,
        settings: Settings,
        catalog: tuple[CatalogEntry, ...] = CATALOG,
        generator_files: GeneratorFiles | None = None,
    ) -> None:
        self.settings = settings
        self.root = settings.models_dir
        self.catalog = catalog
        self.generator_files = generator_files  # needed only to install or verify generators

    def _generator_files(self) -> GeneratorFiles:
        if self.generator_files is None:
            raise RuntimeError("installing or verifying generators needs ModelStore(..., generator_files=...)")
        return self.generator_files

    def entry(self, name: str) -> CatalogEntry:
        """A catalog model, or an installed edit direction (``store/directions.py``)."""
        try:
            return catalog_entry(name, self.catalog)
        except PhotokitError:
            if name in installed_directions(self.root):
                return direction_entry(name)
            raise

    # -- locations -----------------------------------------------------------------------------------
    def target_path(self, entry: CatalogEntry) -> Path:
        if entry.location == TORCH_HUB:
            return torch_home() / "hub" / "checkpoints" / entry.filename
        if entry.location == TORCH_CHECKPOINTS:
            return torch_home() / "checkpoints" / entry.filename
        assert entry.location == IN_STORE
        subdir = "generators" if entry.kind == GENERATOR else "directions" if entry.kind == DIRECTION else entry.kind
        return self.root / subdir / entry.filename

    def _partial_path(self, name: str, url: str) -> Path:
        return self.root / ".downloads" / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.part"

    # -- records -------------------------------------------------------------------------------------
    def _records(self) -> dict[str, dict]:
        path = self.root / RECORDS_FILE
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}  # a damaged record only loses cached hashes; files are rechecked
        return data if isinstance(data, dict) else {}

    def _write_records(self, records: dict[str, dict]) -> None:
        atomic_write_text(self.root / RECORDS_FILE, json.dumps(records, indent=2, sort_keys=True))

    # -- queries -------------------------------------------------------------------------------------
    def status(self, name: str, hash_files: bool = True) -> ModelStatus:
        """What is installed under ``name``. A file with no recorded hash (e.g. put there by torchvision
        itself) is hashed once and recorded; a recorded hash is never replaced here, so a file changed
        since its install is reported (``changed``) and ``models verify`` keeps failing on it."""
        entry = self.entry(name)
        path = self.target_path(entry)
        record = self._records().get(name)
        if not path.is_file():
            return ModelStatus(entry, False, path)
        stat = path.stat()
        same_stat = bool(record) and record.get("bytes") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns
        recorded = (record or {}).get("sha256")
        if recorded:
            if same_stat:
                return ModelStatus(entry, True, path, stat.st_size, recorded, record)
            if not hash_files:  # size or time differ from the record, and we may not look inside
                return ModelStatus(entry, True, path, stat.st_size, None, record, changed=True)
            sha = file_sha256(path)
            if sha != recorded:
                return ModelStatus(entry, True, path, stat.st_size, sha, record, changed=True)
            # Same content, new time stamp (copied, touched): remember the stamp, keep the hash.
            record = self._update_record(name, {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})
            return ModelStatus(entry, True, path, stat.st_size, sha, record)
        if not hash_files:
            return ModelStatus(entry, True, path, stat.st_size, None, record)
        record = self._update_record(
            name,
            {
                "path": str(path),
                "bytes": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": file_sha256(path),
                "source": (record or {}).get("source", "found in place"),
            },
        )
        return ModelStatus(entry, True, path, stat.st_size, record["sha256"], record)

    def _update_record(self, name: str, fields: dict[str, Any]) -> dict:
        """Remember a hash or time stamp found while listing: a cache, so a read-only store only costs a rehash."""
        records = self._records()
        records[name] = {**records.get(name, {}), **fields}
        with contextlib.suppress(OSError):
            self._write_records(records)
        return records[name]

    def list(self, hash_files: bool = True) -> list[ModelStatus]:
        names = [entry.name for entry in self.catalog] + list(installed_directions(self.root))
        return [self.status(name, hash_files) for name in names]

    def installed_path(self, name: str) -> Path | None:
        path = self.target_path(self.entry(name))
        return path if path.is_file() else None

    def default_generator_path(self) -> Path | None:
        """The base face generator for priors and restoration: the best one installed (1024 px first)."""
        generators = [e.name for e in self.catalog if e.kind == GENERATOR]
        ranked = [n for n in GENERATOR_PREFERENCE if n in generators] + [
            n for n in generators if n not in GENERATOR_PREFERENCE
        ]
        for name in ranked:
            path = self.installed_path(name)
            if path is not None:
                return path
        return None

    def require_generator(self) -> Path:
        """``default_generator_path`` or a MissingModelError that says how to install one."""
        path = self.default_generator_path()
        if path is None:
            raise MissingModelError(
                "no StyleGAN2 face generator is installed", Remedy.INSTALL_GENERATOR, model="ffhq-256"
            )
        return path

    # -- install / remove / verify --------------------------------------------------------------------
    def install(
        self,
        name: str,
        from_file: str | os.PathLike | None = None,
        url: str | None = None,
        reporter: Reporter = NULL_REPORTER,
    ) -> ModelStatus:
        if is_direction_file(from_file) and not any(e.name == name for e in self.catalog):
            entry = direction_entry(check_name(name))
        else:
            entry = self.entry(name)
        if from_file is not None and url is not None:
            raise PhotokitError("give either a file or a URL to install from, not both")
        source, source_label, downloaded = self._fetch_source(entry, name, from_file, url, reporter)
        try:
            source_sha = file_sha256(source)
            self._check_source(entry, source, source_sha, downloaded)
            target = self.target_path(entry)
            record = self._copy_in(entry, source, source_label, source_sha, target)
        except BaseException as exc:
            if downloaded is not None and not isinstance(exc, KeyboardInterrupt):
                downloaded.unlink(missing_ok=True)  # a bad download is never resumed
            raise
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
        stat = target.stat()
        record.update(
            {
                "path": str(target),
                "bytes": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": source_sha if entry.kind not in (GENERATOR, DIRECTION) else file_sha256(target),
            }
        )
        records = self._records()
        records[name] = record
        self._write_records(records)
        return self.status(name)

    def _fetch_source(
        self, entry: CatalogEntry, name: str, from_file, url: str | None, reporter: Reporter
    ) -> tuple[Path, str, Path | None]:
        """(file to install, where it came from, the download to delete afterwards or None)."""
        if from_file is not None:
            source = Path(from_file).expanduser()
            if not source.is_file():
                raise PhotokitError(f"file not found: {source}")
            return source, str(source.resolve()), None
        url = url or entry.url
        if not url:
            raise MissingModelError(
                f"photokit knows no download URL for {name}: get it from {entry.get_it}",
                Remedy.INSTALL_FROM_FILE,
                model=name,
            )
        downloaded = download(url, self._partial_path(name, url), entry.size, reporter=reporter, label=name)
        return downloaded, url, downloaded

    def _copy_in(
        self, entry: CatalogEntry, source: Path, source_label: str, source_sha: str, target: Path
    ) -> dict[str, Any]:
        """Convert or copy a checked source into the store; the install record so far."""
        record: dict[str, Any] = {
            "source": source_label,
            "source_sha256": source_sha,
            "source_bytes": source.stat().st_size,
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if entry.kind == GENERATOR:
            record.update(self._install_generator(entry, source, source_sha, target))
        elif entry.kind == DIRECTION:
            record["shape"] = list(install_direction(source, target).shape)
        else:
            self._check_state_dict(entry, source)
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        return record

    def _check_source(self, entry: CatalogEntry, source: Path, sha: str, downloaded: Path | None) -> None:
        if entry.size is not None and downloaded is not None and source.stat().st_size != entry.size:
            raise PhotokitError(
                f"{entry.name}: downloaded file is {source.stat().st_size} bytes, expected {entry.size}"
            )
        if entry.sha256 and sha != entry.sha256:
            raise PhotokitError(
                f"{entry.name}: SHA-256 mismatch (got {sha[:16]}..., expected {entry.sha256[:16]}...): "
                f"the file is not the one photokit expects"
            )
        if entry.sha256_prefix and not sha.startswith(entry.sha256_prefix):
            raise PhotokitError(
                f"{entry.name}: SHA-256 {sha[:16]}... does not start with {entry.sha256_prefix} "
                f"as torchvision's file name {entry.filename} says: wrong or damaged file"
            )

    def _install_generator(self, entry: CatalogEntry, source: Path, source_sha: str, target: Path) -> dict:
        return self._generator_files().install(
            source, target, entry.name, entry.resolution, {"installed_as": entry.name, "source_sha256": source_sha}
        )

    def _check_state_dict(self, entry: CatalogEntry, source: Path) -> None:
        import torch

        try:
            state = torch.load(str(source), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise PhotokitError(
                f"{source.name} is not a loadable PyTorch weights file for {entry.name} "
                f"({str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__})"
            ) from None
        missing = [k for k in entry.expect_keys if not (isinstance(state, dict) and k in state)]
        if missing:
            raise PhotokitError(f"{source.name} does not look like {entry.title}: missing '{missing[0]}'")
        problem = entry.shape_problem(state)
        if problem:
            raise PhotokitError(f"{source.name} does not look like {entry.title}: {problem}")

    def remove(self, name: str) -> Path:
        entry = self.entry(name)
        path = self.target_path(entry)
        if not path.is_file():
            raise PhotokitError(f"model '{name}' is not installed")
        path.unlink()
        records = self._records()
        if records.pop(name, None) is not None:
            self._write_records(records)
        return path

    def verify(self, names: builtins.list[str] | None = None) -> builtins.list[dict[str, Any]]:
        """Re-hash every installed model (and load generators) against catalog and install records."""
        results = []
        everything = [*self.catalog, *(direction_entry(n) for n in installed_directions(self.root))]
        for entry in everything if not names else [self.entry(n) for n in names]:
            path = self.target_path(entry)
            if not path.is_file():
                results.append({"name": entry.name, "installed": False, "ok": None, "problem": None})
                continue
            record = self._records().get(entry.name) or {}
            sha = file_sha256(path)
            problem = None
            if record.get("sha256") and record["sha256"] != sha:
                problem = "file changed since it was installed (SHA-256 differs from the install record)"
            elif entry.kind != GENERATOR and entry.sha256 and sha != entry.sha256:
                problem = "SHA-256 differs from the catalog's"
            elif entry.kind != GENERATOR and entry.sha256_prefix and not sha.startswith(entry.sha256_prefix):
                problem = f"SHA-256 does not start with {entry.sha256_prefix} (torchvision's file name)"
            else:
                try:
                    if entry.kind == DIRECTION:
                        read_direction(path)
                    elif entry.kind == GENERATOR:
                        fingerprint = self._generator_files().fingerprint(path)
                        if record.get("fingerprint") and fingerprint != record["fingerprint"]:
                            problem = "generator weights differ from the install record"
                    else:
                        self._check_state_dict(entry, path)
                except PhotokitError as exc:
                    problem = str(exc)
            results.append(
                {
                    "name": entry.name,
                    "installed": True,
                    "ok": problem is None,
                    "problem": problem,
                    "path": str(path),
                    "sha256": sha,
                    "bytes": path.stat().st_size,
                }
            )
        return results
