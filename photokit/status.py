"""Counts for ``photokit status``: library, faces, people, model store, personal priors.

It reads every layer, so it sits above them (next to the CLI), not inside the library layer."""

from __future__ import annotations

import json
from datetime import datetime

from photokit.db.reader import OpenLibrary, SqlReader, scalar
from photokit.db.vocab import LocationStatus
from photokit.faces.listing import active_kind
from photokit.settings import Settings

# Each count once, as portable SQL (``photokit.db.reader``: stdlib sqlite3 or SQLAlchemy run it).
PHOTOS_SQL = "SELECT COUNT(*) FROM photos"
PHOTOS_PRESENT_SQL = "SELECT COUNT(DISTINCT photo_id) FROM photo_locations WHERE status = :present"
LOCATIONS_SQL = "SELECT status, COUNT(*) FROM photo_locations GROUP BY status"
SKIPPED_SQL = "SELECT reason, COUNT(*) FROM skipped_files GROUP BY reason"
LAST_SCAN_SQL = "SELECT started_at, finished_at, roots, summary FROM scan_runs ORDER BY id DESC LIMIT 1"
FACES_SQL = "SELECT COUNT(*), COUNT(person_id) FROM faces"
DESCRIBED_SQL = "SELECT COUNT(*) FROM faces WHERE descriptor_kind = :kind"
FACES_STATUS_SQL = "SELECT faces_status, COUNT(*) FROM photos GROUP BY faces_status"
PEOPLE_SQL = """
SELECT COUNT(CASE WHEN ignored THEN 1 END),
       COUNT(CASE WHEN NOT ignored AND name IS NOT NULL THEN 1 END),
       COUNT(CASE WHEN NOT ignored AND name IS NULL THEN 1 END)
FROM people
"""
PGVECTOR_INSTALLED_SQL = "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
PGVECTOR_AVAILABLE_SQL = "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"


def _grouped(reader: SqlReader, sql: str) -> dict[str, int]:
    return {str(key): int(n) for key, n in reader.rows(sql)}


def _seconds(value: datetime | str | None) -> str | None:
    """A stored time as ISO text to the second (SQLite hands back text, PostgreSQL a datetime)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.isoformat(timespec="seconds")


def _json(value: object) -> object:
    """A JSON column's value (SQLite hands back its text, PostgreSQL the parsed value)."""
    return json.loads(value) if isinstance(value, str) else value


def _last_scan(reader: SqlReader) -> dict | None:
    found = reader.rows(LAST_SCAN_SQL)
    if not found:
        return None
    started, finished, roots, summary = found[0]
    return {
        "started_at": _seconds(started),
        "finished_at": _seconds(finished),
        "roots": _json(roots),
        "summary": _json(summary),
    }


def library_counts(reader: SqlReader) -> dict:
    return {
        "photos": scalar(reader, PHOTOS_SQL),
        "photos_present": scalar(reader, PHOTOS_PRESENT_SQL, {"present": LocationStatus.PRESENT.value}),
        "locations": {status.value: 0 for status in LocationStatus} | _grouped(reader, LOCATIONS_SQL),
        "skipped": _grouped(reader, SKIPPED_SQL),
        "last_scan": _last_scan(reader),
    }


def faces_counts(reader: SqlReader) -> dict:
    total, assigned = reader.rows(FACES_SQL)[0]
    kind = active_kind(reader)
    return {
        "faces": total,
        "assigned": assigned,
        "unassigned": total - assigned,
        "photos": {"pending": 0, "done": 0, "failed": 0} | _grouped(reader, FACES_STATUS_SQL),
        "descriptor": str(kind),
        # faces described by the active kind (fewer: a switch of kinds is under way)
        "described": scalar(reader, DESCRIBED_SQL, {"kind": str(kind)}),
    }


def people_counts(reader: SqlReader) -> dict:
    ignored, named, unnamed = reader.rows(PEOPLE_SQL)[0]
    return {"named": named, "unnamed": unnamed, "ignored": ignored}


def model_store_counts(settings: Settings) -> dict:
    """Installed / known models (never hashes model files: status must stay instant)."""
    from photokit.store.models import ModelStore

    entries = ModelStore(settings).list(hash_files=False)
    installed = [e.name for e in entries if e.installed]
    return {
        "known": len(entries),
        "installed": len(installed),
        "installed_names": installed,
        "dir": str(settings.models_dir),
    }


def priors_count(settings: Settings) -> int:
    """Finished personal priors (unfinished builds are not counted)."""
    from photokit.prior.meta import list_priors

    return sum(1 for prior in list_priors(settings) if "error" not in prior)


def face_search(reader: SqlReader) -> dict:
    """How face search runs: always the in-process (faiss) index; on PostgreSQL, whether the server could
    also offer pgvector (reported only: photokit does not use it). Read-only: no extension is created."""
    found: dict = {"index": "in-process (faiss)"}
    if reader.dialect == "postgresql":
        installed = scalar(reader, PGVECTOR_INSTALLED_SQL)
        available = scalar(reader, PGVECTOR_AVAILABLE_SQL)
        found["pgvector"] = "installed" if installed else "available" if available else "not on this server"
    return found


def collect_status(library: OpenLibrary, settings: Settings) -> dict:
    """Everything ``photokit status`` prints; the database counts come from one snapshot of the library."""
    reader = library.reader
    return {
        "database": {"url": library.shown_url, "revision": library.revision, "face_search": face_search(reader)},
        "library": library_counts(reader),
        "faces": faces_counts(reader),
        "people": people_counts(reader),
        "models": model_store_counts(settings),
        "priors": priors_count(settings),
    }
