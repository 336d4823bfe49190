"""Suggestions the user dismissed (`photokit people suggest --dismiss`), so they are not made again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dismissed_suggestions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("other_person_id", sa.Integer(), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=True),
        sa.Column("face_id", sa.Integer(), sa.ForeignKey("faces.id", ondelete="CASCADE"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    for column in ("person_id", "other_person_id", "face_id"):
        op.create_index(f"ix_dismissed_suggestions_{column}", "dismissed_suggestions", [column])


def downgrade() -> None:
    op.drop_table("dismissed_suggestions")
