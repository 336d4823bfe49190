"""Alembic, driven from code: the scripts live in ``migrations/`` (shipped as ``photokit.migrations``).

Alembic costs ~0.3 s to import, so it is imported only when a migration actually runs: whether the schema is
current is decided from the ``alembic_version`` table (SQLAlchemy, or stdlib ``sqlite3`` in ``reader.py``) and
the revision ids written in the scripts' file text (:func:`script_head`). SQLAlchemy too is imported only
inside the functions that take an engine.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING

from photokit.settings import CHECKOUT_DIR

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Engine

REVISION_SQL = "SELECT version_num FROM alembic_version"

_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def script_location() -> Path:
    checkout = CHECKOUT_DIR / "migrations"
    if (CHECKOUT_DIR / "pyproject.toml").is_file() and (checkout / "env.py").is_file():
        return checkout  # a source checkout (in an installed wheel CHECKOUT_DIR is site-packages)
    spec = importlib.util.find_spec("photokit.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("photokit's migration scripts are missing from this installation")
    return Path(next(iter(spec.submodule_search_locations)))


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    # ConfigParser reads '%' as interpolation: URL-encoded characters (%3A, passwords) must be doubled.
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


@functools.cache
def script_head() -> str | None:
    """The newest revision id, read from the scripts' ``revision =`` / ``down_revision =`` lines.

    None when that cannot be decided from the text alone (several heads, an unusual script): callers then
    fall back to Alembic, so a wrong answer here can only cost time, never skip a migration.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (script_location() / "versions").glob("*.py"):
        fields = dict(_REVISION_LINE.findall(script.read_text(encoding="utf-8")))
        if "revision" not in fields:
            continue
        names = _QUOTED.findall(fields["revision"])
        if len(names) != 1:
            return None
        revisions.add(names[0])
        parents.update(_QUOTED.findall(fields.get("down_revision", "")))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def is_known_revision(engine: Engine, revision: str) -> bool:
    """False for a revision this photokit's scripts do not have (a database written by a newer photokit)."""
    from alembic.script import ScriptDirectory

    try:
        return ScriptDirectory.from_config(alembic_config(engine)).get_revision(revision) is not None
    except Exception:  # alembic raises for unknown ids
        return False


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in ``alembic_version`` (None for an empty database)."""
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text(REVISION_SQL)).scalars().all()
    if len(rows) > 1:
        raise RuntimeError(f"database has several schema heads {sorted(rows)}; photokit expects one")
    return rows[0] if rows else None


def is_current(engine: Engine) -> bool:
    """True when the schema is at the newest revision, decided without importing Alembic."""
    head = script_head()
    return head is not None and current_revision(engine) == head


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a no-op when it is already there."""
    if revision == "head" and is_current(engine):
        return
    from alembic import command

    if revision == "head" and current_revision(engine) == head_revision(engine):
        return
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)
