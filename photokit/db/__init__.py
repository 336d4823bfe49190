"""Library database: SQLAlchemy 2 ORM models, sessions, and Alembic migrations."""

from photokit.db.session import Database, open_database

__all__ = ["Database", "open_database"]
