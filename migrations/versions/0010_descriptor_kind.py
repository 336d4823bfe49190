"""Which network's descriptor each face carries (``faces.descriptor_kind``: 'dlib128' or 'facenet512').

Every descriptor stored before this revision is dlib's 128-D one. Downgrading forgets 512-D facenet
descriptors (the older schema knows only dlib's): those faces keep everything else, lose their automatic
person and go back to 'no_embedding'; `photokit scan --descriptor dlib128` recomputes them after an upgrade.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("faces") as batch:
        batch.add_column(sa.Column("descriptor_kind", sa.String(16), nullable=True))
    op.execute("UPDATE faces SET descriptor_kind = 'dlib128'")
    op.create_index("ix_faces_descriptor_kind", "faces", ["descriptor_kind"])


def downgrade() -> None:
    op.execute(
        "UPDATE faces SET person_id = CASE WHEN assigned_by = 'user' THEN person_id END, "
        "assigned_by = CASE WHEN assigned_by = 'user' THEN assigned_by END, "
        "embedding = NULL, cluster_exclusion = 'no_embedding' WHERE descriptor_kind = 'facenet512'"
    )
    op.drop_index("ix_faces_descriptor_kind", "faces")
    with op.batch_alter_table("faces") as batch:
        batch.drop_column("descriptor_kind")
