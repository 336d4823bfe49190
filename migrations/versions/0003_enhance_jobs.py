"""Batch restoration jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enhance_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_key", sa.String(64), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("batch_key", "source_path", name="uq_enhance_job"),
    )
    op.create_index("ix_enhance_jobs_batch_key", "enhance_jobs", ["batch_key"])
    op.create_index("ix_enhance_jobs_status", "enhance_jobs", ["status"])


def downgrade() -> None:
    op.drop_table("enhance_jobs")
