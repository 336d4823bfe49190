"""Where photokit keeps its data. Environment variables and CLI options both feed ``Settings``.

- ``PHOTOKIT_HOME`` (default ``~/.photokit``) holds ``library.db`` and the personal priors (``priors/``).
- ``PHOTOKIT_DB_URL`` replaces the SQLite file with any SQLAlchemy URL (e.g. PostgreSQL).
- ``PHOTOKIT_MODELS`` is the model store; by default the checkout's ``models_store/`` when photokit
  runs from a source checkout, else ``$PHOTOKIT_HOME/models``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent


def _checkout_models_dir() -> Path | None:
    """``models_store/`` next to the package when running from a checkout (not an installed wheel)."""
    if (CHECKOUT_DIR / "pyproject.toml").is_file() and (CHECKOUT_DIR / "models_store").is_dir():
        return CHECKOUT_DIR / "models_store"
    return None


@dataclass(frozen=True)
class Settings:
    home: Path
    models_dir: Path
    db_url: str

    @classmethod
    def load(
        cls,
        home: str | os.PathLike | None = None,
        models: str | os.PathLike | None = None,
        db_url: str | None = None,
    ) -> Settings:
        """Options win over environment variables, which win over defaults."""
        home_path = Path(home or os.environ.get("PHOTOKIT_HOME") or "~/.photokit").expanduser()
        models_env = models or os.environ.get("PHOTOKIT_MODELS")
        if models_env:
            models_path = Path(models_env).expanduser()
        else:
            models_path = _checkout_models_dir() or home_path / "models"
        url = db_url or os.environ.get("PHOTOKIT_DB_URL") or f"sqlite:///{home_path / 'library.db'}"
        return cls(home=home_path.resolve(), models_dir=models_path.resolve(), db_url=url)

    @property
    def priors_dir(self) -> Path:
        """Personal priors belong to a library (they are keyed by its person ids), so they live in its home."""
        return self.home / "priors"
