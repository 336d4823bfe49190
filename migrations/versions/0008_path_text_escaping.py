"""Path columns hold a reversible text form (photokit.pathtext): a backslash in a stored path is now doubled.

Paths that are not valid UTF-8 could not be stored at all before, so rows written earlier only need their
backslashes escaped (``\\`` -> ``\\\\``); on Linux they are rare, but a row must read back as its own path.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PATH_COLUMNS = (
    ("photo_locations", "path"),
    ("photo_locations", "moved_from"),
    ("skipped_files", "path"),
    ("enhance_jobs", "source_path"),
    ("enhance_jobs", "output_path"),
)


def _replace(old: str, new: str) -> None:
    for table, column in PATH_COLUMNS:
        op.get_bind().execute(
            sa.text(f"UPDATE {table} SET {column} = REPLACE({column}, :old, :new) WHERE {column} IS NOT NULL"),
            {"old": old, "new": new},
        )


def upgrade() -> None:
    _replace("\\", "\\\\")


def downgrade() -> None:
    # Exact for every row written before 0008; a non-UTF-8 name stored since then stays in its escaped form.
    _replace("\\\\", "\\")
