"""Library identity: a UUID per library database, so personal priors are never applied to another library.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "library_info",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.bulk_insert(table, [{"key": "library_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("library_info")
