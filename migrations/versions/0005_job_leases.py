"""Jobs that many workers share: a kind, the worker holding it, heartbeats and a lease.

``enhance_jobs`` becomes the job table of every kind of heavy work (album restoration, prior builds,
face detection). A worker claims a queued job (or one whose lease ran out: its worker died) and renews
the lease with heartbeats; only the holder can finish it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enhance_jobs") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="enhance"))
        batch.add_column(sa.Column("worker", sa.String(128), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("started_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(), nullable=True))
    op.create_index("ix_enhance_jobs_claim", "enhance_jobs", ["batch_key", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_enhance_jobs_claim", table_name="enhance_jobs")
    with op.batch_alter_table("enhance_jobs") as batch:
        for column in ("lease_expires_at", "heartbeat_at", "started_at", "attempts", "worker", "kind"):
            batch.drop_column(column)
