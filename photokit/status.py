"""Counts for ``photokit status``: library, faces, people, model store, personal priors.

It reads every layer, so it sits above them (next to the CLI), not inside the library layer."""

from __future__ import annotations

from sqlalchemy import func, select, text

from photokit.db import Database
from photokit.db.models import Face, Person, Photo, PhotoLocation, ScanRun, SkippedFile
from photokit.db.session import display_url
from photokit.settings import Settings


def _grouped(session, column) -> dict[str, int]:
    return {str(key): int(n) for key, n in session.execute(select(column, func.count()).group_by(column))}


def library_counts(db: Database) -> dict:
    with db.session(write=False) as session:
        last = session.execute(select(ScanRun).order_by(ScanRun.id.desc()).limit(1)).scalar_one_or_none()
        locations = {"present": 0, "missing": 0, "moved": 0} | _grouped(session, PhotoLocation.status)
        photos_present = session.scalar(
            select(func.count(func.distinct(PhotoLocation.photo_id))).where(PhotoLocation.status == "present")
        )
        return {
            "photos": session.scalar(select(func.count()).select_from(Photo)),
            "photos_present": photos_present,
            "locations": locations,
            "skipped": _grouped(session, SkippedFile.reason),
            "last_scan": None
            if last is None
            else {
                "started_at": last.started_at.isoformat(timespec="seconds"),
                "finished_at": last.finished_at.isoformat(timespec="seconds") if last.finished_at else None,
                "roots": last.roots,
                "summary": last.summary,
            },
        }


def faces_counts(db: Database) -> dict:
    from photokit.faces.descriptors import active_kind

    with db.session(write=False) as session:
        total = session.scalar(select(func.count()).select_from(Face))
        assigned = session.scalar(select(func.count()).select_from(Face).where(Face.person_id.is_not(None)))
        kind = active_kind(session)
        described = session.scalar(select(func.count()).select_from(Face).where(Face.descriptor_kind == str(kind)))
        return {
            "faces": total,
            "assigned": assigned,
            "unassigned": total - assigned,
            "photos": {"pending": 0, "done": 0, "failed": 0} | _grouped(session, Photo.faces_status),
            "descriptor": str(kind),
            "described": described,  # faces described by the active kind (fewer: a switch is under way)
        }


def people_counts(db: Database) -> dict:
    with db.session(write=False) as session:
        ignored = session.scalar(select(func.count()).select_from(Person).where(Person.ignored.is_(True)))
        named = session.scalar(
            select(func.count()).select_from(Person).where(Person.ignored.is_(False), Person.name.is_not(None))
        )
        unnamed = session.scalar(
            select(func.count()).select_from(Person).where(Person.ignored.is_(False), Person.name.is_(None))
        )
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


def face_search(db: Database) -> dict:
    """How face search runs: always the in-process (faiss) index; on PostgreSQL, whether the server could
    also offer pgvector (reported only: photokit does not use it). Read-only: no extension is created."""
    found: dict = {"index": "in-process (faiss)"}
    if db.engine.dialect.name == "postgresql":
        with db.session(write=False) as session:
            installed = session.scalar(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
            available = session.scalar(
                text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            )
        found["pgvector"] = "installed" if installed else "available" if available else "not on this server"
    return found


def collect_status(db: Database, settings: Settings) -> dict:
    return {
        "database": {"url": display_url(db.url), "revision": db.current_revision(), "face_search": face_search(db)},
        "library": library_counts(db),
        "faces": faces_counts(db),
        "people": people_counts(db),
        "models": model_store_counts(settings),
        "priors": priors_count(settings),
    }
