"""Faces and people.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True, unique=True),
        sa.Column("ignored", sa.Boolean(), nullable=False),
        sa.Column("cover_face_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "faces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("photo_id", sa.Integer(), sa.ForeignKey("photos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("detector", sa.String(16), nullable=False),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("landmarks5", sa.JSON(), nullable=True),
        sa.Column("landmarks68", sa.JSON(), nullable=True),
        sa.Column("alignment", sa.JSON(), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("size_px", sa.Float(), nullable=False),
        sa.Column("blur", sa.Float(), nullable=True),
        sa.Column("is_gray", sa.Boolean(), nullable=False),
        sa.Column("yaw", sa.Float(), nullable=True),
        sa.Column("cluster_exclusion", sa.String(32), nullable=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id", ondelete="SET NULL"), nullable=True),
        sa.Column("assigned_by", sa.String(8), nullable=True),
        sa.Column("user_rejected", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_faces_photo_id", "faces", ["photo_id"])
    op.create_index("ix_faces_person_id", "faces", ["person_id"])


def downgrade() -> None:
    op.drop_table("faces")
    op.drop_table("people")
