"""Library database: SQLAlchemy 2 ORM models, sessions, and Alembic migrations.

``Database`` and ``open_database`` are loaded on first use (PEP 562), so that ``photokit.db.reader`` (the
stdlib read path of ``status`` and ``people list``) does not import SQLAlchemy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from photokit.db.session import Database, open_database

__all__ = ["Database", "open_database"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from photokit.db import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
