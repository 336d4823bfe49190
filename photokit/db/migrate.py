"""Alembic, driven from code: the scripts live in ``migrations/`` (shipped as ``photokit.migrations``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from photokit.settings import CHECKOUT_DIR


def script_location() -> Path:
    checkout = CHECKOUT_DIR / "migrations"
    if (CHECKOUT_DIR / "pyproject.toml").is_file() and (checkout / "env.py").is_file():
        return checkout  # a source checkout (in an installed wheel CHECKOUT_DIR is site-packages)
    spec = importlib.util.find_spec("photokit.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("photokit's migration scripts are missing from this installation")
    return Path(next(iter(spec.submodule_search_locations)))


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    # ConfigParser reads '%' as interpolation: URL-encoded characters (%3A, passwords) must be doubled.
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def is_known_revision(engine: Engine, revision: str) -> bool:
    """False for a revision this photokit's scripts do not have (a database written by a newer photokit)."""
    try:
        return ScriptDirectory.from_config(alembic_config(engine)).get_revision(revision) is not None
    except Exception:  # alembic raises for unknown ids
        return False


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a no-op when it is already there."""
    if revision == "head" and current_revision(engine) == head_revision(engine):
        return
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)
